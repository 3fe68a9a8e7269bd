"""MediaPipe Tasks loads the exported models and agrees with the runner (optional).

Runs ``tests/mediapipe/check_mediapipe.py`` with the Python named by
``EDGEKIT_MEDIAPIPE_PYTHON``: a separate virtual environment with
``mediapipe==0.10.21`` (MediaPipe pins numpy<2 and protobuf 4, which clash with
the kit's TensorFlow). Create one with::

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    EDGEKIT_MEDIAPIPE_PYTHON=/tmp/mpvenv/bin/python pytest tests/test_convert_mediapipe.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow", reason="convert/ needs TensorFlow (pip install .[train])")

from test_convert import LABELS, make_train_out  # noqa: E402

from convert import metadata as md  # noqa: E402
from convert.cli import main  # noqa: E402
from edge_runner import Classifier, preprocess  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "mediapipe" / "check_mediapipe.py"


@pytest.fixture(scope="module")
def mediapipe_python() -> str:
    python = os.environ.get("EDGEKIT_MEDIAPIPE_PYTHON")
    if not python:
        pytest.skip("EDGEKIT_MEDIAPIPE_PYTHON is not set (point it at a venv's python with mediapipe==0.10.21)")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        pytest.skip(f"EDGEKIT_MEDIAPIPE_PYTHON={python} is not an executable file")
    return python


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
    command = [mediapipe_python, str(SCRIPT)] + [f"--model={m}" for m in models.values()] + [str(p) for p in images]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    for variant, path in models.items():
        (described,) = [line for line in lines if line["model"] == str(path) and "metadata" in line]
        # MediaPipe's own metadata parser reads exactly what was written.
        assert described["metadata"] == md.read_metadata(path.read_bytes())
        assert described["packed_files"] == ["contract.json", "labels.txt"]
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
