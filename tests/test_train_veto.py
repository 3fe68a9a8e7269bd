"""The distance veto (train.model.veto, ``--distance-veto``): its fit and limit, its rule in the graph and through
convert, the contract's ``distance_veto``, the flags that do not go with it, and a run with it, converted (float16,
and no int8) and retrained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BLUE, tiny_config, write_class_folders, write_negatives
from edge_runner.core.model import read_contract
from edge_runner.core.spec import ContractError, InputSpec
from train import ConfigError, TrainConfig
from train.model.veto import CLIP, Veto, build_vetoed, fit_veto

PETS = InputSpec(labels=("cats", "dogs", "other"), background_label="other")
SPREAD = 0.02  # the training photos' spread around their class's mean colour (pooled features 0–1)


def colour_features(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of reddish (class 0) and greenish (class 1) photos: ``(n, 3)`` float32 and ``(n,)``."""
    classes = rng.integers(0, 2, n)
    means = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2]], np.float32)
    return (means[classes] + rng.normal(0, SPREAD, (n, 3))).astype(np.float32), classes


def test_limit_keeps_the_asked_share_and_far_photos_stand_out():
    rng = np.random.default_rng(0)
    features, classes = colour_features(rng, 400)
    checked, _ = colour_features(rng, 200)
    veto = fit_veto(features, classes, checked, 0.9)
    assert veto.projection.shape == (3, 3) and veto.centres.shape == (2, 3)  # min(512, C) directions
    assert (veto.photos, veto.checked, veto.keep) == (400, 200, 0.9)
    assert abs((veto.distances(checked) <= 1).mean() - 0.9) <= 1 / 200
    fresh, _ = colour_features(rng, 500)
    assert 0.85 <= (veto.distances(fresh) <= 1).mean() <= 0.95  # new photos like the training ones: about KEEP
    far = np.array([[0.9, 0.5, 0.1], [0.5, 0.5, 0.5], [0.1, 0.1, 0.9]], np.float32)  # orange, grey, blue
    assert (veto.distances(far) > 1).all()
    assert veto.contract() == {"keep": 0.9, "directions": 3, "limit": round(veto.limit, 4)}


def test_whitening_counts_a_step_where_pets_never_vary_more_than_one_where_they_do():
    """Lee et al.'s shared covariance: the same step is far along a direction the training photos hold still."""
    rng = np.random.default_rng(1)
    features = np.zeros((300, 2), np.float32)
    features[:, 0] = rng.normal(0, 1.0, 300)  # the pets vary along the first feature …
    features[:, 1] = rng.normal(0, 0.01, 300)  # … and hardly along the second
    veto = fit_veto(features, np.zeros(300, int), features[:100], 0.99)
    along_varied, along_still = veto.distances(np.array([[0.5, 0.0], [0.0, 0.5]], np.float32))
    assert along_varied < 1 < along_still


def veto_case():
    """A model image → mean colour ("pool", 3 features) → softmax over (cats, dogs, other) with red → cats,
    green → dogs, blue → other, and a veto fitted on reddish and greenish photos."""
    import keras

    inputs = keras.Input((4, 4, 3))
    pool = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Rescaling(1 / 255)(inputs))
    classifier = keras.layers.Dense(3, activation="softmax", name="classifier")
    model = keras.Model(inputs, classifier(pool))
    classifier.set_weights([np.eye(3, dtype=np.float32) * 8, np.zeros(3, np.float32)])
    rng = np.random.default_rng(0)
    features, classes = colour_features(rng, 400)
    veto = fit_veto(features, classes, colour_features(rng, 200)[0], 0.99)
    colours = {"red": (230, 25, 25), "green": (25, 205, 50), "orange": (230, 128, 25), "blue": (25, 25, 230),
               "grey": (128, 128, 128)}
    photos = np.stack([np.full((4, 4, 3), c, np.float32) for c in colours.values()])
    return model, veto, photos, list(colours)


