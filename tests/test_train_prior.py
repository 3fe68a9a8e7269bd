"""The ImageNet prior (train.model.prior): which teacher and outputs the flags and labels ask for, the regression on
soft labels, the fold into the head (a product of experts), a run with a teacher of its own, and the real ImageNet
classifier on real photos (slow, with ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import BLUE, SHARED, draw_photo, tiny_config, write_class_folders
from edge_runner.core.spec import InputSpec
from train import ConfigError, TrainConfig
from train.model.prior import fit_regression, fold_into, plan_prior, teacher_masses

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


def test_prior_is_off_by_default_and_at_weight_zero(tmp_path, offline):
    assert TrainConfig.__dataclass_fields__["prior"].default == "none"
    assert plan_prior(config(tmp_path), PETS) is None
    assert plan_prior(config(tmp_path, prior="imagenet", prior_weight=0.0), PETS) is None
    assert not (tmp_path / "cache").exists()  # nothing was downloaded


def test_imagenet_prior_whose_download_fails_stops_the_run_in_one_line(tmp_path, offline):
    with pytest.raises(ConfigError, match=rf"^--prior imagenet: {NOWHERE}/tf2_mobilenet_v2_1.0_224_ptq.tflite: cannot "
                                          r"download it .*--prior, or set \$EDGEKIT_MIRROR to a copy$") as caught:
        plan_prior(config(tmp_path, prior="imagenet"), PETS)  # cats and dogs: the classifier's ranges of those names
    assert "\n" not in str(caught.value)


def test_prior_needs_a_background_label(tmp_path, offline):
    with pytest.raises(ConfigError, match=r"^--prior imagenet: needs a background label"):
        plan_prior(config(tmp_path, prior="imagenet"), InputSpec(labels=("cats", "dogs")))


@pytest.mark.parametrize("overrides, message", [
    ({"prior": "imagenet"}, r"--prior-as: no teacher outputs for the label 'green'; give green=RANGES; imagenet names "
                            r"pets \(152-269,282-286\), cats"),
    ({"prior": "imagenet", "prior_as": ["green"]}, r"--prior-as must be LABEL=RANGES such as dogs=152-269 or dogs=dogs, received 'green'"),
    ({"prior": "imagenet", "prior_as": ["birds=1-3"]}, r"--prior-as birds: not one of the labels of interest \['green', 'red'\]"),
    ({"prior": "imagenet", "prior_as": ["green=frogs", "red=1"]}, r"--prior-as: 'frogs' is not a named range \(pets, "),
])
def test_prior_flags_that_do_not_fit_the_labels_are_named(tmp_path, offline, overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan_prior(config(tmp_path, **overrides), COLOURS)


def test_prior_that_is_neither_a_choice_nor_a_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^--prior must be one of \['none', 'imagenet'\] or a \.tflite "
                                          r"classifier, received 'imagenett' \(no such file\)$"):
        config(tmp_path, prior="imagenett").validate()
    with pytest.raises(ConfigError, match=r"--prior-weight must be"):
        config(tmp_path, prior_weight=-1.0).validate()


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


def test_run_with_a_teacher_of_its_own(tmp_path, tiny_weights, watch_model):
    """A ``.tflite`` teacher (the colour model: red = its output 0, green = 1) is fitted on the training photos only
    and folded in; the report says so; validation and held-out photos never reach it."""
    from train import run_training

    home = write_class_folders(tmp_path / "home", ["red", "green"], 10)
    other = write_class_folders(tmp_path / "far", ["red", "green"], 4, seed=7)  # a source held out
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    for i in range(10):
        draw_photo(BLUE, seed=50 + i).save(negatives / f"neg_{i}.jpg", "JPEG")  # the teacher's own "other"
    run_training(tiny_config([str(home), str(other)], tmp_path / "run", tiny_weights, background=[str(negatives)],
                             holdout_sources=["far"], prior=str(watch_model), prior_as=["red=0", "green=1"]))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    prior = report["model"]["prior"]
    assert prior["teacher"] == watch_model.name and prior["weight"] == 0.5
    assert prior["photos"] == len(split["train"]) < len(split["train"]) + len(split["validation"])
    assert set(prior["mass"]) == {"green", "red", "other"} and abs(sum(prior["mass"].values()) - 1) < 1e-3
    # the colour model sees red in the red photos, and so on: each label's mass is about its share of the photos
    for label in ("red", "green", "other"):
        share = sum(1 for s in split["train"] if s["label"] == label) / len(split["train"])
        assert abs(prior["mass"][label] - share) < 0.1, (label, prior, share)
    assert 0.0 < prior["agreement"] <= 1.0
    assert f"ImageNet prior: `{watch_model.name}` folded into the head at weight 0.5" in \
        (tmp_path / "run" / "report.md").read_text()


def test_run_without_a_prior_says_so(tmp_path, tiny_weights):
    from train import run_training

    data = write_class_folders(tmp_path / "photos", ["red", "green"], 8)
    run_training(tiny_config(data, tmp_path / "run", tiny_weights, epochs=1, fine_tune_epochs=0))
    assert json.loads((tmp_path / "run" / "report.json").read_text())["model"]["prior"] is None
    assert "- ImageNet prior: off" in (tmp_path / "run" / "report.md").read_text()


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
    plan = plan_prior(config(tmp_path, prior="imagenet"), PETS)
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
