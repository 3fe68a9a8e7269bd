"""``python -m convert gate-device``: a retrained model against the model on the device (issue 23), on colour models.

Models answer from the mean colour alone (logits = mean RGB 0–1 · W + b), so each test says which answer a photo
gets: the device model calls the orange doormat a cat; the retrained one calls it 'other' and still knows red cats,
green dogs and blue 'other', but calls a brown cat 'other' (what broke).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import convert_tiny

SIZE = 32
LABELS = ("cat", "dog", "other")
RED, GREEN, BLUE, ORANGE, BROWN = (220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 120, 30), (153, 115, 25)
DEVICE_W = (np.eye(3) * 12, np.zeros(3))
NEW_W = (np.array([[12.0, -6.0, 0.0], [-20.0, 12.0, 0.0], [0.0, 0.0, 12.0]]), np.array([0.0, 0.0, 4.0]))
SWAPPED_W = (np.eye(3)[:, [1, 0, 2]] * 12, np.zeros(3))  # cats are dogs: worse


def colour_keras(weights):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1.0 / 255.0)(inputs))
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(x), name="colours")
    dense.set_weights([np.asarray(weights[0], np.float32), np.asarray(weights[1], np.float32)])
    return model


def spec():
    from edge_runner.core.spec import InputSpec

    return InputSpec(labels=LABELS, height=SIZE, width=SIZE, name="pets", background_label="other", threshold=0.6)


def save_tflite(weights, path: Path) -> Path:
    from edge_runner.core.spec import contract_path_for

    path.write_bytes(convert_tiny(colour_keras(weights), "float32", SIZE))
    spec().save(contract_path_for(path))
    return path


def photo(path: Path, colour, seed: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, np.int16) + rng.integers(-8, 9, (48, 64, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """``{"run", "export", "device", "new", "swapped"}``: a retrained run folder (model.keras = the new model), its
    review export, and the three models as .tflite."""
    pytest.importorskip("tensorflow", reason="the colour models are built with TensorFlow (pip install .[train])")
    root = tmp_path_factory.mktemp("gate_device")
    run, export = root / "new_run", root / "export"
    run.mkdir()
    colour_keras(NEW_W).save(run / "model.keras")
    spec().save(run / "contract.json")
    validation = [{"path": photo(root / "web" / f"{label}_{i}.jpg", colour, i), "label": label, "source": "web"}
                  for label, colour in (("cat", RED), ("dog", GREEN), ("other", BLUE)) for i in range(8)]
    validation.append({"path": photo(root / "web" / "cat_brown.jpg", BROWN, 99), "label": "cat", "source": "web"})
    frames, entries = [], []
    for n, (label, colour, group) in enumerate([("other", ORANGE, f"t-2026120601{m}0") for m in range(3) for _ in range(2)]
                                               + [("cat", RED, "visit-1"), ("cat", BROWN, "visit-2")]):
        name = f"{label}/{group}--20261206-0100{n:02d}-visit-{n}.jpg"
        photo(export / name, colour, 200 + n)
        frames.append({"file": name, "label": label, "model_label": "cat", "model_score": 0.9, "model_sha256": "0" * 64,
                       "time": "2026-12-06T01:00:00+00:00", "group": group, "id": f"20261206-0100{n:02d}-visit-{n}"})
        entries.append({"path": str((export / name).resolve()), "label": label, "source": "door", "group": group})
    (export / "manifest.json").write_text(json.dumps({"format": "edgekit-review-export", "version": 1, "labels": list(LABELS),
                                                      "background_label": "other", "frames": frames}))
    train = [{"path": photo(root / "web" / f"t_{label}_{i}.jpg", colour, 50 + i), "label": label, "source": "web"}
             for label, colour in (("cat", RED), ("dog", GREEN), ("other", BLUE)) for i in range(4)]
    # The retrain trained on the door's frames but one group, which it validated on (never compared as 'old').
    door_val = [e for e in entries if e["group"] == "t-202612060120"]
    split = {"labels": list(LABELS), "review_exports": ["door"], "train": train + [e for e in entries if e not in door_val],
             "validation": validation + door_val}
    (run / "split.json").write_text(json.dumps(split))
    return {"run": run, "export": export, "device": save_tflite(DEVICE_W, root / "device.tflite"),
            "new": save_tflite(NEW_W, root / "new.tflite"), "swapped": save_tflite(SWAPPED_W, root / "swapped.tflite")}


def gate(world, out: Path, *extra: str) -> int:
    from convert.cli import main

    return main(["gate-device", str(world["run"]), "--device", str(world["device"]), "--reviewed", str(world["export"]),
                 "--out", str(out), "--quiet", *extra])


def test_counts_what_was_fixed_and_what_broke_and_accepts(world, tmp_path, capsys):
    assert gate(world, tmp_path, "--new-model", str(world["new"])) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accepted"] and report["reasons"] == []
    old = report["old_validation"]
    assert (old["photos"], old["lost"], old["gained"]) == (25, 1, 0) and old["mcnemar_p"] == 0.5  # door frames excluded
    assert report["reviewed"] == {"frames": 8, "device_wrong": 6, "fixed": 6, "fixed_fraction": 1.0, "new_wrong": 1,
                                  "not_trained_on": {"device_wrong": 2, "fixed": 2}}
    assert len(report["fixed"]) == 6 and all(f["device"] == "cat" and f["new"] == "other" for f in report["fixed"])
    assert sorted((f["part"], Path(f["path"]).name) for f in report["broke"]) == [
        ("reviewed", "visit-2--20261206-010007-visit-7.jpg"), ("validation", "cat_brown.jpg")]
    assert Image.open(tmp_path / "fixed.png").size[0] > 160 and (tmp_path / "broke.png").is_file()
    markdown = (tmp_path / "report.md").read_text()
    assert "Verdict: **accepted**" in markdown and "## Fixed (6)" in markdown and "## Broke (2)" in markdown
    assert capsys.readouterr().out.startswith("convert: gate-device accepted: old validation 1 lost, 0 gained")


def test_an_equal_model_is_accepted_when_nothing_reviewed_was_wrong_and_refused_when_it_fixes_nothing(world, tmp_path, capsys):
    # The same model: nothing lost or gained, but it fixes none of the 6 mistakes: refused by --min-fixed.
    assert gate(world, tmp_path / "a", "--new-model", str(world["device"])) == 1
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["old_validation"]["lost"] == report["old_validation"]["gained"] == 0
    assert report["reasons"] == ["fixes 0 of the 6 reviewed frames the device model got wrong (0%, below --min-fixed 80%)"]
    assert "convert: refused: fixes 0 of the 6" in capsys.readouterr().out
    assert gate(world, tmp_path / "b", "--new-model", str(world["device"]), "--min-fixed", "0") == 0


def test_a_worse_model_is_refused(world, tmp_path):
    assert gate(world, tmp_path, "--new-model", str(world["swapped"])) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["old_validation"]["lost"] == 17 and report["old_validation"]["mcnemar_p"] < 0.001
    assert report["reasons"][0].startswith("significantly worse on the 25 old validation photos: 17 lost, 0 gained")


def test_the_new_runs_int8_model_is_made_by_the_export_gate(world, tmp_path):
    assert gate(world, tmp_path) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["new_model"]["path"].endswith(".tflite") and Path(report["new_model"]["path"]).parent == tmp_path / "int8"
    assert report["new_model"]["int8_export_gate"] == "accepted" and report["reviewed"]["fixed"] == 6


def test_errors_are_one_line_naming_the_argument(world, tmp_path, capsys):
    assert gate({**world, "device": tmp_path / "nope.tflite"}, tmp_path) == 2
    assert capsys.readouterr().err.strip() == f"convert: error: --device {tmp_path / 'nope.tflite'}: no such file"
    assert gate({**world, "export": world["run"]}, tmp_path) == 2
    assert capsys.readouterr().err.strip().startswith(f"convert: error: --reviewed {world['run']}: cannot read manifest.json")
    assert gate(world, tmp_path, "--min-fixed", "2") == 2
    assert "--min-fixed: must be a fraction from 0 to 1, received '2'" in capsys.readouterr().err
    other = tmp_path / "other_labels.tflite"
    save_tflite(DEVICE_W, other)
    from edge_runner.core.spec import InputSpec, contract_path_for

    InputSpec(labels=("a", "b", "c"), height=SIZE, width=SIZE, name="x").save(contract_path_for(other))
    assert gate({**world, "device": other}, tmp_path, "--new-model", str(world["new"])) == 2
    assert "its labels ['a', 'b', 'c'] differ from the new model's ['cat', 'dog', 'other']" in capsys.readouterr().err
