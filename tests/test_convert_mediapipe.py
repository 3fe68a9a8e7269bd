"""MediaPipe Tasks loads the exported models, reads their labels and normalisation, and agrees with the runner.

Runs ``tests/mediapipe/check_mediapipe.py`` in the side venv with ``mediapipe==0.10.21``
(MediaPipe pins numpy<2 and protobuf 4, which clash with the kit's TensorFlow):
``.venv-mediapipe/`` at the repo root, which ``make test`` creates, or the python named by
``EDGEKIT_MEDIAPIPE_PYTHON`` (the ``mediapipe_venv`` fixture). MediaPipe's metadata parser
is generated from the published schema, so it is an independent reader of what
``convert.tflite.metadata`` writes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow", reason="convert/ needs TensorFlow (pip install .[train])")

from conftest import LABELS, make_train_out, swap_field_ids  # noqa: E402

from convert.tflite import metadata as md  # noqa: E402
from convert.cli import main  # noqa: E402
from edge_runner import Classifier, preprocess  # noqa: E402
from edge_runner.core.model import read_packed_files  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "mediapipe" / "check_mediapipe.py"


@pytest.fixture(scope="module")
def mediapipe_python(mediapipe_venv) -> str:
    return mediapipe_venv.python


def run_check(python: str, models, images=()) -> list[dict]:
    command = [python, str(SCRIPT)] + [f"--model={m}" for m in models] + [str(p) for p in images]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_mediapipe_image_classifier_reads_names_and_matches_scores(mediapipe_python, tmp_path):
    train_out = make_train_out(tmp_path)
    out = tmp_path / "models"
    assert main(["export", str(train_out), "--out", str(out), "--variants", "float32,int8",
                 "--calibration-size", "20", "--quiet"]) == 0
    models = {variant: out / f"tiny_{variant}.tflite" for variant in ("float32", "int8")}
    classifier = Classifier(models["float32"])
    # Images already at the model's size, saved losslessly: MediaPipe's own resize is then
    # the identity, so both sides see the same pixels and the scores must match.
    images = []
    for label in LABELS:
        for photo in sorted((train_out.parent / "photos" / "validation" / label).glob(f"{label}.*.jpg"))[:2]:
            path = tmp_path / f"{photo.stem}.png"
            Image.fromarray(preprocess(photo, classifier.spec).array).save(path)
            images.append(path)
    lines = run_check(mediapipe_python, models.values(), images)

    for variant, path in models.items():
        (described,) = [line for line in lines if line["model"] == str(path) and "metadata" in line]
        # MediaPipe's own metadata parser reads exactly what was written.
        assert described["metadata"] == md.read_metadata(path.read_bytes())
        assert described["packed_files"] == ["contract.json", "labels.txt"]
        assert described["labels"] == list(LABELS)
        (image,) = described["metadata"]["subgraph_metadata"][0]["input_tensor_metadata"]
        assert image["content"]["content_properties"] == {
            "color_space": "RGB", "default_size": {"width": classifier.spec.width, "height": classifier.spec.height}}
        if variant == "int8":  # uint8 pixels go in as they are
            assert "process_units" not in image
        else:  # raw pixels into a graph that normalises itself; the score match below shows MediaPipe applies it
            assert image["process_units"] == [{"options_type": "NormalizationOptions",
                                               "options": {"mean": [0.0], "std": [1.0]}}]
        runner = Classifier(path)
        tolerance = runner.output_scale + 1e-6 if variant == "int8" else 1e-5  # one quantisation step for int8
        results = [line for line in lines if line["model"] == str(path) and "image" in line]
        assert len(results) == len(images)
        for result in results:
            probabilities = runner.probabilities(np.asarray(Image.open(result["image"]).convert("RGB")))
            names = [c["category_name"] for c in result["categories"]]
            assert sorted(names) == sorted(LABELS)
            assert names[0] == LABELS[int(np.argmax(probabilities))]
            for category in result["categories"]:
                assert category["category_name"] == LABELS[category["index"]]
                assert abs(category["score"] - probabilities[category["index"]]) <= tolerance, (variant, result)


def test_mediapipe_sees_a_swapped_field_id(mediapipe_python, tiny_models, tmp_path, monkeypatch):
    """mean and std in each other's slot, in writer and reader alike: our round trip is fooled, MediaPipe is not."""
    content = tiny_models["float32"].read_bytes()
    spec = tiny_models["spec"]
    metadata = md.classifier_metadata(spec, "float32", float_input=True, info=md.ModelInfo())
    files = {"labels.txt": spec.labels_text().encode(), "contract.json": spec.to_json().encode()}
    swap_field_ids(monkeypatch, "NormalizationOptions", "Mean", "Std")
    swapped = tmp_path / "swapped.tflite"
    swapped.write_bytes(md.embed(content, metadata, files))
    assert read_packed_files(swapped.read_bytes())["labels.txt"] == files["labels.txt"]
    ours = md.read_metadata(swapped.read_bytes())["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert ours["process_units"] == metadata["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"]

    (described,) = run_check(mediapipe_python, [swapped])
    (image,) = described["metadata"]["subgraph_metadata"][0]["input_tensor_metadata"]
    assert image["process_units"] == [{"options_type": "NormalizationOptions", "options": {"mean": [1.0], "std": [0.0]}}]
    assert described["labels"] == list(spec.labels)
