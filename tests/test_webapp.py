"""The browser app (edge_runner/webapp): the model running in Chromium, against the Python runner.

* the export command and the ``/app`` routes (files only from the build, behind the token, a one-line error
  when the app is not built);
* the app's resize is Pillow's, pixel for pixel, and its decoding Pillow's: identical for JPEGs (subsamplings, EXIF
  orientation, greyscale, draft scales; ycbcr.js's RGB from Chromium's YCbCr planes), up to rounding for a
  transparent PNG;
* what the page does around LiteRT.js, against the runner: the tensors' types and quantisation read from the file,
  quantising pixels and dequantising scores (edge_runner.core.quantization), the batch dimension set to 1 in place;
* photos picked on the page get the runner's labels (a tiny colour model with a background class, and the
  shipped MobileNetV2 models, int8 and float16, on generated photos), with the relaxed-SIMD build and with the
  compat build LiteRT.js falls back to;
* Chromium's fake camera playing a generated clip: a red stretch shows "red", a blue (background) stretch
  "nothing recognised"; no request reaches the server per classified frame; two cameras can be switched;
* offline: after one load the server is stopped and the network cut, and the page still loads and classifies;
* no request leaves the app's own host;
* phone-size and desktop screenshots (kept in ``$EDGEKIT_ARTIFACTS`` when set).

Needs the built app (the ``webapp_dist`` fixture builds it), Debian's chromium and Playwright.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, draw_photo
from PIL import Image

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright (pip install playwright)")

from chromium import find_chromium, save_screenshot as keep_screenshot  # noqa: E402
from conftest import DESKTOP, PHONE  # noqa: E402
from webapp_helpers import READY, StaticServer, launch_chromium, open_app, pick_files, write_y4m  # noqa: E402

from edge_runner.web.access import Token  # noqa: E402
from edge_runner.web.app import create_app  # noqa: E402
from edge_runner.core.image import fit, preprocess  # noqa: E402
from edge_runner.core.model import Classifier, read_contract  # noqa: E402
from edge_runner.web.service import ServerOptions, build_service  # noqa: E402
from edge_runner.web.server import start_server  # noqa: E402
from edge_runner.core.spec import InputSpec  # noqa: E402
from edge_runner.webapp import cli as webapp_cli  # noqa: E402

SHIPPED = REPO / "models" / "cats_dogs_int8.tflite"
SHIPPED_FLOAT16 = REPO / "models" / "cats_dogs_float16.tflite"
RELAXED = "LiteRT.js, WebAssembly relaxed SIMD"
COMPAT = "LiteRT.js, WebAssembly, compat build (no relaxed SIMD)"
# Makes the browser fail LiteRT.js's relaxed-SIMD check (the same bytes as its WASM_RELAXED_SIMD_CHECK), as a
# browser without relaxed SIMD does: LiteRT.js then loads its compat build. (Chromium's V8 flags no longer turn
# relaxed SIMD off.)
WITHOUT_RELAXED_SIMD = """(() => {
  const probe = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65,
    2, 253, 15, 253, 128, 2, 11];
  const isProbe = (b) => b instanceof Uint8Array && b.length === probe.length && probe.every((v, i) => b[i] === v);
  const instantiate = WebAssembly.instantiate, validate = WebAssembly.validate;
  WebAssembly.instantiate = function (source, ...rest) {
    return isProbe(source) ? Promise.reject(new WebAssembly.CompileError("no relaxed SIMD")) : instantiate.call(this, source, ...rest);
  };
  WebAssembly.validate = function (source) { return isProbe(source) ? false : validate.call(this, source); };
})();"""
TOKEN = "webapp-" + "t0k3n" * 5
MODEL_VERSION = "2.3.4"


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colour_model(background_models, tmp_path_factory) -> Path:
    """The colour model (red, green, blue; blue = background, threshold 0.6) exported as convert does it:
    standard TFLite metadata (name, version, labels) and the contract packed inside."""
    import convert.tflite.metadata as md

    source = background_models["int8"]
    spec = read_contract(source)
    metadata = md.classifier_metadata(spec, "int8", float_input=False, info=md.ModelInfo(version=MODEL_VERSION))
    files = {"labels.txt": spec.labels_text().encode(), "contract.json": spec.to_json().encode()}
    path = tmp_path_factory.mktemp("colour_app") / "colours_int8.tflite"
    path.write_bytes(md.embed(source.read_bytes(), metadata, files))
    return path


def export(model: Path, out: Path) -> Path:
    assert webapp_cli.main(["--model", str(model), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def colour_app(webapp_dist, colour_model, tmp_path_factory) -> Path:
    return export(colour_model, tmp_path_factory.mktemp("colour_app_folder") / "app")


@pytest.fixture(scope="module")
def playwright():
    if find_chromium() is None:
        pytest.skip("no chromium browser installed (apt-get install chromium); set EDGEKIT_CHROMIUM to use another path")
    with sync_api.sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright):
    browser = launch_chromium(playwright)
    yield browser
    browser.close()


def runner_answers(model: Path, paths: list[Path]) -> dict[str, object]:
    classifier = Classifier(model)
    return {path.name: classifier.classify(preprocess(path, classifier.spec).array) for path in paths}


def photo_cards(page, count: int) -> dict[str, object]:
    page.wait_for_function(f"() => document.querySelectorAll('.card.done, .card.failed').length === {count}", timeout=60_000)
    return {card.query_selector(".name").inner_text(): card for card in page.query_selector_all(".card")}


def shown_percents(card) -> list[tuple[str, float]]:
    return [(bar.query_selector(".bar-label").inner_text(), float(bar.query_selector(".bar-value").inner_text().rstrip("%")))
            for bar in card.query_selector_all(".bar")]


# -- the command and the routes ----------------------------------------------------------------------------


def test_export_writes_a_self_contained_folder(webapp_dist, tmp_path, capsys):
    out = tmp_path / "phone app"
    assert webapp_cli.main(["--model", str(SHIPPED), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    config = json.loads((out / "model.json").read_text())
    assert config == {"model": SHIPPED.name, "contract": read_contract(SHIPPED).to_dict()}
    assert (out / SHIPPED.name).read_bytes() == SHIPPED.read_bytes()
    for build in ("litert_wasm_internal", "litert_wasm_compat_internal"):  # relaxed SIMD, and the fallback
        assert (out / "wasm" / f"{build}.wasm").stat().st_size > 1_000_000 and (out / "wasm" / f"{build}.js").is_file()
    manifest = json.loads((out / "manifest.webmanifest").read_text())
    assert manifest["start_url"] == "./" and {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}
    # The service worker keeps every file of the folder (the model and model.json by name at install).
    listed = json.loads(re.search(r"const BUILD_FILES = (\[.*?\]);", (out / "sw.js").read_text()).group(1))
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"sw.js", "model.json", SHIPPED.name}
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere

    # A folder that is not empty needs --force; a missing model is the runner's one line; both exit 2.
    assert webapp_cli.main(["--model", str(SHIPPED), "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"edge_runner webapp: error: --out {out}: the folder is not empty; give --force to write the app into it anyway"
    assert webapp_cli.main(["--model", str(SHIPPED), "--out", str(out), "--force"]) == 0
    assert webapp_cli.main(["--model", str(tmp_path / "nope.tflite"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edge_runner webapp: error: {tmp_path / 'nope.tflite'}: model file not found"]
    assert not (tmp_path / "x").exists()


def test_runner_command_line_dispatches_webapp(webapp_dist, tmp_path, capsys):
    from edge_runner.cli import runner as cli

    assert cli.main(["webapp", "--out", str(tmp_path / "a")]) == 0  # the shipped model by default
    assert (tmp_path / "a" / SHIPPED.name).is_file()
    assert cli.main(["webapp"]) == 2
    err = capsys.readouterr().err
    assert "edge_runner webapp: error: the following arguments are required: --out" in err


def test_without_a_build_the_command_and_the_route_say_make_webapp(monkeypatch, tmp_path, capsys):
    import edge_runner.webapp as webapp

    monkeypatch.setattr(webapp, "DIST_DIR", tmp_path / "dist")
    assert webapp_cli.main(["--model", str(SHIPPED), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("edge_runner webapp: error: the browser app is not built: run `make webapp`"), line
    client = create_app(build_service(ServerOptions(model=SHIPPED, interpreters=1))).test_client()
    for path in ("/app/", "/app/app.js", "/app/model.json"):
        answer = client.get(path)
        assert answer.status_code == 503
        assert "run `make webapp`" in answer.get_json()["error"]
    assert client.get("/").status_code == 200  # the rest of the page is unaffected


def test_app_route_serves_only_the_build_behind_the_token(webapp_dist):
    service = build_service(ServerOptions(model=SHIPPED, interpreters=1, token=Token(TOKEN, "test")))
    client = create_app(service).test_client()
    assert client.get("/app/").status_code == 401
    assert client.get("/app/model.json").status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    answer = client.get("/app", headers=bearer)
    assert answer.status_code == 308 and answer.headers["Location"].endswith("/app/")
    page = client.get("/app/", headers=bearer)
    assert page.status_code == 200 and b'src="app.js"' in page.data
    assert "'wasm-unsafe-eval'" in page.headers["Content-Security-Policy"]
    config = client.get("/app/model.json", headers=bearer).get_json()
    assert config == {"model": SHIPPED.name, "contract": read_contract(SHIPPED).to_dict()}
    assert client.get(f"/app/{SHIPPED.name}", headers=bearer).data == SHIPPED.read_bytes()
    wasm = client.get("/app/wasm/litert_wasm_internal.wasm", headers=bearer)
    assert wasm.status_code == 200 and wasm.mimetype == "application/wasm"
    core = client.get("/app/litert/core.js", headers=bearer)
    assert core.mimetype == "text/javascript" and b'from "./wasm-utils.js"' in core.data  # no bare package name
    assert client.get("/app/litert/wasm-utils.js", headers=bearer).mimetype == "text/javascript"
    for path in ("/app/../app.py", "/app/..%2fapp.py", "/app/%2e%2e/%2e%2e/pyproject.toml", "/app//etc/passwd",
                 "/app/build.json", "/app/routes.py", "/app/src/app.js", "/app/node_modules/.package-lock.json"):
        assert client.get(path, headers=bearer, follow_redirects=True).status_code == 404, path


# -- in the browser ------------------------------------------------------------------------------------------


def test_app_resize_is_pillows_pixel_for_pixel(browser, colour_app):
    """The page's fitPixels against edge_runner.core.image.fit, for every filter and crop, down and up."""
    rng = np.random.default_rng(3)
    cases = []
    # (70, 200) and (61, 97): taller photos, which Pillow resizes vertical pass first; (120, 110): horizontal first
    shapes = ((97, 61), (640, 480), (31, 45), (45, 31), (56, 40), (56, 300), (300, 40), (20, 300), (300, 20), (10, 7),
              (224, 224), (70, 200), (61, 97), (120, 110))
    for (width, height) in shapes:
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        pixels[: height // 2, : width // 3] = (250, 20, 30)  # edges as well as noise
        for resize in ("bilinear", "bicubic", "lanczos", "nearest"):
            for crop in ("none", "center"):
                cases.append((pixels, InputSpec(labels=("a", "b"), width=56, height=40, resize=resize, crop=crop)))
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        for pixels, spec in cases:
            height, width = pixels.shape[:2]
            rgba = np.concatenate([pixels, np.full((height, width, 1), 255, np.uint8)], axis=2)
            got = page.evaluate(
                """async ([data, w, h, ow, oh, resize, crop]) => {
                    const { fitPixels } = await import('./resample.js');
                    const rgba = Uint8ClampedArray.from(atob(data), (c) => c.charCodeAt(0));
                    const out = fitPixels(rgba, w, h, ow, oh, resize, crop).data;
                    let text = '';
                    for (let i = 0; i < out.length; i++) if (i % 4 !== 3) text += String.fromCharCode(out[i]);
                    return btoa(text);
                }""",
                [base64.b64encode(rgba.tobytes()).decode(), width, height, spec.width, spec.height, spec.resize, spec.crop],
            )
            browser_pixels = np.frombuffer(base64.b64decode(got), np.uint8).reshape(spec.height, spec.width, 3)
            expected = fit(Image.fromarray(pixels), spec)
            assert np.array_equal(browser_pixels, expected), (width, height, spec.resize, spec.crop)
        context.close()
    assert problems == []


def test_browser_decodes_photos_as_pillow_does(browser, colour_app, tmp_path):
    """What the page feeds the model from a file, against the runner's preprocess: identical for JPEGs (every
    chroma subsampling, odd sizes, greyscale, progressive, the 8 EXIF orientations, large photos decoded at 1/2,
    1/4 and 1/8 as Pillow's draft mode does, CMYK), and up to rounding where the browser's canvas decodes (a
    transparent PNG, a palette PNG, WebP)."""
    spec = InputSpec(labels=("a", "b"), width=96, height=80)
    base = np.array(draw_photo((200, 60, 40), size=(160, 120), seed=9))
    base[:, :40] = (30, 60, 220)  # a blue band on the left: a wrong orientation moves it
    files = {}

    def save(name: str, pixels: np.ndarray, **options) -> None:
        files[name] = tmp_path / name
        Image.fromarray(pixels).save(files[name], **options)

    save("plain.jpg", base, quality=95)  # 4:2:0
    save("444.jpg", base, quality=95, subsampling=0)
    save("422.jpg", base, quality=95, subsampling=1)
    save("odd 420.jpg", base[:117, :151], quality=90)
    save("odd 422.jpg", base[:101, :77], quality=90, subsampling=1)
    save("progressive.jpg", base, quality=90, progressive=True)
    save("grey.jpg", base[..., 0], quality=95)
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        save(f"orientation {orientation}.jpg", base[:, :150], quality=95, exif=exif)
    # Large: the runner's Pillow decodes at 1/2, 1/4, 1/8 (the input's larger side x 2 = 192 fits 2, 4, 8 times).
    for name, size in (("large 2.jpg", (400, 390)), ("large 4.jpg", (800, 780)), ("large 8.jpg", (1600, 1550))):
        save(name, np.array(Image.fromarray(base).resize(size, Image.Resampling.BILINEAR)), quality=90)
    rgba = np.concatenate([base, np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))[..., None]], axis=2)
    save("alpha.png", rgba)
    # A CMYK JPEG (print workflows: ImageDecoder gives it as RGB, Pillow's CMYK conversion to the bit), and two
    # formats the page leaves to the canvas: WebP, a palette PNG.
    files["cmyk.jpg"] = tmp_path / "cmyk.jpg"
    Image.fromarray(base).convert("CMYK").save(files["cmyk.jpg"], quality=95)
    save("photo.webp", base, quality=90)
    files["palette.png"] = tmp_path / "palette.png"
    Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE).save(files["palette.png"])
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        pick_files(page, files.values())
        got = page.evaluate(
            """async ([w, h]) => {
                const { fitPixels } = await import('./resample.js');
                const out = {};
                for (const file of document.querySelector('#probe').files) {
                    const d = await window.edgekitApp.decodeFile(file, [w, h]);
                    const px = fitPixels(d.pixels, d.width, d.height, w, h, 'bilinear', 'none', d.stride, d.bgr).data;
                    out[file.name] = { size: [d.width, d.height], how: d.how, pixels: Array.from(px).filter((v, i) => i % 4 !== 3) };
                }
                return out;
            }""", [spec.width, spec.height])
        context.close()
    assert problems == []
    for name, path in files.items():
        expected = preprocess(path, spec)
        pixels = np.array(got[name]["pixels"], np.uint8).reshape(spec.height, spec.width, 3)
        if name.endswith(".jpg"):
            assert got[name]["how"] == "ImageDecoder", name
            # The draft scale's size for the large ones (the runner reports the size it decoded at).
            assert tuple(got[name]["size"]) == expected.original_size, name
            assert np.array_equal(pixels, expected.array), (name, np.abs(pixels.astype(int) - expected.array).max())
        else:
            assert got[name]["how"] == "canvas" and tuple(got[name]["size"]) == expected.original_size, name
            difference = np.abs(pixels.astype(int) - expected.array.astype(int))
            assert difference.mean() < 0.5 and difference.max() <= 2, (name, difference.mean(), difference.max())


