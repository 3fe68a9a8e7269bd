"""Explanations: occlusion maps on the device, Grad-CAM in train, and the deletion check that they are faithful.

Core tests use a tiny model trained on generated photos with one small coloured
shape on noise (it has to look *there* to answer); slow tests use the real
validation photos, the shipped int8 model and a Keras model trained by the kit.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, build_tiny_keras, convert_tiny, draw_photo
from PIL import Image

from edge_runner.explain.deletion import deletion_check, summarize, top_mask, top_region_iou
from edge_runner.explain.heatmap import overlay
from edge_runner.core.image import find_images, preprocess
from edge_runner.core.model import Classifier
from edge_runner.explain.occlusion import Occluder, OcclusionError, patch_boxes
from edge_runner.core.spec import InputSpec, contract_path_for

SIZE = 32
PATCH = 16  # the drawn shape is 8–12 px of 32: ~10% of the photo
# "none" (noise only) makes every colour class find its shape: with colours alone, one class
# is learnt as "neither of the others" and its evidence is everywhere (a faithful map shows that).
LABELS = ("red", "green", "blue", "none")
SHAPES = LABELS[:3]
# The check must hold on most photos and clearly: a map no better than chance gives ~50% and equal drops.
MIN_SHARE = 0.7
MIN_RATIO = 1.5


def draw_localized(colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A 32x32 noise photo with one small shape (a 16x16 ``draw_photo``) somewhere in it."""
    rng = np.random.default_rng(seed + 7_000)
    canvas = Image.fromarray(rng.integers(0, 90, size=(SIZE, SIZE, 3), dtype=np.uint8), mode="RGB")
    x, y = (int(v) for v in rng.integers(0, SIZE - PATCH, size=2))
    canvas.paste(draw_photo(colour, size=(PATCH, PATCH), seed=seed), (x, y))
    return canvas


