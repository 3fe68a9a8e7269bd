"""``python -m train compare``: candidate syntax, the Pareto choice, and the whole loop on generated photos.

The loop test runs the real CLI in a subprocess with ``KERAS_HOME`` pointing at a
temporary folder that holds a tiny MobileNetV2-0.35 weights file under the name
Keras itself caches ImageNet weights under, so ``--weights imagenet`` goes through
Keras' own download path without a network (Keras reads ``KERAS_HOME`` at import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runner import Classifier, preprocess
from edge_runner.common.native_log import quiet_tensorflow_logs
from train.comparison.candidates import Candidate, keras_weights_name, parse_candidates, parse_one, resolve_weights
from train.errors import ConfigError
from train.comparison.pareto import Point, fastest_at, mcnemar_p, pareto_front, recommend

REPO = Path(__file__).resolve().parent.parent
SIZE = 32


# -- candidates -----------------------------------------------------------------


def test_candidate_syntax():
    assert parse_one("mobilenet_v2:0.35:96") == Candidate("mobilenet_v2", 0.35, 96, None, "mobilenet_v2:0.35:96")
    assert parse_one("baseline:128").name == "baseline_128"
    assert parse_one("mobilenet_v2:1.0:224:imagenet").weights == "imagenet"
    assert parse_one("efficientnet_b0:224").alpha == 1.0
    names = [c.name for c in parse_candidates("mobilenet_v2:0.35:96, mobilenet_v2:1:224,baseline:64")]
    assert names == ["mobilenet_v2_0.35_96", "mobilenet_v2_1.0_224", "baseline_64"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("resnet50:1.0:224", r"candidate 'resnet50:1.0:224': backbone must be one of \['baseline', 'efficientnet_b0'"),
        ("mobilenet_v2:0.4:96", r"'mobilenet_v2:0.4:96': width \(alpha\) for mobilenet_v2 must be one of \[0.35, 0.5"),
        ("mobilenet_v2:96", r"'mobilenet_v2:96': expected mobilenet_v2:ALPHA:SIZE\[:WEIGHTS\]"),
        ("mobilenet_v2:0.35:big", r"input size must be an integer, received 'big'"),
        ("mobilenet_v2:0.35:16", r"input size must be an integer from 32 to 1024, received 16"),
        ("baseline:128:imagenet", r"'baseline:128:imagenet': baseline has no pretrained weights: weights must be 'none'"),
        ("mobilenet_v2:0.35:96:/no/such.h5", r"weights must be one of \['imagenet', 'none'\] or an existing file"),
        ("baseline:64,baseline:64", r"'baseline:64': the same model as 'baseline:64'"),
        ("", r"no candidate given"),
    ],
)
def test_bad_candidates_are_named(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_candidates(text)


def test_candidates_from_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"backbone": "mobilenet_v2", "alpha": 0.35, "image_size": 96}, {"backbone": "baseline", "image_size": 64}]))
    assert [c.name for c in parse_candidates(str(path))] == ["mobilenet_v2_0.35_96", "baseline_64"]
    path.write_text(json.dumps([{"backbone": "mobilenet_v2", "size": 96}]))
    with pytest.raises(ConfigError, match=r"c.json\[0\]'.*\"backbone\", \"image_size\""):
        parse_candidates(str(path))


def test_weights_by_width_from_a_directory_of_keras_named_files(tmp_path):
    for alpha in ("1.0", "0.35"):
        (tmp_path / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5").write_bytes(b"x")
    wide, narrow, scratch = resolve_weights(parse_candidates("mobilenet_v2:1.0:128,mobilenet_v2:0.35:96,baseline:64"), [str(tmp_path)])
    assert Path(wide.weights).name.endswith("1.0_224_no_top.h5") and Path(narrow.weights).name.endswith("0.35_224_no_top.h5")
    assert scratch.weights == "none"
    other = tmp_path / "mine.h5"
    other.write_bytes(b"x")
    assert resolve_weights(parse_candidates("mobilenet_v2:0.5:96"), [f"0.5={other}"])[0].weights == str(other.resolve())
    assert resolve_weights(parse_candidates("mobilenet_v2:0.5:96"), [str(tmp_path), "imagenet"])[0].weights == "imagenet"
    with pytest.raises(ConfigError, match=r"'mobilenet_v2:0.5:96': no weights for width 0.5 .*--weights 0.5=PATH"):
        resolve_weights(parse_candidates("mobilenet_v2:0.5:96"), [str(tmp_path)])
    with pytest.raises(ConfigError, match=r"--weights '.*mine.h5': cannot tell the width from the file name"):
        resolve_weights(parse_candidates("mobilenet_v2:0.5:96"), [str(other)])
    assert keras_weights_name(0.35, 96).endswith("_0.35_96_no_top.h5") and keras_weights_name(1, 100).endswith("_1.0_224_no_top.h5")


# -- the choice -------------------------------------------------------------------


def _wrong(count: int, offset: int = 0) -> frozenset[str]:
    return frozenset(f"p{i}" for i in range(offset, offset + count))


def test_pareto_front_noise_and_budgets():
    points = [
        Point("big", 99.0, 10.0, 9.0, _wrong(10), 1000),
        Point("mid", 98.8, 4.0, 2.5, _wrong(12), 1000),      # 2 more mistakes: within noise of big
        Point("slow_bad", 97.0, 12.0, 3.0, _wrong(30), 1000),  # dominated by big and mid
        Point("small", 95.0, 1.0, 0.6, _wrong(50), 1000),    # 40 more mistakes: clearly worse
    ]
    assert [p.name for p in pareto_front(points)] == ["small", "mid", "big"]
    assert mcnemar_p(points[1], points[0]) > 0.05 and mcnemar_p(points[3], points[0]) < 1e-6
    assert mcnemar_p(points[0], points[0]) == 1.0

    free = recommend(points)
    assert free.best.name == "big" and free.fastest.name == "mid"
    assert "most accurate big (99.00% int8, 10.00 ms, 9.00 MB); fastest within noise of it mid" in free.line()
    tight = recommend(points, max_latency_ms=5, max_size_mb=3)
    assert tight.best.name == "mid" and tight.fastest.name == "mid" and tight.fitting == 2
    assert tight.line().startswith("Recommendation (latency ≤ 5 ms, size ≤ 3 MB): mid (98.80% int8")
    assert recommend(points, max_size_mb=0.1).line() == "Recommendation (size ≤ 0.1 MB): no candidate fits the budget."
    assert fastest_at(points, 98.0).name == "mid" and fastest_at(points, 99.5) is None


# -- the loop ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory) -> Path:
    """``KERAS_HOME`` with a tiny MobileNetV2-0.35 no-top file (random, BatchNorm calibrated) under Keras' own name."""
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from conftest import calibrated_mobilenet

    base = calibrated_mobilenet(SIZE, [(220, 40, 40), (40, 200, 60)], 32)
    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    # The legacy HDF5 layout Keras' own ImageNet files have, under the name Keras looks for.
    with h5py.File(home / "models" / keras_weights_name(0.35, SIZE), "w") as handle:
        save_weights_to_hdf5_group(handle, base)
    return home


