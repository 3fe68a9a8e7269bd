"""train/: whole runs on generated photos with a tiny MobileNetV2 (alpha 0.35, 32-48 px), and one on the real photos.

The tiny "pretrained" backbone is conftest's ``tiny_weights`` (a random MobileNetV2 with
calibrated BatchNorm statistics). Its random features do not separate the generated
classes reliably, so these fast tests check the mechanics (files, contract, runner round
trip, resume, layouts) and that the report's accuracy is the saved model's; learning is
checked by the slow test on the real photos.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")

from conftest import TINY_SIZE, convert_tiny, draw_photo, tiny_config, write_class_folders  # noqa: E402
from edge_runner.core.image import preprocess  # noqa: E402
from edge_runner.core.model import read_packed_files  # noqa: E402
from edge_runner.core.spec import InputSpec, contract_path_for  # noqa: E402
from train import ConfigError, TrainConfig, TrainError, run_training  # noqa: E402

SIZE = TINY_SIZE


@pytest.fixture(scope="module")
def two_class_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two_class")
    write_class_folders(root / "data" / "train", ["red", "green"], 16)
    write_class_folders(root / "data" / "validation", ["red", "green"], 6, seed=3)
    return root / "data"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, two_class_data, tiny_weights):
    """An uninterrupted 2-class run (head 2 epochs, fine-tuning 2 epochs)."""
    root = tmp_path_factory.mktemp("baseline")
    config = tiny_config(two_class_data, root / "out", tiny_weights)
    return config, run_training(config)


def test_run_writes_the_model_contract_and_report(baseline, two_class_data):
    import keras

    config, result = baseline
    out = result.out_dir
    for name in ("model.keras", "contract.json", "labels.txt", "split.json", "config.json", "skipped.txt", "report.json",
                 "report.md", "training_curves.png", "confusion_matrix.png", "roc.png", "worst_mistakes.png", "gradcam.png"):
        assert (out / name).is_file(), name
    assert result.model_path == out / "model.keras" and result.contract_path == out / "contract.json"
    assert result.epochs == {"head": 2, "fine_tune": 2}

    spec = InputSpec.load(result.contract_path)
    assert spec == InputSpec(labels=("green", "red"), height=SIZE, width=SIZE, resize="bilinear", crop="none",
                             name="green_red", backbone=f"mobilenet_v2_0.35_{SIZE}")
    assert (out / "labels.txt").read_text() == "green\nred\n"

    # The saved model is the inference graph only, takes raw 0-255 pixels and loads without custom objects.
    model = keras.saving.load_model(result.model_path)
    assert model.input_shape == (None, SIZE, SIZE, 3) and model.inputs[0].name == "image"
    kinds = {type(layer).__name__ for layer in model.layers}
    assert not {k for k in kinds if k.startswith("Random")} and "Rescaling" in kinds
    split = json.loads(result.split_path.read_text())
    pixels = np.stack([preprocess(item["path"], spec).array for item in split["validation"]]).astype(np.float32)
    probabilities = model.predict(pixels, verbose=0)
    assert probabilities.shape == (12, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    truth = np.array([spec.labels.index(item["label"]) for item in split["validation"]])
    assert result.val_accuracy == pytest.approx(float(np.mean(probabilities.argmax(axis=1) == truth)))

    assert split["labels"] == ["green", "red"] and len(split["train"]) == 32 and len(split["validation"]) == 12
    assert all(Path(item["path"]).is_absolute() for item in split["train"])
    assert TrainConfig.load(out / "config.json").image_size == SIZE

    report = json.loads(result.report_path.read_text())
    assert report["validation"]["accuracy"] == pytest.approx(result.val_accuracy)
    assert report["validation"]["roc_auc"] is not None and len(report["validation"]["per_class"]) == 2
    assert report["model"]["fine_tuned_layers"] == 29 and report["model"]["cut_layer"] == "block_13_project_BN"
    assert report["phases"]["head"]["epochs_run"] == 2 and report["command"].startswith("python -m train --data ")
    assert "Validation accuracy" in (out / "report.md").read_text()
    # No background class: today's behaviour, no threshold in the contract, no threshold table.
    assert spec.background_label is None and spec.threshold is None and spec.version == 4
    assert report["thresholds"] is None and report["data"]["background_label"] is None
    assert not (out / "thresholds.png").exists() and "## Threshold" not in (out / "report.md").read_text()


def test_contract_and_model_work_in_the_runner(baseline):
    """Float TFLite of the saved model + the written contract → the runner's Classifier accepts and classifies."""
    import keras

    from edge_runner.core.model import Classifier, read_contract

    _, result = baseline
    model = keras.saving.load_model(result.model_path)
    tflite = result.out_dir.parent / "runner" / "model.tflite"
    tflite.parent.mkdir()
    tflite.write_bytes(convert_tiny(model, "float32", SIZE))
    spec = InputSpec.load(result.contract_path)
    spec.save(contract_path_for(tflite))
    assert read_contract(tflite) == spec
    classifier = Classifier(tflite)
    photo = result.out_dir.parent / "green.jpg"
    draw_photo((40, 200, 60), seed=77).save(photo)
    pixels = preprocess(photo, classifier.spec).array
    prediction = classifier.classify(pixels)
    keras_probabilities = model.predict(pixels[None].astype(np.float32), verbose=0)[0]
    assert prediction.label == spec.labels[int(keras_probabilities.argmax())]
    np.testing.assert_allclose(prediction.probabilities, keras_probabilities, atol=1e-4)