def test_ycbcr_planes_become_libjpegs_rgb(browser, colour_app, tmp_path):
    """ycbcr.js, the page's way when Chromium hands a JPEG over as its YCbCr planes (the whole file at once): its
    RGB equals Pillow's full-size decode for 4:2:0, 4:2:2 and 4:4:4 chroma, odd sizes included."""
    base = np.array(draw_photo((40, 160, 220), size=(161, 121), seed=4))
    base[::7] = (250, 20, 30)  # sharp colour edges, where chroma upsampling shows
    files = {}
    for subsampling, name in ((2, "420"), (1, "422"), (0, "444")):
        for width, height in ((161, 121), (160, 120), (9, 7)):
            files[f"{name} {width}x{height}.jpg"] = path = tmp_path / f"{name} {width}x{height}.jpg"
            Image.fromarray(np.ascontiguousarray(base[:height, :width])).save(path, quality=90, subsampling=subsampling)
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        pick_files(page, files.values())
        got = page.evaluate(
            """async () => {
                const { ycbcrToRgb } = await import('./ycbcr.js');
                const out = {};
                for (const file of document.querySelector('#probe').files) {
                    const decoder = new ImageDecoder({ data: await file.arrayBuffer(), type: 'image/jpeg', colorSpaceConversion: 'none' });
                    const { image } = await decoder.decode();
                    const planes = new Uint8Array(image.allocationSize());
                    const layout = await image.copyTo(planes);
                    const rgb = ycbcrToRgb(planes, layout, image.format, image.codedWidth, image.codedHeight);
                    out[file.name] = { format: image.format, pixels: Array.from(rgb) };
                    image.close();
                    decoder.close();
                }
                return out;
            }""")
        context.close()
    assert problems == []
    assert {got[name]["format"] for name in files} == {"I420", "I422", "I444"}
    for name, path in files.items():
        with Image.open(path) as image:
            expected = np.asarray(image.convert("RGB"))
        pixels = np.array(got[name]["pixels"], np.uint8).reshape(expected.shape)
        assert np.array_equal(pixels, expected), (name, np.abs(pixels.astype(int) - expected).max())


