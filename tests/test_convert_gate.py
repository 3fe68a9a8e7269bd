"""The statistical gate, the int8 diagnosis and the fix loop (convert/gate/significance.py, accuracy.py; convert/int8/).

The statistics are checked on constructed paired answers against binomial tails computed
by hand with ``math.comb``; the diagnosis and the fixes on a tiny model whose one layer
has an outlier channel that ruins its int8 range (the float model is unchanged).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from convert.gate.significance import (bootstrap_interval, class_changes, confident_agreement, mcnemar_loss_p,
                                  paired_test)

pytest.importorskip("scipy")


def tail(lost: int, gained: int) -> float:
    """P(X >= lost), X ~ Binomial(lost + gained, 1/2), by hand."""
    n = lost + gained
    return sum(math.comb(n, k) for k in range(lost, n + 1)) / 2 ** n


def answers(both_right: int, lost: int, gained: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([True] * both_right + [True] * lost + [False] * gained + [False] * both_wrong)
    var = np.array([True] * both_right + [False] * lost + [True] * gained + [False] * both_wrong)
    return ref, var


@pytest.mark.parametrize("lost,gained", [(10, 0), (12, 2), (7, 5), (3, 3), (0, 4), (1, 0), (20, 9)])
def test_mcnemar_exact_matches_the_binomial_tail(lost, gained):
    assert mcnemar_loss_p(lost, gained) == pytest.approx(tail(lost, gained), rel=1e-9)


def test_known_values():
    assert mcnemar_loss_p(0, 0) == 1.0
    assert mcnemar_loss_p(10, 0) == pytest.approx(1 / 1024)  # ten flips, all losses: 2**-10
    assert mcnemar_loss_p(12, 2) == pytest.approx(106 / 16384)  # (1 + 14 + 91) / 2**14
    with pytest.raises(ValueError):
        mcnemar_loss_p(-1, 2)


def test_issue_flower_case_is_not_significant():
    """The issue's int8 model: 26 flips on 625 photos, 0.16 pt lost (14 vs 12): noise."""
    ref, var = answers(560, 14, 12, 39)
    test = paired_test(ref, var, seed=0)
    assert (test.photos, test.lost, test.gained, test.discordant) == (625, 14, 12, 26)
    assert test.change_points == pytest.approx(-0.32)
    assert test.p_value == pytest.approx(tail(14, 12), abs=1e-6) and test.p_value > 0.3
    low, high = test.interval
    assert low < test.change_points < high and low < 0 < high


def test_real_loss_is_significant_and_the_interval_excludes_zero():
    ref, var = answers(900, 40, 5, 55)
    test = paired_test(ref, var, seed=0)
    assert test.p_value == pytest.approx(tail(40, 5), abs=1e-6) and test.p_value < 1e-6
    assert test.change_points == pytest.approx(-3.5)
    assert test.interval[1] < 0 and test.interval[0] < -3.5 < test.interval[1]


def test_bootstrap_is_seeded_and_matches_the_normal_approximation():
    a = bootstrap_interval(1000, 30, 10, seed=3)
    assert a == bootstrap_interval(1000, 30, 10, seed=3)
    # Var of the paired difference: (b + c)/n - ((c - b)/n)^2, per photo.
    sd = 100 * math.sqrt(((30 + 10) / 1000 - (20 / 1000) ** 2) / 1000)
    assert a[0] == pytest.approx(-2.0 - 1.96 * sd, abs=0.25) and a[1] == pytest.approx(-2.0 + 1.96 * sd, abs=0.25)
    assert bootstrap_interval(50, 0, 0) == (0.0, 0.0)


def test_confident_agreement_and_class_changes():
    reference = np.array([[0.95, 0.05], [0.92, 0.08], [0.6, 0.4], [0.05, 0.95]], np.float32)
    variant = np.array([[0.95, 0.05], [0.40, 0.60], [0.3, 0.7], [0.05, 0.95]], np.float32)
    sure = confident_agreement(reference, variant)
    assert (sure.photos, sure.agreeing, sure.percent) == (3, 2, pytest.approx(66.6667))
    truth = np.array([0, 0, 1, 1])
    ref_right, var_right = reference.argmax(1) == truth, variant.argmax(1) == truth
    a, b = class_changes(truth, ref_right, var_right, ("a", "b"))
    assert (a.label, a.photos, a.reference_right, a.variant_right, a.lost, a.gained, a.change_points) == \
        ("a", 2, 2, 1, 1, 0, -50.0)
    assert (b.lost, b.gained, b.change_points) == (0, 1, 50.0)


