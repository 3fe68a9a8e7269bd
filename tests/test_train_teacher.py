"""The teacher's head (train.model.teacher) and the rescue built into the model (train.model.rescue): which teacher
and outputs the flags and labels ask for, the regression on soft labels, the prior fold (a product of experts), the
rescue's rule in the graph and through int8, a run with a teacher of its own and a retrain from it, the contract's
``rescue``, and the real ImageNet classifier on real photos (slow, with ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import BLUE, SHARED, convert_tiny, tiny_config, write_class_folders, write_negatives
from edge_runner.core.spec import ContractError, InputSpec
from train import ConfigError, TrainConfig
from train.model.rescue import MARGIN, build_rescued
from train.model.teacher import fit_regression, fold_into, plan_teacher, teacher_masses

PETS = InputSpec(labels=("cats", "dogs", "other"), background_label="other")
COLOURS = InputSpec(labels=("green", "red", "other"), background_label="other")
NOWHERE = "http://127.0.0.1:9"  # nothing listens there: a download would fail


def config(tmp_path: Path, **overrides) -> TrainConfig:
    return TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), **overrides)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty kit cache and a mirror that cannot be reached: any download fails."""
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEKIT_MIRROR", NOWHERE)


def test_no_teacher_by_default(tmp_path, offline):
    assert TrainConfig.__dataclass_fields__["teacher"].default == "none"
    assert plan_teacher(config(tmp_path), PETS) is None
    assert not (tmp_path / "cache").exists()  # nothing was downloaded


def test_imagenet_teacher_whose_download_fails_stops_the_run_in_one_line(tmp_path, offline):
    with pytest.raises(ConfigError, match=rf"^--teacher imagenet: {NOWHERE}/tf2_mobilenet_v2_1.0_224_ptq.tflite: "
                                          r"cannot download it .*--teacher, or set \$EDGEKIT_MIRROR to a copy$") as caught:
        plan_teacher(config(tmp_path, teacher="imagenet", rescue_limit=0.5), PETS)  # the ranges named cats and dogs
    assert "\n" not in str(caught.value)


def test_teacher_needs_a_background_label(tmp_path, offline):
    with pytest.raises(ConfigError, match=r"^--teacher imagenet: needs a background label"):
        plan_teacher(config(tmp_path, teacher="imagenet", rescue_limit=0.5), InputSpec(labels=("cats", "dogs")))


@pytest.mark.parametrize("overrides, message", [
    ({"rescue_limit": 0.5}, r"^--rescue-limit needs --teacher imagenet or a \.tflite classifier, received --teacher none$"),
    ({"prior_weight": 0.5}, r"^--prior-weight needs --teacher imagenet"),
    ({"teacher": "imagenet"}, r"^--teacher imagenet: nothing to teach; give --rescue-limit L"),
    ({"teacher": "imagenett"}, r"^--teacher must be one of \['none', 'imagenet'\] or a \.tflite classifier, received "
                               r"'imagenett' \(no such file\)$"),
    ({"teacher": "imagenet", "rescue_limit": 1.5}, r"--rescue-limit must be"),
    ({"teacher": "imagenet", "prior_weight": -1.0}, r"--prior-weight must be"),
])
def test_teacher_flags_that_do_not_go_together_are_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, **overrides).validate()


@pytest.mark.parametrize("overrides, message", [
    ({}, r"--teacher-as: no teacher outputs for the label 'green'; give green=RANGES; imagenet names "
         r"pets \(152-269,282-286\), cats"),
    ({"teacher_as": ["green"]}, r"--teacher-as must be LABEL=RANGES such as dogs=152-269 or dogs=dogs, received 'green'"),
    ({"teacher_as": ["birds=1-3"]}, r"--teacher-as birds: not one of the labels of interest \['green', 'red'\]"),
    ({"teacher_as": ["green=frogs", "red=1"]}, r"--teacher-as: 'frogs' is not a named range \(pets, "),
])
def test_teacher_outputs_that_do_not_fit_the_labels_are_named(tmp_path, offline, overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan_teacher(config(tmp_path, teacher="imagenet", rescue_limit=0.5, **overrides), COLOURS)


def test_regression_fits_soft_labels_and_leaves_an_unseen_label_out():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0]], np.float32)
    which = rng.integers(0, 2, 200)
    features = (centres[which] + rng.normal(0, 0.5, (200, 4))).astype(np.float32)
    masses = np.zeros((200, 3), np.float32)
    masses[np.arange(200), which] = 0.9
    masses[:, 2] = 0.0  # the teacher never sees the third label
    masses[np.arange(200), 1 - which] = 0.1
    coef, intercept, predicted = fit_regression(features, masses)
    assert coef.shape == (3, 4) and intercept.shape == (3,)
    assert not coef[2].any() and intercept[2] < -20  # an unseen label gets no say in the fold
    assert (predicted.argmax(1) == which).mean() > 0.95
    assert predicted[:, 2].max() == 0.0
    # soft labels: the regression's confidence follows the teacher's 0.9, not a hard 1.0
    assert 0.75 < predicted.max(1).mean() < 0.97


