"""The model the kit ships in models/: consistent files, and its accuracy through the runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runner import Classifier, InputSpec, preprocess
from edge_runner.core.model import read_contract, read_packed_files
from edge_runner.core.spec import contract_path_for
from conftest import REPO, draw_photo

MODELS = REPO / "models"
SHIPPED = {"int8": MODELS / "cats_dogs_int8.tflite", "float16": MODELS / "cats_dogs_float16.tflite"}
LABELS = ("cats", "dogs", "other")
BACKGROUND = "other"
# The seed `make model` trains with: the held-out background photos follow from it.
SHIPPED_SEED = 0


@pytest.mark.parametrize("variant", sorted(SHIPPED))
def test_shipped_files_are_consistent(variant):
    path = SHIPPED[variant]
    content = path.read_bytes()
    packed = read_packed_files(content)
    embedded = InputSpec.from_json(packed["contract.json"])
    assert embedded == InputSpec.load(contract_path_for(path)) == read_contract(path)
    assert embedded.labels == LABELS
    assert embedded.background_label == BACKGROUND and embedded.version == 3
    assert embedded.rescue == {"threshold": embedded.threshold, "limit": 0.5, "teacher": "imagenet"}
    assert embedded.threshold is not None and 0.5 <= embedded.threshold < 1.0
    assert embedded.interest_labels == ("cats", "dogs")
    assert embedded.extra["variant"] == variant
    assert packed["labels.txt"].decode() == (MODELS / "labels.txt").read_text() == "cats\ndogs\nother\n"

    classifier = Classifier(path)
    assert classifier.variant == variant
    assert classifier.input_dtype == (np.uint8 if variant == "int8" else np.float32)
    if variant == "int8":
        assert (classifier.input_scale, classifier.input_zero_point) == (1.0, 0.0)
    # A generated photo (a coloured shape on noise) shows no cat and no dog: nothing detected, the background label
    # on top (below the contract's threshold the runner says `unknown`, which is not a detection either).
    prediction = classifier.classify(np.asarray(draw_photo((200, 120, 60), size=(224, 224))), top_k=3)
    assert prediction.detected is False and prediction.top_k[0].label == BACKGROUND, prediction
    assert prediction.label == (BACKGROUND if prediction.score >= embedded.threshold else "unknown")
    assert {item.label for item in prediction.top_k} == set(LABELS)
    assert abs(sum(item.score for item in prediction.top_k) - 1.0) < 0.01


@pytest.mark.parametrize("variant", sorted(SHIPPED))
def test_shipped_metadata_is_standard_tflite_metadata(variant):
    pytest.importorskip("flatbuffers")
    from convert.tflite.metadata import read_metadata

    metadata = read_metadata(SHIPPED[variant].read_bytes())
    assert metadata["name"] == "cats_dogs"
    (subgraph,) = metadata["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    assert image["content"]["content_properties"]["default_size"] == {"width": 224, "height": 224}
    (output,) = subgraph["output_tensor_metadata"]
    assert [(f["name"], f["type"]) for f in output["associated_files"]] == [("labels.txt", "TENSOR_AXIS_LABELS")]
    assert "'other' means nothing of interest" in metadata["description"]


def test_shipped_int8_is_small():
    assert SHIPPED["int8"].stat().st_size <= 4_000_000


def test_runner_defaults_to_the_shipped_int8(tmp_path):
    photo = tmp_path / "photo.jpg"
    draw_photo((90, 60, 30), size=(300, 200)).save(photo)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "edge_runner", "--json", str(photo)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    # The shipped int8's own answer on this photo (no cat, no dog: the background label), score for score.
    int8 = Classifier(SHIPPED["int8"])
    expected = int8.classify(preprocess(photo, int8.spec).array, top_k=3).to_dict(str(photo))
    assert record["label"] == expected["label"] == BACKGROUND and record["detected"] is False
    assert [(t["label"], t["score"]) for t in record["top_k"]] == [(t["label"], t["score"]) for t in expected["top_k"]]


def held_out_background(shared_data: Path) -> list[Path]:
    """The photos of ../shared/data/other that training held out (the same seeded split `make model` made)."""
    from train.data.split import background_split

    other = shared_data.parent / "other"
    if not other.is_dir():
        pytest.skip(f"{other}: no background photos (see the README's data section)")
    _, held_out = background_split(other, validation_fraction=0.2, seed=SHIPPED_SEED)
    return held_out


@pytest.mark.slow
def test_shipped_int8_stays_quiet_on_held_out_non_pet_photos(shared_data):
    """≤ 3% of the held-out photos with no cat or dog get `cats` or `dogs` through the runner (contract threshold)."""
    held_out = held_out_background(shared_data)
    assert len(held_out) == 85
    result = subprocess.run(
        [sys.executable, "-m", "edge_runner", "--json", "--model", str(SHIPPED["int8"]), *map(str, held_out)],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(held_out)
    alarms = [r["source"] for r in records if r["detected"]]
    assert all(r["detected"] == (r["label"] in ("cats", "dogs")) for r in records)
    assert len(alarms) / len(records) <= 0.03, f"{len(alarms)} false alarms of {len(records)}: {alarms}"


@pytest.mark.slow
def test_shipped_int8_accuracy_on_the_validation_photos(shared_data, tmp_path):
    """≥ 97.5% right labels (threshold applied) through the runner's own file pipeline, ≥ 99% agreement with float16.

    The model trained on five sources, with its rescue head, gets 98.6% here (int8 at its threshold 0.7; the
    Kaggle-only model got 98.5%) and far better figures on other sources: models/MODEL_CARD.md.
    """
    validation = shared_data / "validation"
    answers = {}
    for variant, path in SHIPPED.items():
        result = subprocess.run(
            [sys.executable, "-m", "edge_runner", "--json", "--top-k", "1", "--model", str(path), str(validation)],
            capture_output=True, text=True, cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        answers[variant] = {r["source"]: r["label"] for r in map(json.loads, result.stdout.splitlines())}
    int8 = answers["int8"]
    assert len(int8) == 1000
    accuracy = np.mean([label == Path(source).parent.name for source, label in int8.items()])
    agreement = np.mean([int8[source] == answers["float16"][source] for source in int8])
    assert accuracy >= 0.975, f"int8 accuracy {accuracy:.4f}"
    assert agreement >= 0.99, f"int8 vs float16 agreement {agreement:.4f}"


# The sources `make model` holds out (Makefile: HOLDOUT): never trained on, only measured.
HELD_OUT_PETS = {"cats": ("catdataset_", "commonpets_"), "dogs": ("commonpets_",)}
HELD_OUT_BACKGROUND = ("more_other", "intelscene_")


@pytest.mark.slow
def test_shipped_int8_on_sources_it_never_trained_on(shared_data):
    """The model card's held-out figures through the runner: pets of two sources, street and building scenes."""
    root = shared_data.parent
    pets = {label: [p for p in sorted((root / "more_pets" / label).glob("*.jpg")) if p.name.startswith(prefixes)]
            for label, prefixes in HELD_OUT_PETS.items()}
    scenes = sorted((root / HELD_OUT_BACKGROUND[0]).glob(HELD_OUT_BACKGROUND[1] + "*.jpg"))
    if not scenes or not all(pets.values()):
        pytest.skip(f"{root}: the held-out sources are missing (see the README's data section)")
    inputs = [*pets["cats"], *pets["dogs"], *scenes]
    result = subprocess.run([sys.executable, "-m", "edge_runner", "--json", "--model", str(SHIPPED["int8"]), *map(str, inputs)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = {r["source"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(answers) == len(inputs) == 98 + 14 + 18 + 198
    right = {label: np.mean([answers[str(p)]["label"] == label for p in photos]) for label, photos in pets.items()}
    alarms = np.mean([answers[str(p)]["detected"] for p in scenes])
    assert right["cats"] >= 0.94 and right["dogs"] >= 0.8, right  # 108/112 and 16/18 when shipped
    assert alarms <= 0.01, f"{alarms:.3f} of the scenes called a pet"


def test_mediapipe_reads_the_shipped_models(tmp_path):
    """MediaPipe Tasks' ImageClassifier (what Android/iOS apps call) names the right category with the runner's score."""
    python = os.environ.get("EDGEKIT_MEDIAPIPE_PYTHON")
    if not python or not os.access(python, os.X_OK):
        pytest.skip("EDGEKIT_MEDIAPIPE_PYTHON is not set to a python with mediapipe==0.10.21 (make test sets it up)")
    script = REPO / "tests" / "mediapipe" / "check_mediapipe.py"
    images = []
    for i, colour in enumerate([(200, 120, 60), (40, 40, 40), (230, 230, 220)]):
        # Already at the model's size and lossless, so MediaPipe's own resize is the identity.
        path = tmp_path / f"photo{i}.png"
        draw_photo(colour, size=(224, 224), seed=i).save(path)
        images.append(path)
    command = [python, str(script), *[f"--model={p}" for p in SHIPPED.values()], *map(str, images)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for variant, path in SHIPPED.items():
        runner = Classifier(path)
        tolerance = runner.output_scale + 1e-6 if variant == "int8" else 1e-3
        rows = [r for r in results if r["model"] == str(path) and "image" in r]
        assert len(rows) == len(images)
        for row in rows:
            probabilities = runner.probabilities(np.asarray(Image.open(row["image"]).convert("RGB")))
            assert row["categories"][0]["category_name"] == LABELS[int(np.argmax(probabilities))]
            for category in row["categories"]:
                assert category["category_name"] == LABELS[category["index"]]
                assert abs(category["score"] - probabilities[category["index"]]) <= tolerance, (variant, row)