def test_veto_in_the_graph_changes_only_far_photos_called_a_class_of_interest():
    model, veto, photos, names = veto_case()
    p = dict(zip(names, np.asarray(model.predict_on_batch(photos))))
    vetoed = build_vetoed(model, veto, (0, 1))
    got = dict(zip(names, np.asarray(vetoed.predict_on_batch(photos))))
    np.testing.assert_allclose(got["red"], p["red"], atol=1e-6)  # near the cats: a cat as before
    np.testing.assert_allclose(got["green"], p["green"], atol=1e-6)  # near the dogs
    assert p["orange"].argmax() == 0 and p["orange"][0] > 0.9  # the model is sure of a cat …
    np.testing.assert_array_equal(got["orange"], [0, 0, 1])  # … the veto: far from every pet it was trained on
    np.testing.assert_allclose(got["blue"], p["blue"], atol=1e-6)  # far, but already the background: untouched
    assert p["grey"].argmax() == 0 and p["grey"].max() < 0.5  # best label cats at any threshold: vetoed too
    np.testing.assert_array_equal(got["grey"], [0, 0, 1])
    assert "veto" in [layer.name for layer in vetoed.layers]
    np.testing.assert_array_equal(vetoed.get_layer("veto").get_weights()[0], veto.projection)


def test_veto_survives_saving_and_convert(tmp_path):
    """model.keras reloads with it; convert's float16 file (the one to ship with a veto) gives the same answers, and
    its int8 file is a valid full-integer graph (the distance's squares are MULs: TFLite has no int8 SQUARE)."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from convert.quantize import check_graph, convert

    model, veto, photos, names = veto_case()
    vetoed = build_vetoed(model, veto, (0, 1))
    vetoed.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    expected = np.asarray(vetoed.predict_on_batch(photos))
    np.testing.assert_allclose(np.asarray(again.predict_on_batch(photos)), expected, atol=1e-6)
    calibration = np.concatenate([photos, photos * 0.9, photos[::-1] * 0.8])
    calibration[0, 0, 0], calibration[0, 0, 1] = 0.0, 255.0  # the full pixel range, as convert's calibration pins it
    int8 = check_graph(convert(again, "int8", calibration), "int8")
    assert not int8.problems and "MUL" in int8.ops and "SQUARE" not in int8.ops, int8
    interpreter = Interpreter(model_content=convert(again, "float16"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for name, photo, want in zip(names, photos, expected):
        interpreter.set_tensor(inp["index"], photo[None])
        interpreter.invoke()
        got = interpreter.get_tensor(out["index"])[0]
        assert got.argmax() == want.argmax() and abs(got.max() - want.max()) < 0.01, (name, got, want)


def test_one_wild_feature_cannot_veto_alone():
    veto = Veto(np.eye(2, dtype=np.float32), np.zeros((1, 2), np.float32), limit=CLIP ** 2 + 1.0, keep=0.99,
                photos=1, checked=1)
    assert veto.distances(np.array([[1000.0, 0.0]], np.float32))[0] == pytest.approx(CLIP ** 2 / (CLIP ** 2 + 1))
    assert veto.distances(np.array([[1000.0, 1.5]], np.float32))[0] > 1  # two directions together can


def test_contract_distance_veto_is_checked_and_round_trips():
    spec = InputSpec(labels=PETS.labels, background_label="other", threshold=0.7,
                     distance_veto={"keep": 0.99, "directions": 512, "limit": 812.5})
    again = InputSpec.from_json(spec.to_json())
    assert again.distance_veto == spec.distance_veto and again.version == 4
    old = InputSpec.from_dict({"labels": list(PETS.labels), "background_label": "other", "threshold": 0.7, "version": 3})
    assert old.distance_veto is None  # a version 3 contract: no veto in its graph
    for veto, message in [({"keep": 0.99, "limit": 1.0}, r"`distance_veto` must be null or an object with \['directions', "),
                          ({"keep": 1.0, "directions": 512, "limit": 1.0}, r"`distance_veto.keep` must be a number from 0.5"),
                          ({"keep": 0.99, "directions": 0, "limit": 1.0}, r"`distance_veto.directions` must be a positive"),
                          ({"keep": 0.99, "directions": 512, "limit": 0}, r"`distance_veto.limit` must be a number above 0")]:
        with pytest.raises(ContractError, match=message):
            InputSpec(labels=PETS.labels, background_label="other", distance_veto=veto)
    with pytest.raises(ContractError, match=r"`distance_veto` needs `background_label`"):
        InputSpec(labels=("cats", "dogs"), distance_veto={"keep": 0.99, "directions": 512, "limit": 1.0})


@pytest.mark.parametrize("keep, message", [
    (1.0, r"^--distance-veto must be a number in \[0, 1\), received 1\.0$"),
    (0.3, r"^--distance-veto must be 0 \(none\) or a share from 0\.5 to below 1 .*received 0\.3$"),
])
def test_distance_veto_flag_out_of_range_is_named(tmp_path, keep, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), distance_veto=keep).validate()


def test_distance_veto_needs_a_background_class(tmp_path, tiny_weights):
    from train import run_training

    home = write_class_folders(tmp_path / "home", ["red", "green"], 4)
    with pytest.raises(ConfigError, match=r"^--distance-veto 0\.99 answers a vetoed photo with the background class: "
                                          r"give --background DIR"):
        run_training(tiny_config(str(home), tmp_path / "run", tiny_weights, distance_veto=0.99))
    assert not (tmp_path / "run" / "model.keras").exists()  # stopped before any training


def test_run_with_a_distance_veto_and_a_retrain_from_it(tmp_path, tiny_weights):
    """The veto is fitted on the training photos of interest and limited on the validation ones; the contract, the
    report and the saved model say so; a retrain from the run (--init-from) fits it again."""
    import keras

    from train import run_training

    home = write_class_folders(tmp_path / "home", ["red", "green"], 10)
    negatives = write_negatives(tmp_path / "negatives", 10, BLUE)
    run_training(tiny_config(str(home), tmp_path / "run", tiny_weights, background=[str(negatives)],
                             distance_veto=0.9))
    run = tmp_path / "run"
    contract = json.loads((run / "contract.json").read_text())
    report = json.loads((run / "report.json").read_text())
    split = json.loads((run / "split.json").read_text())
    veto = report["model"]["distance_veto"]
    assert contract["version"] == 4 and contract["distance_veto"] == {k: veto[k] for k in ("keep", "directions", "limit")}
    assert veto["keep"] == 0.9 and veto["limit"] > 0 and veto["directions"] == 512  # MobileNetV2 0.35: 1,280 features
    assert veto["photos"] == sum(1 for s in split["train"] if s["label"] != "other")
    assert veto["checked"] == sum(1 for s in split["validation"] if s["label"] != "other")
    assert "- distance veto: a photo called a class of interest" in (run / "report.md").read_text()
    assert "veto" in [layer.name for layer in keras.saving.load_model(run / "model.keras").layers]
    assert "then the distance veto (--distance-veto) was built in at" in report["thresholds"]["rule"]
    # convert: the float16 file carries the veto's record; no int8 file is made (it would lose the veto)
    from convert.export import export
    from convert.results import ExportOptions

    result = export(run, tmp_path / "models", ExportOptions(variants=("float16", "int8"), calibration_size=10),
                    warn=lambda _m: None, log=lambda _m: None, progress=False)
    statuses = {v.variant: (v.status, v.error) for v in result.variants}
    assert statuses["float16"] == ("accepted", None)
    assert statuses["int8"][0] == "failed" and statuses["int8"][1].startswith(
        "int8: not made for a model with a distance veto (train --distance-veto)")
    assert [p.name for p in (tmp_path / "models").glob("*.tflite")] == ["green_red_float16.tflite"]
    embedded = read_contract(tmp_path / "models" / "green_red_float16.tflite")
    assert embedded.distance_veto == contract["distance_veto"] and embedded.version == 4
    run_training(tiny_config(str(home), tmp_path / "again", tiny_weights, background=[str(negatives)],
                             distance_veto=0.9, init_from=str(run)))
    assert json.loads((tmp_path / "again" / "contract.json").read_text())["distance_veto"]["keep"] == 0.9
