"""End to end in a real browser: Debian's headless ``chromium`` driven by Playwright.

Opens the page, picks photos (and drops one), waits for each label to appear,
checks a bad file is reported in words, watches the live camera view, and
writes screenshots (desktop and phone sized) to pytest's tmp dir and, when
``EDGEKIT_ARTIFACTS`` is set, there too.

Needs ``apt-get install chromium`` and ``pip install playwright`` (the Python
package only: the browser is Debian's, ``playwright install`` is never run).
Skips with the reason when either is missing.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, DESKTOP, PHONE, draw_photo

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs Playwright (pip install playwright)")

from edge_runner.core.image import preprocess  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.web.service import ServerOptions, build_service  # noqa: E402
from edge_runner.web.server import start_server  # noqa: E402


@contextlib.contextmanager
def served_page(browser, options: ServerOptions, context_options: dict):
    """A server for ``options`` and its page in a new browser context; yields ``(page, problems)``, then closes both.

    ``problems`` collects the page's console errors and uncaught exceptions.
    """
    server = start_server(build_service(options))
    try:
        context = browser.new_context(**context_options)
        try:
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(server.url + "/")
            yield page, problems
        finally:
            context.close()
    finally:
        server.stop()


def write_video(path: Path, colour: str, frames: int = 10) -> str:
    """An MJPG ``.avi`` (320x240, 10 fps) of ``frames`` generated photos of ``CLASS_COLOURS[colour]``; returns the path."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.array(draw_photo(CLASS_COLOURS[colour], size=(320, 240), seed=i)), cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def colour_model(tiny_models, tmp_path_factory) -> Path:
    """The tiny int8 model trained for a few seconds to tell the generated colours apart.

    An untrained one would answer, say, "red" for every photo: correct by the
    classifier, but a screenshot that proves little.
    """
    import keras
    from conftest import build_tiny_keras, save_tiny

    from edge_runner.core.image import fit
    from edge_runner.core.spec import InputSpec

    spec = InputSpec(labels=tuple(CLASS_COLOURS), height=32, width=32, name="tiny-colours")
    pixels, labels = [], []
    for index, colour in enumerate(CLASS_COLOURS.values()):
        for i in range(40):
            pixels.append(fit(draw_photo(colour, seed=1000 * index + i), spec))
            labels.append(index)
    model = build_tiny_keras(len(CLASS_COLOURS), 32)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(np.stack(pixels).astype("float32"), np.array(labels), epochs=30, batch_size=16, verbose=0)
    return save_tiny(model, spec, tmp_path_factory.mktemp("colour_model") / "tiny_colours_int8.tflite", "int8")


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for index, (name, colour) in enumerate(CLASS_COLOURS.items()):
        path = tmp_path / f"{name} photo.jpg"
        draw_photo(colour, size=(320, 240), seed=7 + index).save(path, "JPEG", quality=90)
        out[name] = path
    return out


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_upload_photos_and_see_their_labels(browser, keep_screenshot, colour_model, photos, tmp_path, device):
    model = colour_model
    reference = Classifier(model)
    expected = {path.name: reference.classify(preprocess(path, reference.spec).array).label for path in photos.values()}
    assert expected == {path.name: colour for colour, path in photos.items()}  # the model learnt its colours
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a photo")

    options = ServerOptions(model=model, host="127.0.0.1", port=0)
    with served_page(browser, options, PHONE if device == "phone" else DESKTOP) as (page, problems):
        page.wait_for_function("() => document.querySelector('#model').textContent.includes('tiny-colours')")
        assert "red, green, blue" in page.inner_text("#model")

        page.set_input_files("#files", [str(photos["red"]), str(photos["green"]), str(not_an_image)])
        # Drop a third photo on the drop zone, as a user dragging from the desktop would.
        blue = base64.b64encode(photos["blue"].read_bytes()).decode()
        page.evaluate(
            """([name, data]) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
                document.querySelector("#drop").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }""",
            [photos["blue"].name, blue],
        )
        page.wait_for_function("() => document.querySelectorAll('.card.done').length === 3", timeout=30_000)
        page.wait_for_selector(".card.failed .status.error")

        for card in page.query_selector_all(".card.done"):
            name = card.query_selector(".name").inner_text()
            assert card.query_selector(".answer").inner_text() == expected[name], name
            bars = card.query_selector_all(".bar")
            assert len(bars) == 3
            percents = [float(bar.query_selector(".bar-value").inner_text().rstrip("%")) for bar in bars]
            assert percents == sorted(percents, reverse=True) and 99.0 <= sum(percents) <= 101.0
            assert "inference" in card.query_selector(".timing").inner_text()
            width = bars[0].query_selector(".bar-fill").evaluate("node => node.getBoundingClientRect().width")
            assert width > 0  # the bar is drawn (inline widths are allowed by the page's CSP)
        error = page.inner_text(".card.failed .status.error")
        assert error == "notes.jpg: not an image (no decoder recognises its content)"

        if device == "phone":  # nothing wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot = keep_screenshot(page, f"server_page_{device}.png")
        assert shot.stat().st_size > 10_000
        # The browser logs the refused upload's 415; nothing else may go wrong.
        assert [p for p in problems if "status of 415" not in p] == []