def test_gate_decisions():
    from convert.gate.accuracy import Comparison, Scores, Thresholds, judge

    th = Thresholds(max_accuracy_drop=1.0)
    ref = Scores(90.0, {}, 625)
    noisy = paired_test(*answers(560, 14, 12, 39))  # -0.32 pt, noise
    big_noisy = paired_test(*answers(40, 4, 1, 5))  # -6 pt on 50 photos, p = 0.19
    real = paired_test(*answers(900, 40, 5, 55))  # -3.5 pt, p < 1e-6
    low_agreement = Comparison(95.84, 0.5, 0.05)
    # Noise with low agreement: accepted (agreement is reported, not required) ...
    verdict = judge(Scores(89.68, {}, 625), ref, low_agreement, th, noisy)
    assert verdict.accepted and not verdict.notes
    # ... unless agreement is required.
    strict = judge(Scores(89.68, {}, 625), ref, low_agreement, Thresholds(1.0, min_agreement=98.0), noisy)
    assert not strict.accepted and "agreement 95.84% (required 98%)" in strict.reasons[0]
    # A loss above the limit that is not significant: accepted, noted, and close to the limit.
    verdict = judge(Scores(84.0, {}, 50), Scores(90.0, {}, 50), Comparison(90.0, 0.5, 0.1), th, big_noisy)
    assert verdict.accepted and verdict.close and "not significant" in verdict.notes[0]
    # A significant loss above the limit: rejected.
    verdict = judge(Scores(90.0, {}, 1000), Scores(93.5, {}, 1000), Comparison(95.5, 0.5, 0.1), th, real)
    assert not verdict.accepted and "significant loss" in verdict.reasons[0]
    # A significant loss within the limit: accepted.
    within = judge(Scores(90.0, {}, 1000), Scores(93.5, {}, 1000), Comparison(95.5, 0.5, 0.1),
                   Thresholds(max_accuracy_drop=5.0), real)
    assert within.accepted


# -- diagnosis and fixes on a tiny model with one badly quantising layer ---------------------------

SIZE = 32
LABELS = ("red", "green", "blue")
OUTLIER = 1e5


def outlier_train_out(root: Path, *, damage: bool = True) -> Path:
    """A trained tiny model whose layer ``outlier`` gets a constant channel of ``OUTLIER`` (``damage``).

    The next layer ignores that channel (its weights are zeroed), so the float model
    still classifies the photos; but int8 gives the whole ``outlier`` output one scale,
    set by that channel, and its other channels (values around 1-10) round to nothing.
    """
    pytest.importorskip("tensorflow")
    import keras

    from conftest import CLASS_COLOURS, draw_photo
    from edge_runner import InputSpec, preprocess

    entries = {"train": [], "validation": []}
    for split, count, size, seed in (("train", 14, (64, 48), 1), ("validation", 8, (64, 48), 2)):
        for c, label in enumerate(LABELS):
            folder = root / "photos" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                path = folder / f"{label}.{i}.jpg"
                draw_photo(CLASS_COLOURS[label], size=size, seed=seed * 1000 + c * 100 + i).save(path, "JPEG", quality=90)
                entries[split].append({"path": str(path), "label": label})
    spec = InputSpec(labels=LABELS, height=SIZE, width=SIZE, name="tiny", backbone="tiny-cnn")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="outlier")(x)
    x = keras.layers.Conv2D(8, 1, activation="relu", name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="softmax", name="head")(x), name="tiny")
    x_train = np.stack([preprocess(e["path"], spec).array for e in entries["train"]]).astype(np.float32)
    y_train = np.array([LABELS.index(e["label"]) for e in entries["train"]])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=20, batch_size=14, verbose=0)
    if damage:
        kernel, bias = model.get_layer("outlier").get_weights()
        kernel[..., 0], bias[0] = 0.0, OUTLIER
        model.get_layer("outlier").set_weights([kernel, bias])
        mix_kernel, mix_bias = model.get_layer("mix").get_weights()
        mix_kernel[:, :, 0, :] = 0.0
        model.get_layer("mix").set_weights([mix_kernel, mix_bias])
    out = root / "train_out"
    out.mkdir()
    model.save(out / "model.keras")
    spec.save(out / "contract.json")
    spec.save_labels(out / "labels.txt")
    split = {"data_dir": str(root / "photos"), "labels": list(LABELS), **entries, "skipped": []}
    (out / "split.json").write_text(json.dumps(split))
    return out