def test_picked_photos_get_the_runners_labels(browser, colour_app, colour_model, tmp_path):
    red, green, blue = (tmp_path / f"{name} photo.jpg" for name in ("red", "green", "blue"))
    for index, (path, colour) in enumerate(zip((red, green, blue), CLASS_COLOURS.values())):
        draw_photo(colour, size=(320, 240), seed=20 + index).save(path, "JPEG", quality=90)
    grey = tmp_path / "grey photo.png"
    Image.new("RGB", (300, 200), (130, 120, 120)).save(grey)  # about 1/3 each: below the threshold 0.6
    clear = tmp_path / "see-through.png"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(clear)  # transparent: white on both sides
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a photo")
    photos = [red, green, blue, grey, clear]
    expected = runner_answers(colour_model, photos)
    assert [expected[p.name].label for p in photos] == ["red", "green", "blue", "unknown", "unknown"]
    scale = Classifier(colour_model).output_scale

    with StaticServer(colour_app) as server:
        context = browser.new_context(**PHONE)
        page, problems = open_app(context, server.url)
        # Name and version from the model's TFLite metadata; the rest from its contract.
        assert page.inner_text("#model") == (
            f"tiny-background {MODEL_VERSION} · 3 labels (red, green, blue) · “blue” = nothing recognised · threshold 0.6 · {RELAXED}")
        page.set_input_files("#files", [str(p) for p in photos] + [str(not_an_image)])
        cards = photo_cards(page, len(photos) + 1)
        words = {"blue": "nothing recognised", "unknown": "nothing recognised with enough confidence"}
        for path in photos:
            answer, card = expected[path.name], cards[path.name]
            shown = card.query_selector(".answer")
            assert shown.get_attribute("data-label") == answer.label, path.name
            assert shown.inner_text() == words.get(answer.label, answer.label), path.name
            if answer.label == "blue":  # the background class: words and its score, no bars
                assert card.query_selector_all(".bar") == []
                assert card.query_selector(".nothing-detail").inner_text() == f"blue {answer.score * 100:.1f}%"
                continue
            bars = shown_percents(card)
            assert [label for label, _ in bars] == [item.label for item in answer.top_k]
            for (_, value), item in zip(bars, answer.top_k):
                assert abs(value - item.score * 100) <= scale * 100 + 0.06, (path.name, bars, answer.top_k)
        assert cards["notes.jpg"].query_selector(".status.error").inner_text() == "notes.jpg: not an image (the browser cannot decode it)"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        context.close()
    assert problems == []