def photos(count_per_class: int, seed: int, classes: tuple[str, ...] = LABELS) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in classes:
        k = LABELS.index(name)
        for i in range(count_per_class):
            if name == "none":
                rng = np.random.default_rng(seed * 10_000 + k * 1_000 + i)
                images.append(rng.integers(0, 90, size=(SIZE, SIZE, 3), dtype=np.uint8))
            else:
                images.append(np.asarray(draw_localized(CLASS_COLOURS[name], seed * 10_000 + k * 1_000 + i)))
            labels.append(k)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Keras model trained a few epochs on localized shapes, its int8 TFLite file and a run directory."""
    pytest.importorskip("tensorflow", reason="the tiny model is trained with TensorFlow (pip install .[train])")
    import keras

    x, y = photos(80, seed=1)
    model = build_tiny_keras(len(LABELS), SIZE, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype("float32"), y, epochs=20, batch_size=16, verbose=0, shuffle=True)
    test_x, test_y = photos(8, seed=2, classes=SHAPES)  # the photos to explain: each has a shape
    accuracy = float((model.predict(test_x.astype("float32"), verbose=0).argmax(1) == test_y).mean())
    assert accuracy >= 0.9, f"the tiny model did not learn the shapes (accuracy {accuracy:.2f})"
    root = tmp_path_factory.mktemp("explain")
    spec = InputSpec(labels=LABELS, height=SIZE, width=SIZE, name="tiny")
    tflite = root / "tiny_int8.tflite"
    tflite.write_bytes(convert_tiny(model, "int8", SIZE))
    spec.save(contract_path_for(tflite))
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    spec.save(run / "contract.json")
    return {"keras": model, "tflite": tflite, "spec": spec, "run": run, "x": test_x, "y": test_y, "root": root}


# -- geometry and drawing ------------------------------------------------------


def test_patch_boxes_cover_the_grid_and_are_clipped():
    boxes = patch_boxes(224, 224, 7)
    assert len(boxes) == 49
    assert boxes[0] == (0, 0, 48, 48)  # centred on (16, 16), 64 px wide, clipped at the corner
    assert boxes[24] == (80, 80, 144, 144)  # the middle cell: the full 64 px patch
    assert all(0 <= t < b <= 224 and 0 <= l < r <= 224 for t, l, b, r in boxes)
    with pytest.raises(OcclusionError, match="grid must be an integer from 2 to 32, received 1"):
        patch_boxes(224, 224, 1)


def test_overlay_puts_heat_where_the_map_is_high():
    photo = np.full((60, 90, 3), 100, dtype=np.uint8)
    grid = np.zeros((3, 3), dtype=np.float32)
    grid[0, 2] = 1.0  # top right
    drawn = np.asarray(overlay(photo, grid), dtype=np.int32)
    assert drawn.shape == (60, 90, 3)
    hot, cold = drawn[10, 75], drawn[50, 15]  # the centres of the top-right and bottom-left cells
    assert np.abs(cold - 100).max() <= 30  # unimportant parts keep the photo, a little darker
    assert hot[0] > cold[0] + 60 and hot[1] > cold[1] + 60  # the hot cell turns bright yellow


def test_top_mask_takes_exactly_the_fraction():
    grid = np.arange(49, dtype=np.float32).reshape(7, 7)
    mask = top_mask(grid, (224, 224), 0.2)
    assert mask.sum() == round(0.2 * 224 * 224)
    assert mask[-1, -1] and not mask[0, 0]
    assert top_region_iou(grid, grid, (224, 224)) == 1.0


# -- occlusion on the device ---------------------------------------------------


def test_occlusion_reads_logits_and_batches_the_same(trained):
    classifier = Classifier(trained["tflite"])
    pixels = trained["x"][0]
    single, batched = Occluder(classifier), Occluder(classifier, batch_size=8)
    assert single.measure == "logit_margin"  # the int8 model's SOFTMAX input is readable
    assert batched.batch_size == 8, batched.batch_error
    a, b = single.explain(pixels, grid=4), batched.explain(pixels, grid=4)
    assert a.grid.shape == (4, 4) and a.evaluations == 17
    np.testing.assert_allclose(a.grid, b.grid, atol=1e-6)
    assert a.label == LABELS[trained["y"][0]]
    assert json.loads(json.dumps(a.to_dict()))["rows"] == 4


def test_occlusion_peak_is_on_the_shape(trained):
    """The most harmful patch hides part of the drawn shape in most photos (the shape is ~6% of the image)."""
    classifier = Classifier(trained["tflite"])
    occluder = Occluder(classifier)
    hits = 0
    for pixels, label in zip(trained["x"], trained["y"]):
        result = occluder.explain(pixels, grid=8, patch_cells=1.5)
        top, left, bottom, right = patch_boxes(SIZE, SIZE, 8, 1.5)[int(np.argmax(result.grid))]
        cell = pixels[top:bottom, left:right].astype(int)  # what the most harmful patch hid
        colour = np.array(CLASS_COLOURS[LABELS[label]])
        hits += bool((np.abs(cell - colour).sum(axis=-1) < 60).any())
    assert hits >= 0.8 * len(trained["y"]), f"peak on the shape in only {hits} of {len(trained['y'])} photos"


def _deletion(scores, maps, images, seed=0):
    rng = np.random.default_rng(seed)
    return summarize([deletion_check(scores, p, m, rng=rng) for p, m in zip(images, maps)])


def test_deletion_occlusion_beats_random_and_an_inverted_map_loses(trained):
    occluder = Occluder(Classifier(trained["tflite"]))
    maps = [occluder.explain(p).grid for p in trained["x"]]
    faithful = _deletion(occluder.scores, maps, trained["x"])
    print(faithful.line("occlusion (generated)"))
    assert faithful.share >= MIN_SHARE, faithful.line("occlusion")
    assert faithful.mean_map_drop > MIN_RATIO * max(faithful.mean_random_drop, 1e-6), faithful.line("occlusion")
    # The check can fail: the same maps upside down point at the background.
    inverted = _deletion(occluder.scores, [-m for m in maps], trained["x"])
    assert inverted.share < MIN_SHARE and inverted.mean_map_drop < faithful.mean_map_drop, inverted.line("inverted")


def test_deletion_gradcam_beats_random(trained):
    from train.explanations.gradcam import GradCamExplainer

    explainer = GradCamExplainer(trained["keras"])
    maps = [explainer.explain(p).grid for p in trained["x"]]
    summary = _deletion(explainer.scores, maps, trained["x"])
    print(summary.line("Grad-CAM (generated)"))
    assert summary.share >= MIN_SHARE, summary.line("Grad-CAM")
    assert summary.mean_map_drop > MIN_RATIO * max(summary.mean_random_drop, 1e-6), summary.line("Grad-CAM")


# -- the runner's --explain and the web API -------------------------------------------


def _write_photos(folder: Path, trained, count: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{LABELS[trained['y'][i * 8]]}.{i}.png"
        Image.fromarray(trained["x"][i * 8]).save(path)
        paths.append(path)
    return paths


def test_cli_explain_writes_overlays_and_json_gets_the_path(trained, tmp_path, capsys):
    from edge_runner.cli.runner import main

    paths = _write_photos(tmp_path / "in", trained)
    bad = tmp_path / "in" / "broken.jpg"
    bad.write_bytes(b"not a photo")
    out_dir = tmp_path / "maps"
    code = main([*map(str, paths), str(bad), "--model", str(trained["tflite"]), "--explain", str(out_dir), "--json",
                 "--workers", "0"])
    captured = capsys.readouterr()
    assert code == 1  # the broken photo fails, the others go on
    assert "broken.jpg" in captured.err
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == 3
    for record, path in zip(records, paths):
        written = Path(record["explanation"])
        assert written == out_dir / f"{path.stem}.explain.png"
        with Image.open(written) as image:
            assert image.format == "PNG" and image.size == (SIZE, SIZE)  # the photo's own size (under 448 px)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{p.stem}.explain.png" for p in paths)  # no temp files


def test_cli_explain_usage_errors(trained, tmp_path, capsys):
    from edge_runner.cli.runner import main

    photo = _write_photos(tmp_path / "in", trained, 1)[0]
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    assert main([str(photo), "--model", str(trained["tflite"]), "--explain", str(not_a_dir)]) == 2
    assert f"--explain {not_a_dir}: exists and is not a directory" in capsys.readouterr().err
    assert main(["--camera", "--model", str(trained["tflite"]), "--explain", str(tmp_path)]) == 2
    assert "--explain only applies to INPUT files" in capsys.readouterr().err


def test_api_explain_returns_png_and_grid(trained):
    pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
    pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")
    import urllib.error
    import urllib.request

    from edge_runner.web.service import ServerOptions, build_service
    from edge_runner.web.server import start_server

    buffer = io.BytesIO()
    Image.fromarray(trained["x"][0]).save(buffer, format="PNG")
    running = start_server(build_service(ServerOptions(model=trained["tflite"], host="127.0.0.1", port=0)))
    try:
        def post(query: str):
            request = urllib.request.Request(f"{running.url}/api/classify{query}", data=buffer.getvalue(),
                                             headers={"Content-Type": "image/png"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        status, plain = post("")
        assert status == 200 and "explanation" not in plain
        status, answer = post("?explain=1")
        assert status == 200
        explanation = answer["explanation"]
        assert explanation["label"] == answer["label"] == LABELS[trained["y"][0]]
        assert explanation["rows"] == explanation["cols"] == 7 and len(explanation["grid"]) == 7
        assert explanation["measure"] == "logit_margin"
        prefix = "data:image/png;base64,"
        assert explanation["png"].startswith(prefix)
        with Image.open(io.BytesIO(base64.b64decode(explanation["png"][len(prefix):]))) as image:
            assert image.format == "PNG"
        expected = Occluder(Classifier(trained["tflite"])).explain(trained["x"][0]).grid
        np.testing.assert_allclose(np.array(explanation["grid"]), expected, atol=1e-3)
        status, error = post("?explain=maybe")
        assert status == 400 and error["error"] == "explain must be one of 1, true, yes, 0, false, no, , received 'maybe'"
    finally:
        running.stop()


def test_page_has_an_explain_button():
    script = (REPO / "edge_runner" / "web" / "static" / "app.js").read_text()
    assert "/api/classify?explain=1" in script and 'el("button", "explain", "explain")' in script


# -- Grad-CAM in train -----------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"])
def test_gradcam_finds_the_last_feature_map_of_every_backbone(backbone, tmp_path):
    pytest.importorskip("tensorflow", reason="Grad-CAM needs TensorFlow (pip install .[train])")
    import keras

    from train.backbones import BACKBONES
    from train.config import TrainConfig
    from train.explanations.gradcam import GradCamExplainer
    from train.model.network import build_network, export_model

    assert backbone in BACKBONES
    config = TrainConfig(data="x", out="y", backbone=backbone, weights="none", image_size=64, fine_tune_epochs=0)
    export_model(build_network(config, 2)).save(tmp_path / "model.keras")
    model = keras.saving.load_model(tmp_path / "model.keras")  # as a run's model.keras: the backbone is nested
    explainer = GradCamExplainer(model)
    assert explainer.feature.path[0] is not explainer.feature.layer  # found inside the nested backbone
    assert explainer.feature.shape[:2] == (2, 2)  # 64 px / 32: the last stage, not an earlier map
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3)).astype(np.uint8)
    cam = explainer.explain(pixels)
    np.testing.assert_allclose(cam.probabilities, model.predict(pixels[None].astype("float32"), verbose=0)[0], atol=1e-5)
    assert cam.grid.shape == (2, 2) and (cam.grid >= 0).all()


def test_train_explain_cli_writes_gradcam_pngs(trained, tmp_path, capsys):
    from train.cli import main

    paths = _write_photos(tmp_path / "in", trained, 2)
    out_dir = tmp_path / "cams"
    code = main(["explain", str(trained["run"]), str(paths[0]), str(paths[1]), str(tmp_path / "missing.jpg"),
                 "--out", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 1 and "missing.jpg" in captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, paths):
        source, label, score, written = line.split("  ")
        assert source == str(path) and label == path.stem.split(".")[0] and 0 < float(score) <= 1
        assert Path(written) == out_dir / f"{path.stem}.gradcam.png" and Path(written).is_file()
    assert main(["explain", str(tmp_path), str(paths[0]), "--out", str(out_dir)]) == 2
    assert f"RUN {tmp_path}: model.keras not found" in capsys.readouterr().err
    assert main(["explain", str(trained["run"]), str(paths[0]), "--out", str(out_dir), "--label", "purple"]) == 2
    assert "--label must be one of ['red', 'green', 'blue', 'none'], received 'purple'" in capsys.readouterr().err


def test_report_grid_shows_mistakes_and_correct_photos(trained, tmp_path):
    from train.report.evaluate import evaluate_probabilities
    from train.explanations.explain import GRID_FILENAME, pick_examples, write_report_grid

    x, y = trained["x"], trained["y"].copy()
    y[0] = (y[0] + 1) % 3  # one deliberate mistake
    evaluation = evaluate_probabilities(trained["keras"].predict(x.astype("float32"), verbose=0), y, LABELS)
    chosen = pick_examples(evaluation, mistakes=8, per_class=2)
    assert chosen[0] == (0, True) and sum(wrong for _, wrong in chosen) == 1
    assert len(chosen) == 1 + 2 * 3  # two correct per class that has photos ("none" has none here)
    files = write_report_grid(tmp_path, trained["keras"], evaluation, x, [f"p{i}.png" for i in range(len(x))])
    assert files == {"gradcam": GRID_FILENAME}
    with Image.open(tmp_path / GRID_FILENAME) as image:
        assert image.format == "PNG" and image.width > 600


# -- real photos (slow) ---------------------------------------------------------------

REAL_PHOTOS_PER_CLASS = 15  # 30 photos: ~50 inferences each; minutes on a busy 2-core machine
SHIPPED_INT8 = REPO / "models" / "cats_dogs_int8.tflite"
RUN_ENV = "EDGEKIT_EXPLAIN_RUN"


def real_photos(shared_data: Path, per_class: int, spec) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    chosen = []
    for folder in sorted(p for p in (shared_data / "validation").iterdir() if p.is_dir()):
        files = find_images(folder)
        chosen += [files[i] for i in sorted(rng.choice(len(files), size=per_class, replace=False))]
    return [preprocess(path, spec).array for path in chosen]


@pytest.mark.slow
def test_real_photos_occlusion_deletion_with_the_shipped_int8_model(shared_data):
    if not SHIPPED_INT8.is_file():
        pytest.skip(f"the shipped model is not at {SHIPPED_INT8}")
    occluder = Occluder(Classifier(SHIPPED_INT8, num_threads=1))
    images = real_photos(shared_data, REAL_PHOTOS_PER_CLASS, occluder.classifier.spec)
    summary = _deletion(occluder.scores, [occluder.explain(p).grid for p in images], images)
    print(summary.line("occlusion (real, shipped int8)"))
    assert summary.share > 0.5, summary.line("occlusion")
    assert summary.mean_map_drop > MIN_RATIO * summary.mean_random_drop, summary.line("occlusion")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A cats/dogs run of ``python -m train``: ``$EDGEKIT_EXPLAIN_RUN``, else a 2-epoch head-only run trained here."""
    from conftest import SHARED_DATA, SHARED_WEIGHTS

    given = os.environ.get(RUN_ENV)
    if given:
        if not (Path(given) / "model.keras").is_file():
            pytest.fail(f"${RUN_ENV}={given}: no model.keras there")
        return Path(given)
    if not SHARED_DATA.is_dir() or not SHARED_WEIGHTS.is_file():
        pytest.skip(f"no trained model: set ${RUN_ENV} to a `python -m train` output, or provide {SHARED_DATA} and "
                    f"{SHARED_WEIGHTS} so the test can train one")
    pytest.importorskip("tensorflow", reason="Grad-CAM needs TensorFlow (pip install .[train])")
    from train import TrainConfig, run_training

    out = tmp_path_factory.mktemp("real_run") / "run"
    run_training(TrainConfig(data=str(SHARED_DATA), out=str(out), weights=str(SHARED_WEIGHTS), epochs=2,
                             fine_tune_epochs=0, verbose=0))
    return out