def test_fold_is_a_product_of_experts():
    """softmax(z + β z_q) = p · q^β, renormalised: the folded Dense layer is the two heads' product."""
    import keras

    rng = np.random.default_rng(1)
    inputs = keras.Input((6,))
    classifier = keras.layers.Dense(3, activation="softmax", name="classifier")
    model = keras.Model(inputs, classifier(inputs))
    features = rng.normal(0, 1, (50, 6)).astype(np.float32)
    masses = rng.dirichlet((1, 1, 1), 50).astype(np.float32)
    coef, intercept, q = fit_regression(features, masses)
    before = np.asarray(model.predict_on_batch(features))
    fold_into(classifier, coef, intercept, 0.5)
    after = np.asarray(model.predict_on_batch(features))
    expected = before * q ** 0.5
    np.testing.assert_allclose(after, expected / expected.sum(1, keepdims=True), atol=1e-5)


def rescue_case():
    """A model image → mean colour ("pool", 3 features) → softmax over (cats, dogs, other), and photos whose model
    scores and rescue-head scores are known: a detection, a rescue of each pet, a background photo the head does
    not back, and a photo below the threshold that the head backs."""
    import keras

    inputs = keras.Input((4, 4, 3))
    pool = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Rescaling(1 / 255)(inputs))
    classifier = keras.layers.Dense(3, activation="softmax", name="classifier")
    model = keras.Model(inputs, classifier(pool))
    classifier.set_weights([np.eye(3, dtype=np.float32) * 8, np.zeros(3, np.float32)])  # red → cats, green → dogs
    # the head: blue → dogs, red → cats, green → other (it disagrees with the model on green and blue)
    coef = np.array([[8, 0, 0], [0, 0, 8], [0, 8, 0]], np.float32)
    colours = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0), "grey": (128, 128, 128),
               "red-blue": (150, 0, 140)}
    photos = np.stack([np.full((4, 4, 3), c, np.float32) for c in colours.values()])
    return model, coef, np.zeros(3, np.float32), photos, list(colours)


def test_rescue_in_the_graph_changes_only_what_the_rule_says():
    model, coef, intercept, photos, names = rescue_case()
    p = np.asarray(model.predict_on_batch(photos))
    rescued = build_rescued(model, coef, intercept, (0, 1), threshold=0.7, limit=0.5)
    out = np.asarray(rescued.predict_on_batch(photos))
    got = dict(zip(names, out))
    np.testing.assert_allclose(got["red"], p[0], atol=1e-6)  # a detection (cats 0.9993) is never touched
    np.testing.assert_allclose(got["green"], p[2], atol=1e-6)  # a dog too, though the head says other
    blue = got["blue"]  # the model says other, the head says dogs 0.9993: rescued as dogs, just above the threshold
    assert blue.argmax() == 1 and 0.7 + MARGIN <= blue[1] <= 1.0 and blue[0] == 0 and abs(blue.sum() - 1) < 1e-6
    np.testing.assert_allclose(got["grey"], p[3], atol=1e-6)  # the head sees nothing at 0.5: unchanged
    # red-blue: the model is unsure (below 0.7), the head's best pet is cats: rescued as cats
    assert p[4].max() < 0.7 and got["red-blue"].argmax() == 0 and got["red-blue"][0] >= 0.7 + MARGIN