@pytest.mark.parametrize(("model", "relaxed_simd"), [(SHIPPED, True), (SHIPPED_FLOAT16, True), (SHIPPED, False)],
                         ids=["int8", "float16", "int8-compat-build"])
def test_shipped_model_in_the_browser_answers_as_the_runner(browser, webapp_dist, tmp_path, model, relaxed_simd):
    """MobileNetV2 in LiteRT.js: the same labels and scores (to one output step) as LiteRT in Python, for the int8
    model (uint8 in and out, quantised by the page) and the float16 one (float32 in and out), and with the compat
    build that a browser without relaxed SIMD gets."""
    photos = []
    for index, colour in enumerate([(200, 150, 90), (90, 90, 90), (30, 120, 200)]):
        path = tmp_path / f"generated {index}.jpg"
        draw_photo(colour, size=(400, 300), seed=40 + index).save(path, "JPEG", quality=92)
        photos.append(path)
    x, y = np.mgrid[0:256, 0:320]
    gradient = tmp_path / "gradient.png"
    Image.fromarray(np.stack([x, y * 0.8, 255 - x], axis=-1).astype(np.uint8)).save(gradient)
    photos.append(gradient)
    expected = runner_answers(model, photos)
    folder = export(model, tmp_path / "app")
    with StaticServer(folder) as server:
        context = browser.new_context(**DESKTOP)
        if not relaxed_simd:
            context.add_init_script(WITHOUT_RELAXED_SIMD)
        page, problems = open_app(context, server.url)
        assert page.inner_text("#model").endswith(RELAXED if relaxed_simd else COMPAT)
        compat_fetched = ("/wasm/litert_wasm_compat_internal.wasm", 200) in server.paths
        # Only the build in use is fetched: the service worker keeps the relaxed-SIMD one (its own check: it sees
        # the real browser), and the page fetches the compat one when LiteRT.js falls back to it.
        assert compat_fetched is not relaxed_simd
        page.set_input_files("#files", [str(p) for p in photos])
        cards = photo_cards(page, len(photos))
        # One output step of the int8 model (1/256); float scores differ by float rounding only.
        step = Classifier(model).output_scale or 1e-4
        for path in photos:
            answer, card = expected[path.name], cards[path.name]
            assert card.query_selector(".answer").get_attribute("data-label") == answer.label, path.name
            if answer.label != "other":
                for (label, value), item in zip(shown_percents(card), answer.top_k):
                    assert label == item.label and abs(value - item.score * 100) <= step * 100 + 0.06, card.inner_html()
            else:
                detail = card.query_selector(".nothing-detail").inner_text()
                assert abs(float(detail.split()[1].rstrip("%")) - answer.score * 100) <= step * 100 + 0.06, detail
        context.close()
    assert problems == []