class Interrupt:
    """on_epoch_end hook: records epochs; raises KeyboardInterrupt after ``(phase, epoch)``."""

    def __init__(self, stop_after: tuple[str, int] | None = None):
        self.stop_after = stop_after
        self.seen: list[tuple[str, int]] = []

    def __call__(self, phase: str, epoch: int, logs: dict) -> None:
        self.seen.append((phase, epoch))
        if (phase, epoch) == self.stop_after:
            raise KeyboardInterrupt


def test_resume_continues_from_the_last_finished_epoch(baseline, tmp_path):
    import keras

    config, expected = baseline
    resumable = TrainConfig(**{**config.to_dict(), "out": str(tmp_path / "out")})

    first = Interrupt(stop_after=("head", 1))
    with pytest.raises(KeyboardInterrupt):
        run_training(resumable, on_epoch_end=first)
    assert first.seen == [("head", 1)]
    assert not (tmp_path / "out" / "model.keras").exists()

    with pytest.raises(ConfigError, match="already holds a training run; pass --resume"):
        run_training(resumable)

    second = Interrupt(stop_after=("fine_tune", 1))
    with pytest.raises(KeyboardInterrupt):
        run_training(TrainConfig(**{**resumable.to_dict(), "resume": True}), on_epoch_end=second)
    assert second.seen == [("head", 2), ("fine_tune", 1)]

    third = Interrupt()
    result = run_training(TrainConfig(**{**resumable.to_dict(), "resume": True}), on_epoch_end=third)
    assert third.seen == [("fine_tune", 2)]
    assert result.epochs == {"head": 2, "fine_tune": 2}
    history = json.loads(result.report_path.read_text())["phases"]["fine_tune"]["history"]
    assert len(history["val_loss"]) == 2

    # Seeded per epoch, so the resumed run ends where the uninterrupted one did.
    resumed_model = keras.saving.load_model(result.model_path)
    baseline_model = keras.saving.load_model(expected.model_path)
    for a, b in zip(resumed_model.get_weights(), baseline_model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert result.val_accuracy == expected.val_accuracy

    with pytest.raises(ConfigError, match="trained with other options"):
        run_training(TrainConfig(**{**resumable.to_dict(), "resume": True, "seed": 5}))


def test_background_folder_run_exports_and_gates_three_classes(tmp_path, two_class_data, tiny_weights, capsys):
    """--background DIR: a third class 'other', its photos split and recorded, the threshold table, the
    recommended threshold in the contract, and `convert export` gating on (and embedding) all three classes."""
    from convert.cli import main as convert_main
    from convert.tflite.metadata import read_metadata
    from edge_runner import Classifier
    from train.cli import main
    from train.report.thresholds import THRESHOLDS

    negatives = write_class_folders(tmp_path / "negatives", ["sky"], 6, seed=7)
    write_class_folders(tmp_path / "negatives" / "more", ["sea"], 4, seed=8)
    out = tmp_path / "out"
    argv = ["--data", str(two_class_data), "--out", str(out), "--background", str(negatives), "--width", "0.35",
            "--image-size", str(SIZE), "--weights", str(tiny_weights), "--epochs", "2", "--fine-tune-epochs", "1",
            "--fine-tune-layers", "29", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"), "--no-determinism",
            "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    spec = InputSpec.load(out / "contract.json")
    assert spec.labels == ("green", "other", "red") and spec.background_label == "other"
    assert spec.name == "green_red"  # named by what it looks for
    assert spec.threshold in THRESHOLDS and spec.version == 4
    assert (out / "labels.txt").read_text() == "green\nother\nred\n"

    split = json.loads((out / "split.json").read_text())
    assert split["background_label"] == "other" and split["background_dir"] == str(negatives.resolve())
    assert split["counts"]["train"] == {"green": 16, "other": 8, "red": 16}
    assert split["counts"]["validation"] == {"green": 6, "other": 2, "red": 6}
    held_out = [item["path"] for item in split["validation"] if item["label"] == "other"]
    assert all(path.startswith(str(negatives.resolve())) for path in held_out)

    report = json.loads((out / "report.json").read_text())
    table = report["thresholds"]
    assert [row["threshold"] for row in table["rows"]] == list(THRESHOLDS)
    assert table["recommended"] == spec.threshold and table["background_label"] == "other"
    first = table["rows"][0]
    assert (first["positives"], first["negatives"]) == (12, 2)
    # Recall and false alarms only fall as the threshold rises.
    assert all(a["recall"] >= b["recall"] and a["false_alarm"] >= b["false_alarm"] for a, b in zip(table["rows"], table["rows"][1:]))
    meeting = [row["threshold"] for row in table["rows"] if row["false_alarm"] <= 0.01]
    assert spec.threshold == (min(meeting) if meeting else spec.threshold)
    # Imbalanced (16/16/8): class weights, and the report says so.
    assert report["data"]["class_weights"]["other"] > report["data"]["class_weights"]["green"]
    assert report["data"]["imbalance_handling"].startswith("class weights")
    markdown = (out / "report.md").read_text()
    assert "## Threshold: recall and false alarms" in markdown and "**recommended**" in markdown
    assert "background class" in markdown and (out / "thresholds.png").stat().st_size > 1000

    tflite = tmp_path / "tflite"
    code = convert_main(["export", str(out), "--out", str(tflite), "--variants", "float32,int8", "--calibration-size", "20",
                         "--quiet", "--max-accuracy-drop", "100", "--min-agreement", "0"])
    assert code == 0, capsys.readouterr().err
    gate = json.loads((tflite / "report.json").read_text())
    assert [row["variant"] for row in gate["variants"]] == ["float32", "int8"]
    for row in gate["variants"]:
        assert row["scores"]["photos"] == 14 and set(row["scores"]["per_class"]) == {"green", "other", "red"}
    int8 = tflite / "green_red_int8.tflite"
    embedded = InputSpec.from_json(read_packed_files(int8.read_bytes())["contract.json"])
    assert (embedded.background_label, embedded.threshold) == ("other", spec.threshold)
    assert read_packed_files(int8.read_bytes())["labels.txt"].decode() == "green\nother\nred\n"
    assert "'other' means nothing of interest" in read_metadata(int8.read_bytes())["description"]
    classifier = Classifier(int8)
    assert classifier.spec.threshold == spec.threshold and classifier.spec.interest_labels == ("green", "red")


def test_three_classes_from_scratch(tmp_path, photo_folders):
    """--weights none trains the whole network (phase 1 skipped, BatchNorm trained); N=3 works the same way."""
    data = photo_folders(["red", "green", "blue"], per_class=8)
    config = TrainConfig(
        data=str(data), out=str(tmp_path / "out"), alpha=0.35, image_size=32, weights="none", epochs=5,
        fine_tune_epochs=1, batch_size=8, validation_fraction=0.25, cache_dir=str(tmp_path / "cache"),
        deterministic=False, verbose=0,
    )
    result = run_training(config)
    report = json.loads(result.report_path.read_text())
    assert result.labels == ("blue", "green", "red") and result.num_validation == 6
    assert result.epochs == {"head": 0, "fine_tune": 1}
    assert report["model"]["batchnorm"].startswith("trained") and report["model"]["fine_tuned_layers"] > 100
    assert len(report["validation"]["confusion_matrix"]["rows_true_columns_predicted"]) == 3
    assert not (result.out_dir / "roc.png").exists()
    # One epoch from scratch learns little, so no floor: the recorded accuracy must be the saved model's own
    # on the six held-out photos, and the confusion matrix's diagonal.
    import keras

    spec = InputSpec.load(result.contract_path)
    split = json.loads(result.split_path.read_text())
    pixels = np.stack([preprocess(item["path"], spec).array for item in split["validation"]]).astype(np.float32)
    predicted = keras.saving.load_model(result.model_path).predict(pixels, verbose=0).argmax(axis=1)
    truth = np.array([spec.labels.index(item["label"]) for item in split["validation"]])
    assert result.val_accuracy == pytest.approx(float(np.mean(predicted == truth)))
    matrix = np.array(report["validation"]["confusion_matrix"]["rows_true_columns_predicted"])
    assert matrix.sum() == 6 and np.trace(matrix) / 6 == pytest.approx(result.val_accuracy)


def test_cli_labels_from_filename_full_mode_mirrored(tmp_path, tiny_weights, capsys):
    """The CLI on a Kaggle-style flat folder with two corrupt files; fine-tuning through the whole network
    with live augmentation, under tf.distribute.MirroredStrategy."""
    from train.cli import main

    flat = tmp_path / "kaggle"
    flat.mkdir()
    for i in range(10):
        draw_photo((220, 40, 40), seed=i).save(flat / f"cat.{i}.jpg")
        draw_photo((40, 70, 220), seed=50 + i).save(flat / f"dog.{i}.jpg")
    (flat / "cat.99.jpg").write_bytes(b"")
    (flat / "dog.98.jpg").write_text("not a photo")
    out = tmp_path / "out"
    argv = ["--data", str(flat), "--out", str(out), "--labels-from-filename", "--width", "0.35", "--image-size", str(SIZE),
            "--weights", str(tiny_weights), "--epochs", "1", "--fine-tune-epochs", "1", "--fine-tune-mode", "full",
            "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"), "--strategy", "mirrored",
            "--quiet", "--no-determinism"]
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("validation accuracy ") and str(out) in summary and "2 skipped" in summary
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in skipped) == ["cat.99.jpg", "dog.98.jpg"]
    split = json.loads((out / "split.json").read_text())
    assert split["layout"] == "labels from file names" and len(split["skipped"]) == 2
    assert len(split["train"]) == 16 and len(split["validation"]) == 4

    report = json.loads((out / "report.json").read_text())
    assert report["model"]["fine_tune_mode"] == "full" and report["config"]["strategy"] == "mirrored"
    assert report["phases"]["fine_tune"]["epochs_run"] == 1

    assert main(argv) == 2  # the same --out again without --resume or --overwrite
    assert "already holds a training run" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_file_that_does_not_fit_the_backbone(tmp_path, two_class_data, tiny_weights):
    config = tiny_config(two_class_data, tmp_path / "out", tiny_weights, alpha=0.5)
    with pytest.raises(TrainError, match=r"^--weights .*tiny_mobilenet_v2_0.35.weights.h5: does not fit mobilenet_v2 alpha 0.5"):
        run_training(config)
    assert not (tmp_path / "out" / "model.keras").exists()


@pytest.mark.slow
def test_real_photos_head_only_at_160px(tmp_path, shared_data, shared_weights):
    """A subset of the real cats and dogs, 160 px, head only: the pretrained features must separate them."""
    for split, count in (("train", 200), ("validation", 100)):
        for label in ("cats", "dogs"):
            folder = tmp_path / "data" / split / label
            folder.mkdir(parents=True)
            for photo in sorted((shared_data / split / label).glob("*.jpg"))[:count]:
                os.symlink(photo, folder / photo.name)
    config = TrainConfig(
        data=str(tmp_path / "data"), out=str(tmp_path / "out"), image_size=160, weights=str(shared_weights), epochs=15,
        fine_tune_epochs=0, cache_dir=str(tmp_path / "cache"), verbose=0,
    )
    result = run_training(config)
    assert result.num_train == 400 and result.num_validation == 200
    assert result.val_accuracy >= 0.93, result.val_accuracy
    assert InputSpec.load(result.contract_path).backbone == "mobilenet_v2_1.0_160"