def test_too_large_photo_is_refused_on_the_page(browser, tiny_models, tmp_path):
    big = tmp_path / "big.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)).save(big)
    options = ServerOptions(model=tiny_models["int8"], host="127.0.0.1", port=0, max_upload_mb=0.1)
    with served_page(browser, options, DESKTOP) as (page, problems):
        page.wait_for_function("() => document.querySelector('#limit').textContent.includes('102 KB')")
        page.set_input_files("#files", [str(big)])
        page.wait_for_selector(".card.failed .status.error")
        assert "the limit is 102 KB" in page.inner_text(".card.failed .status.error")
        assert problems == []


def test_live_camera_view_in_the_browser(browser, keep_screenshot, colour_model, tmp_path):
    pytest.importorskip("cv2", reason="the live view reads video through OpenCV (pip install .[camera])")
    video = write_video(tmp_path / "green.avi", "green")
    options = ServerOptions(model=colour_model, host="127.0.0.1", port=0, camera=video, camera_fps=10.0)
    with served_page(browser, options, PHONE) as (page, problems):
        page.wait_for_selector("#camera:not([hidden])")
        page.wait_for_function("() => document.querySelector('#live').naturalWidth === 320", timeout=20_000)
        page.wait_for_function("() => / \\d+\\.\\d% · \\d+\\.\\d fps$/.test(document.querySelector('#live-state').textContent)", timeout=20_000)
        caption = page.inner_text("#live-state")
        assert caption.startswith("green ")  # the video shows green shapes
        keep_screenshot(page, "server_page_camera_phone.png")
        assert problems == []


def test_background_answer_shows_nothing_recognised_instead_of_bars(browser, keep_screenshot, background_models, tmp_path):
    """A model whose contract names ``blue`` as its background label: words, not bars, for a blue photo and frame."""
    pytest.importorskip("cv2", reason="the live view reads video through OpenCV (pip install .[camera])")
    from PIL import Image

    model = background_models["int8"]
    red, blue, grey = tmp_path / "red photo.jpg", tmp_path / "blue photo.jpg", tmp_path / "grey photo.png"
    draw_photo(CLASS_COLOURS["red"], size=(320, 240), seed=1).save(red, "JPEG", quality=90)
    draw_photo(CLASS_COLOURS["blue"], size=(320, 240), seed=2).save(blue, "JPEG", quality=90)
    Image.new("RGB", (320, 240), (130, 120, 120)).save(grey)  # best score ~0.44, below the contract's 0.6
    reference = Classifier(model)
    assert [reference.classify(preprocess(p, reference.spec).array).label for p in (red, blue, grey)] == ["red", "blue", "unknown"]
    video = write_video(tmp_path / "empty-room.avi", "blue")
    options = ServerOptions(model=model, host="127.0.0.1", port=0, camera=video, camera_fps=10.0)
    with served_page(browser, options, PHONE) as (page, problems):
        page.wait_for_function("() => document.querySelector('#model').textContent.includes('tiny-background')")
        page.set_input_files("#files", [str(red), str(blue), str(grey)])
        page.wait_for_function("() => document.querySelectorAll('.card.done').length === 3", timeout=30_000)
        cards = {card.query_selector(".name").inner_text(): card for card in page.query_selector_all(".card.done")}
        assert cards["red photo.jpg"].query_selector(".answer").inner_text() == "red"
        assert len(cards["red photo.jpg"].query_selector_all(".bar")) == 3
        nothing = cards["blue photo.jpg"]
        assert nothing.query_selector(".answer").inner_text() == "nothing recognised"
        assert nothing.query_selector_all(".bar") == []  # no bars for the background class
        assert re.fullmatch(r"blue \d+\.\d%", nothing.query_selector(".nothing-detail").inner_text())
        unsure = cards["grey photo.png"]
        assert unsure.query_selector(".answer").inner_text() == "nothing recognised with enough confidence"
        assert len(unsure.query_selector_all(".bar")) == 3  # below the threshold: the near-misses are still shown

        page.wait_for_function("() => document.querySelector('#live-state').textContent.startsWith('nothing recognised (blue ')", timeout=20_000)
        assert re.fullmatch(r"nothing recognised \(blue \d+\.\d%\) · \d+\.\d fps", page.inner_text("#live-state"))
        keep_screenshot(page, "server_page_nothing_recognised_phone.png")
        assert problems == []