@pytest.mark.slow
def test_real_photos_gradcam_deletion_with_a_trained_model(shared_data, real_run):
    import keras

    from train.explanations.gradcam import GradCamExplainer

    model = keras.saving.load_model(real_run / "model.keras")
    explainer = GradCamExplainer(model)
    images = real_photos(shared_data, REAL_PHOTOS_PER_CLASS, InputSpec.load(real_run / "contract.json"))
    summary = _deletion(explainer.scores, [explainer.explain(p).grid for p in images], images)
    print(summary.line("Grad-CAM (real)"))
    assert summary.share > 0.5, summary.line("Grad-CAM")
    assert summary.mean_map_drop > MIN_RATIO * summary.mean_random_drop, summary.line("Grad-CAM")


def test_browser_explain_button_shows_the_heatmap(trained, tmp_path, browser, keep_screenshot):
    """A real browser: upload a photo, press "explain", see the overlay replace the thumbnail."""
    pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
    from conftest import DESKTOP

    from edge_runner.web.server import start_server
    from edge_runner.web.service import ServerOptions, build_service

    photo = _write_photos(tmp_path / "in", trained, 1)[0]
    server = start_server(build_service(ServerOptions(model=trained["tflite"], host="127.0.0.1", port=0)))
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.url + "/")
        page.set_input_files("#files", [str(photo)])
        page.click("button.explain", timeout=60_000)
        page.wait_for_selector("img.heatmap", timeout=60_000)
        assert page.get_attribute("img.heatmap", "src").startswith("data:image/png;base64,")
        assert "hiding it lowers" in page.inner_text(".explain-note")
        assert page.evaluate("() => document.querySelector('img.heatmap').naturalWidth") == SIZE
        keep_screenshot(page, "explain-desktop.png")
        assert not problems, problems
    finally:
        context.close()
        server.stop()