def clip_frames(colour: tuple[int, int, int], count: int, seed: int) -> list[np.ndarray]:
    return [np.asarray(draw_photo(colour, size=(320, 240), seed=seed + i)) for i in range(count)]


def test_camera_clip_shows_the_label_then_nothing_recognised(playwright, colour_app, colour_model, tmp_path):
    """Chromium's fake camera plays 3 s of red shapes, then 3 s of blue (the background class), looped."""
    red, blue = clip_frames(CLASS_COLOURS["red"], 30, 100), clip_frames(CLASS_COLOURS["blue"], 30, 200)
    classifier = Classifier(colour_model)
    # The runner's answers first: every red frame is "red", every blue one the background label.
    assert {classifier.classify(fit(Image.fromarray(frame), classifier.spec)).label for frame in red} == {"red"}
    assert {classifier.classify(fit(Image.fromarray(frame), classifier.spec)).label for frame in blue} == {"blue"}
    clip = write_y4m(tmp_path / "door.y4m", red + blue)
    photos = [tmp_path / "red shapes.jpg", tmp_path / "empty room.jpg"]
    Image.fromarray(red[0]).save(photos[0], quality=90)
    Image.fromarray(blue[0]).save(photos[1], quality=90)

    browser = launch_chromium(playwright, clip=clip)
    try:
        with StaticServer(colour_app) as server:
            context = browser.new_context(**PHONE)
            page, problems = open_app(context, server.url, offline_ready=True)
            before = server.counts["requests"]
            page.click("#start")
            page.wait_for_function("() => document.querySelector('#live-answer').dataset.label === 'red'", timeout=30_000)
            assert page.inner_text("#live-answer") == "red"
            assert page.is_hidden("#switch")  # one camera: nothing to switch to
            assert page.query_selector_all("#live-bars .bar")
            page.wait_for_function("() => document.querySelector('#live-answer').dataset.label === 'blue'", timeout=30_000)
            assert page.inner_text("#live-answer") == "nothing recognised"
            assert re.fullmatch(r"blue \d+\.\d%", page.inner_text("#live-detail"))
            assert page.query_selector_all("#live-bars .bar") == []
            page.wait_for_function("() => document.querySelector('#live-answer').dataset.label === 'red'", timeout=30_000)
            fps = float(page.get_attribute("#fps", "data-fps"))
            frames = page.evaluate("() => window.edgekitApp.frames")
            assert fps > 1 and frames > 30, (fps, frames)
            # Every frame was classified in the page: the server saw no request while the camera ran.
            assert server.counts["requests"] == before
            assert re.fullmatch(r"\d+\.\d fps · \d+\.\d ms per frame \(inference \d+\.\d ms\)", page.inner_text("#fps"))
            page.set_input_files("#files", [str(photos[0]), str(photos[1])])
            photo_cards(page, 2)
            keep_screenshot(page, tmp_path, "webapp_camera_phone.png")
            context.close()
            # The same on a desktop screen: camera and photos side by side.
            context = browser.new_context(**DESKTOP)
            page, more_problems = open_app(context, server.url)
            problems += more_problems
            page.click("#start")
            page.set_input_files("#files", [str(photos[0]), str(photos[1])])
            photo_cards(page, 2)
            page.wait_for_function("() => parseFloat(document.querySelector('#fps').dataset.fps) > 1", timeout=30_000)
            keep_screenshot(page, tmp_path, "webapp_camera_desktop.png")
            context.close()
    finally:
        browser.close()
    assert problems == []