def test_compare_loop_with_imagenet_weights_from_keras_home(tmp_path, keras_home, monkeypatch, capsys):
    from conftest import write_class_folders

    data = tmp_path / "data"
    write_class_folders(data / "train", ["red", "green"], 16)
    write_class_folders(data / "validation", ["red", "green"], 6, seed=3)
    out = tmp_path / "cmp"
    argv = ["compare", "--data", str(data), "--out", str(out), "--candidates", f"mobilenet_v2:0.35:{SIZE},baseline:{SIZE}",
            "--weights", "imagenet", "--epochs", "2", "--fine-tune-epochs", "0", "--scratch-epochs", "1", "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache"), "--latency-runs", "5", "--latency-rounds", "1", "--threads", "1,2", "--quiet"]
    env = quiet_tensorflow_logs({**os.environ, "KERAS_HOME": str(keras_home), "PYTHONPATH": str(REPO)})
    run = subprocess.run([sys.executable, "-m", "train", *argv], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("Recommendation (no budget): ")

    report = json.loads((out / "report.json").read_text())
    rows = {row["name"]: row for row in report["candidates"]}
    assert list(rows) == [f"mobilenet_v2_0.35_{SIZE}", f"baseline_{SIZE}"]
    for row in rows.values():
        assert row["status"] == "done" and row["photos"] == 12
        # The reported int8 accuracy is what the written int8 model gives through the runner on the 12 photos.
        int8 = Classifier(row["int8_model"])
        right = [int8.classify(preprocess(photo, int8.spec).array).label == photo.parent.name
                 for photo in sorted((data / "validation").rglob("*.jpg"))]
        assert len(right) == 12 and row["int8_accuracy"] == pytest.approx(100 * np.mean(right), abs=1e-3)
        assert set(row["latency_p50_ms"]) == {"1", "2"} and all(v > 0 for v in row["latency_p50_ms"].values())
        assert row["int8_size_mb"] > 0 and row["train_seconds"] > 0 and Path(row["int8_model"]).is_file()
        assert row["int8_accuracy"] == pytest.approx(100 * (12 - row["int8_errors"]) / 12, abs=1e-3)
    assert rows[f"mobilenet_v2_0.35_{SIZE}"]["weights"] == "imagenet" and rows[f"baseline_{SIZE}"]["weights"] == "none"
    assert report["pareto_front"] and set(report["pareto_front"]) <= set(rows)
    assert report["recommendation"]["most_accurate"] in rows
    markdown = (out / "report.md").read_text()
    assert "| candidate | weights | Keras % | float32 % | int8 % |" in markdown and f"| baseline_{SIZE} | none |" in markdown
    assert (out / "accuracy_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Keras' ImageNet path loaded the file in KERAS_HOME: the frozen first convolution is the file's.
    import h5py
    import keras

    with h5py.File(keras_home / "models" / keras_weights_name(0.35, SIZE), "r") as handle:
        group = handle["Conv1"]
        name = group.attrs["weight_names"][0]
        kernel = np.asarray(group[name.decode() if isinstance(name, bytes) else name])
    model = keras.saving.load_model(out / "candidates" / f"mobilenet_v2_0.35_{SIZE}" / "train" / "model.keras")
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    np.testing.assert_array_equal(backbone.get_layer("Conv1").get_weights()[0], kernel)

    # Resume: finished candidates are not trained again; a new budget only re-ranks.
    import train

    def no_training(*_args, **_kwargs):
        raise AssertionError("a finished candidate was trained again")

    monkeypatch.setattr(train, "run_training", no_training)
    from train.cli import main

    sizes = sorted(row["int8_size_mb"] for row in rows.values())
    assert main(argv + ["--max-size-mb", f"{(sizes[0] + sizes[1]) / 2:.4f}"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    smaller = min(rows.values(), key=lambda r: r["int8_size_mb"])["name"]
    assert line.startswith("Recommendation (size ≤ ") and f": {smaller} (" in line, line
    again = json.loads((out / "report.json").read_text())
    assert all(row["reused"] for row in again["candidates"])
    assert again["recommendation"]["most_accurate"] == smaller

    report_md = (out / "report.md").read_bytes()
    assert main(argv + ["--epochs", "3"]) == 2  # other options than the finished candidates: refused before any work
    assert f"already holds candidates measured with other options: mobilenet_v2_0.35_{SIZE} (epochs)" in capsys.readouterr().err
    assert (out / "report.md").read_bytes() == report_md