def test_rescue_in_the_graph_survives_full_integer_quantisation():
    """uint8 in and out, every op int8 (the comparisons and the select too): the same answers at the threshold."""
    from ai_edge_litert.interpreter import Interpreter

    model, coef, intercept, photos, names = rescue_case()
    rescued = build_rescued(model, coef, intercept, (0, 1), threshold=0.7, limit=0.5)
    keras_out = np.asarray(rescued.predict_on_batch(photos))
    representative = lambda: ([photo[None]] for photo in np.concatenate([photos, photos[::-1] * 0.5]))  # noqa: E731
    interpreter = Interpreter(model_content=convert_tiny(rescued, "int8", 4, representative=representative))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    ops = {op["op_name"] for op in interpreter._get_ops_details()}  # noqa: SLF001 - no public op list
    assert {"LESS", "GREATER_EQUAL", "LOGICAL_AND", "SELECT_V2"} <= ops, ops
    scale, zero = out["quantization"]
    for name, photo, expected in zip(names, photos, keras_out):
        interpreter.set_tensor(inp["index"], photo[None].astype(np.uint8))
        interpreter.invoke()
        got = (interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale
        answer = lambda v: int(v.argmax()) if v.max() >= 0.7 else -1  # noqa: E731 - the runner's rule at 0.7
        assert answer(got) == answer(expected), (name, got, expected)


def test_int16x8_of_a_rescued_model_fails_in_one_line_not_a_traceback():
    """TFLite's 16x8 quantiser has no kernel for the rescue's comparisons: the variant fails, named, and is not
    written (convert export goes on with the others)."""
    from convert.errors import ConversionFailed
    from convert.quantize import convert

    model, coef, intercept, photos, _ = rescue_case()
    rescued = build_rescued(model, coef, intercept, (0, 1), threshold=0.7, limit=0.5)
    with pytest.raises(ConversionFailed, match=r"^int16x8: the TFLite converter cannot make it: .*not yet supported "
                                                r"for op: '(LESS|SELECT_V2|GREATER_EQUAL|LOGICAL_AND)'"):
        convert(rescued, "int16x8", np.concatenate([photos, photos[::-1] * 0.5]))


def test_contract_rescue_is_checked_and_round_trips():
    spec = InputSpec(labels=PETS.labels, background_label="other", threshold=0.7,
                     rescue={"threshold": 0.7, "limit": 0.5, "teacher": "imagenet"})
    again = InputSpec.from_json(spec.to_json())
    assert again.rescue == spec.rescue and again.version == 4
    old = InputSpec.from_dict({"labels": list(PETS.labels), "background_label": "other", "threshold": 0.7, "version": 2})
    assert old.rescue is None  # a version 2 contract: no rescue in its graph
    for rescue, message in [({"threshold": 0.7, "limit": 0}, r"`rescue` must be null or an object with \['limit', "),
                            ({"threshold": 0.7, "limit": 1.5, "teacher": "imagenet"}, r"`rescue.limit` must be a number"),
                            ({"threshold": 0.7, "limit": 0.5, "teacher": ""}, r"`rescue.teacher` must be a name")]:
        with pytest.raises(ContractError, match=message):
            InputSpec(labels=PETS.labels, background_label="other", threshold=0.7, rescue=rescue)
    with pytest.raises(ContractError, match=r"`rescue` needs `background_label` and `threshold`"):
        InputSpec(labels=PETS.labels, rescue={"threshold": 0.7, "limit": 0.5, "teacher": "imagenet"})


def test_run_with_a_teacher_of_its_own_and_a_retrain_from_it(tmp_path, tiny_weights, watch_model):
    """A ``.tflite`` teacher (the colour model: red = its output 0, green = 1) is fitted on the training photos only,
    folded in as a prior and built in as a rescue; the contract and the report say so; validation and held-out
    photos never reach it; a run started from it (--init-from) trains and rescues again."""
    import keras

    from train import run_training

    home = write_class_folders(tmp_path / "home", ["red", "green"], 10)
    other = write_class_folders(tmp_path / "far", ["red", "green"], 4, seed=7)  # a source held out
    negatives = write_negatives(tmp_path / "negatives", 10, BLUE)  # the teacher's own "other"
    teach = dict(teacher=str(watch_model), teacher_as=["red=0", "green=1"], rescue_limit=0.5, prior_weight=0.25)
    run_training(tiny_config([str(home), str(other)], tmp_path / "run", tiny_weights, background=[str(negatives)],
                             holdout_sources=["far"], **teach))
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    split = json.loads((run / "split.json").read_text())
    contract = json.loads((run / "contract.json").read_text())
    teacher = report["model"]["teacher"]
    assert teacher["teacher"] == watch_model.name and teacher["prior_weight"] == 0.25
    assert contract["rescue"] == teacher["rescue"] == {"threshold": contract["threshold"], "limit": 0.5,
                                                       "teacher": watch_model.name}
    assert teacher["photos"] == len(split["train"]) < len(split["train"]) + len(split["validation"])
    assert set(teacher["mass"]) == {"green", "red", "other"} and abs(sum(teacher["mass"].values()) - 1) < 1e-3
    # the colour model sees red in the red photos, and so on: each label's mass is about its share of the photos
    for label in ("red", "green", "other"):
        share = sum(1 for s in split["train"] if s["label"] == label) / len(split["train"])
        assert abs(teacher["mass"][label] - share) < 0.1, (label, teacher, share)
    assert 0.0 < teacher["agreement"] <= 1.0
    assert "rescue" in [layer.name for layer in keras.saving.load_model(run / "model.keras").layers]
    text = (run / "report.md").read_text()
    assert f"- teacher: `{watch_model.name}`'s head on the pooled features, fitted on {teacher['photos']} " in text
    assert f"used as a rescue at threshold {contract['threshold']:g} from 0.5 and a prior folded into" in text

    run_training(tiny_config([str(home), str(other)], tmp_path / "again", tiny_weights, background=[str(negatives)],
                             holdout_sources=["far"], init_from=str(run), epochs=1, fine_tune_epochs=1, **teach))
    assert json.loads((tmp_path / "again" / "contract.json").read_text())["rescue"]["teacher"] == watch_model.name


def test_run_without_a_teacher_says_so(tmp_path, tiny_weights):
    from train import run_training

    data = write_class_folders(tmp_path / "photos", ["red", "green"], 8)
    run_training(tiny_config(data, tmp_path / "run", tiny_weights, epochs=1, fine_tune_epochs=0))
    assert json.loads((tmp_path / "run" / "report.json").read_text())["model"]["teacher"] is None
    assert json.loads((tmp_path / "run" / "contract.json").read_text())["rescue"] is None
    assert "- teacher: none (no rescue, no prior)" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.slow
def test_imagenet_teacher_on_real_photos(tmp_path, monkeypatch, shared_data):
    """The kit's ImageNet classifier, fetched with its checks from a local copy, sees cats, dogs and the rest in real
    photos: each class's photos get most of their mass on their own label (Kaggle's cats about 58%: it sees fewer of
    them as its five domestic cats than the dogs as its breeds)."""
    from edge_runner.core.image import preprocess

    local = SHARED / "weights" / "imagenet_classifier"
    if not (local / "tf2_mobilenet_v2_1.0_224_ptq.tflite").is_file():
        pytest.skip(f"the ImageNet classifier is not at {local}")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEKIT_MIRROR", local.resolve().as_uri())
    plan = plan_teacher(config(tmp_path, teacher="imagenet", rescue_limit=0.5), PETS)
    assert plan is not None and plan.name == "imagenet" and plan.ranges[2] == ()
    assert plan.ranges[0] == tuple(range(282, 287)) and plan.ranges[1] == tuple(range(152, 270))
    folders = [shared_data / "validation" / "cats", shared_data / "validation" / "dogs", SHARED / "data" / "other"]
    paths = [sorted(f.glob("*.jpg"))[:12] for f in folders]
    spec = InputSpec(labels=PETS.labels, height=160, width=160, background_label="other")  # resized for the teacher
    pixels = np.stack([preprocess(p, spec).array for group in paths for p in group])
    masses = teacher_masses(plan, pixels, np.arange(len(pixels)), progress=False)
    np.testing.assert_allclose(masses.sum(1), 1.0, atol=1e-5)
    for k in range(3):
        mine = masses[12 * k: 12 * (k + 1)]
        assert mine.mean(0).argmax() == k and mine[:, k].mean() > 0.5, (PETS.labels[k], mine.mean(0))