def test_two_cameras_can_be_switched(playwright, colour_app):
    browser = launch_chromium(playwright, cameras=2)
    try:
        with StaticServer(colour_app) as server:
            context = browser.new_context(**PHONE)
            page, problems = open_app(context, server.url)
            page.click("#start")
            page.wait_for_function("() => !document.querySelector('#switch').hidden", timeout=20_000)
            assert page.is_visible("#switch")
            first = page.inner_text("#camera-note")
            page.click("#switch")
            page.wait_for_function(f"() => document.querySelector('#camera-note').textContent !== {json.dumps(first)}", timeout=20_000)
            second = page.inner_text("#camera-note")
            assert first.split(" · ")[0] != second.split(" · ")[0], (first, second)
            page.wait_for_function("() => document.querySelector('#live-answer').dataset.label", timeout=20_000)
            page.click("#start")  # stop
            page.wait_for_function("() => document.querySelector('#video').hidden")
            assert page.inner_text("#start") == "Start camera"
            context.close()
    finally:
        browser.close()
    assert problems == []


def test_offline_after_one_load_through_serve_with_a_token(browser, webapp_dist, colour_model, tmp_path):
    """Loaded once from `serve` (token in the URL, then the cookie), the app comes back and classifies with the
    server stopped and the network cut."""
    photo = tmp_path / "green photo.jpg"
    draw_photo(CLASS_COLOURS["green"], size=(320, 240), seed=5).save(photo, "JPEG", quality=90)
    (expected,) = runner_answers(colour_model, [photo]).values()
    assert expected.label == "green"
    server = start_server(build_service(ServerOptions(model=colour_model, port=0, interpreters=1, token=Token(TOKEN, "test"))))
    context = browser.new_context(**DESKTOP)
    try:
        page, problems = open_app(context, f"{server.url}/app/?token={TOKEN}", offline_ready=True)
        assert page.url == f"{server.url}/app/"  # the token left the address bar for a cookie
        assert "works offline" in page.inner_text("#status")
        server.stop()
        context.set_offline(True)
        page.reload()
        page.wait_for_function(READY, timeout=60_000)
        assert "works offline" in page.inner_text("#status")
        page.set_input_files("#files", [str(photo)])
        cards = photo_cards(page, 1)
        assert cards[photo.name].query_selector(".answer").get_attribute("data-label") == "green"
        keep_screenshot(page, tmp_path, "webapp_offline_desktop.png")
    finally:
        context.close()
        server.stop()
    assert problems == []


