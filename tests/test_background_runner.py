"""A model whose contract names a background label: the runner says "nothing recognised".

The model is ``conftest.build_colour_keras``: it really tells red, green and blue
apart by mean colour, so each generated photo's answer is known; its contract
says ``background_label="blue"`` and ``threshold=0.6``. A near-grey photo scores
about 0.44 at best, below the threshold: ``unknown``. Expected scores come from a
``Classifier`` run directly on the same files.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, draw_photo, run_runner
from PIL import Image

from edge_runner.core.image import preprocess
from edge_runner.core.model import Classifier
from edge_runner.core.spec import InputSpec, contract_path_for

GREYISH = (130, 120, 120)  # best label red at about 0.44: below the contract's threshold of 0.6


run = run_runner  # python -m edge_runner, in-process (tests/conftest.py)


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for index, name in enumerate(("red", "green", "blue")):
        out[name] = tmp_path / f"{name}.jpg"
        draw_photo(CLASS_COLOURS[name], size=(96, 72), seed=index).save(out[name], "JPEG", quality=95)
    out["grey"] = tmp_path / "grey.png"
    Image.new("RGB", (96, 72), GREYISH).save(out["grey"])
    return out


@pytest.fixture
def plain_model(background_models, tmp_path) -> Path:
    """The same network with a contract that names no background label and no threshold (as before contract v2)."""
    path = tmp_path / "plain" / "colours.tflite"
    path.parent.mkdir()
    shutil.copy(background_models["int8"], path)
    InputSpec(labels=("red", "green", "blue"), height=32, width=32, name="plain").save(contract_path_for(path))
    return path


def reference(model: Path, photo: Path, threshold: float | None = None):
    classifier = Classifier(model, num_threads=1)
    return classifier.classify(preprocess(photo, classifier.spec).array, threshold=threshold)


def test_the_model_sees_what_the_tests_assume(background_models, photos):
    model = background_models["int8"]
    assert reference(model, photos["red"]).label == "red"
    assert reference(model, photos["green"]).label == "green"
    blue = reference(model, photos["blue"])
    assert blue.label == "blue" and blue.detected is False and blue.score > 0.9
    grey = reference(model, photos["grey"])
    assert grey.label == "unknown" and grey.detected is False and 0.34 < grey.score < 0.6
    assert grey.top_k[0].label == "red"


def test_text_says_nothing_recognised_with_the_score(background_models, photos, capsys):
    model = background_models["int8"]
    code, out, err = run([photos["red"], photos["blue"], photos["grey"], "--model", model, "--workers", "0"], capsys)
    assert code == 0, err
    red, blue, grey = out.splitlines()
    want = reference(model, photos["red"])
    assert red == f"{photos['red']}  red  {want.score:.3f}"
    want = reference(model, photos["blue"])
    assert blue == f"{photos['blue']}  nothing recognised  (blue {want.score:.3f})"
    want = reference(model, photos["grey"])
    assert grey == f"{photos['grey']}  nothing recognised with enough confidence  (best: red {want.score:.3f}, threshold 0.600)"


def test_threshold_flag_overrides_the_contract(background_models, photos, capsys):
    model = background_models["int8"]
    code, out, _ = run([photos["grey"], "--model", model, "--threshold", "0.3"], capsys)
    assert code == 0
    assert out == f"{photos['grey']}  red  {reference(model, photos['grey'], threshold=0.3).score:.3f}\n"
    code, out, _ = run([photos["red"], "--model", model, "--threshold", "0.999"], capsys)
    assert "nothing recognised with enough confidence" in out and "threshold 0.999)" in out


def test_top_k_is_still_listed_after_the_words(background_models, photos, capsys):
    code, out, _ = run([photos["blue"], "--model", background_models["float32"], "--top-k", "3"], capsys)
    assert code == 0
    head, ranked = out.rstrip("\n").split("  [")
    assert head.split("  ")[1] == "nothing recognised"
    assert [part.rsplit(" ", 1)[0] for part in ranked.rstrip("]").split(", ")][0] == "blue"


def test_json_keeps_the_label_and_says_detected(background_models, photos, capsys):
    model = background_models["int8"]
    code, out, err = run([*photos.values(), "--model", model, "--json", "--workers", "0"], capsys)
    assert code == 0, err
    records = {Path(r["source"]).stem: r for r in map(json.loads, out.splitlines())}
    assert {name: (r["label"], r["detected"]) for name, r in records.items()} == {
        "red": ("red", True), "green": ("green", True), "blue": ("blue", False), "grey": ("unknown", False),
    }
    assert records["blue"]["score"] == pytest.approx(reference(model, photos["blue"]).score, abs=1e-6)


def test_a_model_without_background_label_prints_as_before(plain_model, photos, capsys):
    code, out, _ = run([*photos.values(), "--model", plain_model, "--workers", "0"], capsys)
    assert code == 0
    assert "nothing" not in out
    for line in out.splitlines():
        source, label, score = line.split("  ")
        want = reference(plain_model, Path(source))
        assert (label, float(score)) == (want.label, pytest.approx(want.score, abs=1e-3))
    assert "  blue  " in out  # blue is a label like any other here


def test_verbose_says_which_threshold_and_where_from(background_models, plain_model, photos, capsys):
    _, _, err = run([photos["red"], "--model", background_models["int8"], "-v"], capsys)
    assert "threshold: 0.6 (from the model's contract (its recommended threshold))" in err
    assert "background label: blue (answered as 'nothing recognised')" in err
    _, _, err = run([photos["red"], "--model", background_models["int8"], "-v", "--threshold", "0.25"], capsys)
    assert "threshold: 0.25 (from --threshold)" in err
    _, _, err = run([photos["red"], "--model", plain_model, "-v"], capsys)
    assert "threshold: 0 (from default: neither --threshold nor the model's contract sets one)" in err
    assert "background label" not in err


# -- camera ---------------------------------------------------------------------------


def write_clip(path: Path, colours, frames_each: int = 4, size=(96, 64)) -> Path:
    """An MJPG .avi with ``frames_each`` frames of each RGB colour (plus a little noise)."""
    cv2 = pytest.importorskip("cv2", reason="the camera tests need OpenCV (pip install .[camera])")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for colour in colours:
        for _ in range(frames_each):
            frame = np.empty((size[1], size[0], 3), np.uint8)
            frame[:] = colour
            frame += rng.integers(0, 6, frame.shape, dtype=np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    colours = [CLASS_COLOURS["red"], CLASS_COLOURS["green"], CLASS_COLOURS["blue"], GREYISH]
    return write_clip(tmp_path / "door.avi", colours)


def test_camera_text_and_summary_count_frames_with_nothing(background_models, clip, capsys):
    code, out, err = run(["--camera", clip, "--model", background_models["int8"]], capsys)
    assert code == 0, err
    answers = [line.split("  ")[1] for line in out.splitlines()]
    assert answers == ["red"] * 4 + ["green"] * 4 + ["nothing recognised"] * 4 + ["nothing recognised with enough confidence"] * 4
    summary, counts = err.strip().splitlines()[-2:]
    assert summary.startswith(f"{clip}: 16 frames in ") and summary.endswith("(end of video)")
    assert counts == f"{clip}: frames per label: red 4, green 4; nothing recognised 8 (blue 4, unknown 4)"


def test_camera_json_says_detected_per_frame(background_models, clip, capsys):
    code, out, err = run(["--camera", clip, "--model", background_models["int8"], "--json"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["label"], r["detected"]) for r in records] == (
        [("red", True)] * 4 + [("green", True)] * 4 + [("blue", False)] * 4 + [("unknown", False)] * 4
    )
    assert err.strip().splitlines()[-1].endswith("nothing recognised 8 (blue 4, unknown 4)")


def test_camera_summary_without_background_label_is_unchanged(plain_model, clip, capsys):
    code, out, err = run(["--camera", clip, "--model", plain_model], capsys)
    assert code == 0
    assert "nothing" not in out + err
    assert err.strip().splitlines()[-1].startswith(f"{clip}: 16 frames in ")


# -- web API and live view ----------------------------------------------------------------


def test_web_api_answers_and_model_description(background_models, photos, tmp_path):
    pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
    from edge_runner.web.service import ServerOptions, build_service
    from edge_runner.web.server import start_server

    model = background_models["int8"]
    clip = write_clip(tmp_path / "blue.avi", [CLASS_COLOURS["blue"]], frames_each=6)
    server = start_server(build_service(ServerOptions(model=model, host="127.0.0.1", port=0, camera=str(clip), camera_fps=20)))
    try:
        with urllib.request.urlopen(server.url + "/api/model", timeout=30) as response:
            described = json.load(response)
        assert described["background_label"] == "blue" and described["threshold"] == 0.6
        assert described["contract"]["background_label"] == "blue"
        for name, label, detected in (("red", "red", True), ("blue", "blue", False), ("grey", "unknown", False)):
            request = urllib.request.Request(
                server.url + "/api/classify", data=photos[name].read_bytes(),
                headers={"Content-Type": "application/octet-stream", "X-Filename": photos[name].name},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
            assert (answer["label"], answer["detected"]) == (label, detected), name
            assert answer["score"] == pytest.approx(reference(model, photos[name]).score, abs=1e-6)
        # The live view: the frame is fetched (a viewer), then the state says nothing was recognised.
        with urllib.request.urlopen(server.url + "/api/camera/frame.jpg", timeout=30) as response:
            assert response.read(2) == b"\xff\xd8"
        with urllib.request.urlopen(server.url + "/api/camera", timeout=30) as response:
            live = json.load(response)
        assert (live["label"], live["detected"], live["nothing"]) == ("blue", False, "nothing recognised")
    finally:
        server.stop()


def test_web_api_of_a_model_without_background_label(plain_model):
    pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
    from edge_runner.web.service import ServerOptions, build_service
    from edge_runner.web.server import start_server

    server = start_server(build_service(ServerOptions(model=plain_model, host="127.0.0.1", port=0)))
    try:
        with urllib.request.urlopen(server.url + "/api/model", timeout=30) as response:
            described = json.load(response)
        assert described["background_label"] is None and described["threshold"] is None
    finally:
        server.stop()