def test_diagnosis_names_the_damaged_layer_and_keeping_it_in_float_fixes_int8(tmp_path, capsys):
    from convert.cli import main

    train_out = outlier_train_out(tmp_path)
    out = tmp_path / "models"
    code = main(["export", str(train_out), "--out", str(out), "--variants", "float32,int8", "--calibration-size", "30",
                 "--diagnose-photos", "12", "--quiet"])
    report = json.loads((out / "report.json").read_text())
    int8 = report["variants"][1]
    assert int8["status"] == "rejected" and int8["p_value_loss"] < 0.05
    paired = int8["paired"]
    assert paired["photos"] == 24 and paired["lost"] >= 8 and int8["change_interval_points"][1] < 0
    assert sum(c["lost"] for c in int8["class_changes"]) == paired["lost"]
    assert [c["label"] for c in int8["class_changes"]] == list(LABELS)
    assert int8["confident"]["photos"] > 0 and int8["confident_agreement"] < 1.0
    assert int8["summary"].startswith("int8: do not ship") and report["variants"][0]["summary"].startswith("float32: safe")
    remedy = report["remedy"]
    assert remedy["worst"][0]["layer"] == "outlier", [w["layer"] for w in remedy["worst"]]
    assert Path(remedy["plot"]).is_file() and Path(remedy["plot"]).read_bytes()[:4] == b"\x89PNG"
    tried = {c["result"]["variant"]: c for c in remedy["candidates"]}
    assert tried["int8_calib"]["result"]["status"] == "rejected"  # more photos cannot fix a range problem
    fixed = tried["int8_float1"]
    assert fixed["result"]["status"] == "accepted" and "outlier" in fixed["fix"]
    assert any("mix" in name for name in fixed["denylisted"])  # its reader runs in float too
    assert fixed["latency_ms"] > 0 and remedy["baseline_latency_ms"]["int8"] > 0
    assert report["shipped"]["int8"] == {"file": fixed["result"]["path"], "variant": "int8_float1",
                                         "reason": remedy["reason"]}
    assert code == 1  # the int8 that was asked for is rejected; the fix is named, not swapped in silently
    text = (out / "report.md").read_text()
    assert "## int8 diagnosis" in text and "## int8 fixes: the trade-off" in text
    assert "**Chosen: `tiny_int8_float1.tflite`**" in text
    assert "int8: do not ship" in text and "float32: safe to ship" in text
    assert "ship " + fixed["result"]["path"] in capsys.readouterr().out


def test_old_flag_name_and_bad_gate_flags(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from convert.cli import build_parser, main

    args = build_parser().parse_args(["export", "x", "--out", "y", "--min-agreement", "97"])
    assert args.require_agreement == 97.0  # the old name still works
    assert build_parser().parse_args(["export", "x", "--out", "y"]).require_agreement is None
    for flags, message in ((["--alpha", "2"], "`--alpha` must be between 0 and 1 (exclusive), received 2.0"),
                           (["--require-agreement", "120"], "`--require-agreement` must be a percentage from 0 to 100"),
                           (["--confidence", "1"], "`--confidence` must be from 0.5 to below 1, received 1.0"),
                           (["--diagnose-photos", "0"], "argument --diagnose-photos: must be a positive integer, received 0")):
        assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), *flags]) == 2
        assert message in capsys.readouterr().err


def test_layer_names_from_tflite_tensor_names():
    from convert.int8.diagnosis import layer_name

    assert layer_name("m_1/mobilenetv2_0.35_96_1/block_9_project_BN_1/batchnorm/add_1;m_1/x_1/convolution") == \
        "block_9_project_BN"
    assert layer_name("tiny_1/outlier_1/BiasAdd;tiny_1/outlier_1/convolution") == "outlier"
    assert layer_name("StatefulPartitionedCall_1:0") == "StatefulPartitionedCall_1:0"