def test_nothing_leaves_the_page(browser, colour_app):
    """From loading to classifying, the only requests are to the app's own host (LiteRT.js sends no usage report,
    and the page's Content-Security-Policy, connect-src 'self', would refuse one)."""
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        requests = []
        context.on("request", lambda request: requests.append(request.url))
        page, problems = open_app(context, server.url, offline_ready=True)
        page.set_input_files("#files", [str(REPO / "edge_runner" / "webapp" / "src" / "icon-192.png")])
        photo_cards(page, 1)
        page.wait_for_timeout(1000)
        context.close()
    assert requests and [url for url in requests if not url.startswith((server.url, f"blob:{server.url}"))] == []
    assert problems == []


# -- what the page does around LiteRT.js (engine.js, tflite.js), against the runner ---------------------------


def page_bytes(page, script: str, arg=None) -> bytes:
    """Run ``script`` (an async function returning a Uint8Array) in the page; its bytes."""
    wrapped = f"""async (arg) => {{
        const out = await ({script})(arg);
        let text = '';
        for (let i = 0; i < out.length; i += 32768) text += String.fromCharCode.apply(null, out.subarray(i, i + 32768));
        return btoa(text);
    }}"""
    return base64.b64decode(page.evaluate(wrapped, arg))


def test_page_reads_tensor_types_and_quantisation_from_the_file(browser, colour_app, colour_model):
    """readTensors against the Python interpreter's view of the same files (type, shape, scale, zero point)."""
    models = [SHIPPED, SHIPPED_FLOAT16, colour_model]
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        for model in models:
            got = page.evaluate("""async (data) => {
                const { readTensors } = await import('./tflite.js');
                return readTensors(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
            }""", base64.b64encode(model.read_bytes()).decode())
            classifier = Classifier(model)
            spec = classifier.spec
            (tensor_in,), (tensor_out,) = got["inputs"], got["outputs"]
            assert tensor_in["shape"] == [1, spec.height, spec.width, 3] and tensor_out["shape"] == [1, spec.num_classes]
            for tensor, dtype, scale, zero_point in (
                (tensor_in, classifier.input_dtype, classifier.input_scale, classifier.input_zero_point),
                (tensor_out, classifier.output_dtype, classifier.output_scale, classifier.output_zero_point),
            ):
                assert tensor["dtype"] == dtype.name, model.name
                assert np.float32(tensor["scale"]) == np.float32(scale) and tensor["zeroPoint"] == zero_point, model.name
        context.close()
    assert problems == []


def test_page_quantises_and_dequantises_as_the_runner(browser, colour_app):
    """engine.js's quantizeInput/dequantizeOutput against edge_runner.core.quantization, value for value, for the
    kit's tensors (uint8 scale 1, float32) and any other scale and zero point the runner accepts."""
    from edge_runner.core.quantization import dequantize_output, quantize_input

    rng = np.random.default_rng(5)
    pixels = np.concatenate([np.arange(256, dtype=np.uint8), rng.integers(0, 256, 2000, dtype=np.uint8)])
    raw = {"uint8": np.arange(256, dtype=np.uint8), "int8": np.arange(-128, 128, dtype=np.int8)}
    inputs = [("uint8", 1.0, 0), ("float32", 0.0, 0), ("int8", 1.0, -128), ("uint8", 0.5, 3), ("int8", 0.0078125, 5),
              ("uint8", 1.7, 0), ("int8", 2.0 / 3.0, -100), ("uint8", 0.999, 0)]
    outputs = [("uint8", 0.00390625, 0), ("int8", 0.00390625, -128), ("uint8", 0.1, 7), ("float32", 0.0, 0)]
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        got_in = page.evaluate("""async ([pixels, cases]) => {
            const { quantizeInput } = await import('./engine.js');
            return cases.map(([dtype, scale, zeroPoint]) =>
                Array.from(quantizeInput(Uint8Array.from(pixels), { dtype, scale, zeroPoint })));
        }""", [pixels.tolist(), inputs])
        got_out = page.evaluate("""async ([raw, cases]) => {
            const { dequantizeOutput } = await import('./engine.js');
            return cases.map(([dtype, scale, zeroPoint]) =>
                Array.from(dequantizeOutput(dtype === 'float32' ? Float32Array.from([0.25, 1e-7, 0.7])
                    : raw[dtype], { dtype, scale, zeroPoint })));
        }""", [{k: v.tolist() for k, v in raw.items()}, outputs])
        context.close()
    assert problems == []
    for (dtype, scale, zero_point), values in zip(inputs, got_in):
        expected = quantize_input(pixels, np.dtype(dtype), np.float32(scale), zero_point)
        assert np.array_equal(np.array(values, dtype=expected.dtype), expected), (dtype, scale, zero_point)
    for (dtype, scale, zero_point), values in zip(outputs, got_out):
        source = np.array([0.25, 1e-7, 0.7], np.float32) if dtype == "float32" else raw[dtype]
        expected = dequantize_output(source, np.float32(scale), zero_point)
        assert np.array_equal(np.array(values, np.float32), expected), (dtype, scale, zero_point)


def test_page_sets_the_dynamic_batch_dimension_to_one_in_place(browser, colour_app, tmp_path):
    """fixBatchDimension on the shipped model's bytes: only shape_signature's leading -1s change (to 1), in place,
    in every tensor that has one; the Python interpreter loads the result and answers exactly as before."""
    from convert.tflite.flatbuffer import read_model

    original = SHIPPED.read_bytes()
    with StaticServer(colour_app) as server:
        context = browser.new_context()
        page, problems = open_app(context, server.url)
        script = """async (data) => {
            const { fixBatchDimension } = await import('./tflite.js');
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            window.changed = [fixBatchDimension(bytes), fixBatchDimension(bytes)];  // the second finds nothing
            return bytes;
        }"""
        patched = page_bytes(page, script, base64.b64encode(original).decode())
        changed = page.evaluate("() => window.changed")
        context.close()
    assert problems == []
    assert len(patched) == len(original)
    before = read_model(original).subgraphs[0].tensors
    after = read_model(patched).subgraphs[0].tensors
    dynamic = [i for i, t in enumerate(before) if t.shapeSignature is not None and t.shapeSignature[0] == -1]
    assert len(dynamic) > 50 and changed == [len(dynamic), 0]
    for index, (old, new) in enumerate(zip(before, after)):
        if index in dynamic:
            assert [1, *old.shapeSignature[1:]] == list(new.shapeSignature)
        else:
            assert (old.shapeSignature is None and new.shapeSignature is None) or list(old.shapeSignature) == list(new.shapeSignature)
    # Four bytes per tensor changed, nothing else: the file's weights and metadata are the same bytes.
    assert sum(a != b for a, b in zip(original, patched)) == 4 * len(dynamic)
    copy = tmp_path / SHIPPED.name
    copy.write_bytes(patched)
    photo = tmp_path / "photo.jpg"
    draw_photo((180, 120, 60), size=(320, 240), seed=7).save(photo, quality=90)
    pixels = preprocess(photo, read_contract(SHIPPED)).array
    assert np.array_equal(Classifier(copy).probabilities(pixels), Classifier(SHIPPED).probabilities(pixels))
