"""The input contract, the runtime import and the shared preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edge_runner import Classifier, ContractError, InputSpec, ModelError, preprocess
from edge_runner.core.quantization import quantize_input
from edge_runner.core.model import read_contract
from edge_runner.core.runtime import RuntimeUnavailable, load_runtime
from edge_runner.core.spec import contract_path_for


def test_contract_round_trips_through_json(tmp_path):
    spec = InputSpec(labels=("cat", "dog"), height=160, width=128, backbone="mobilenet_v2_1.0_160", extra={"variant": "int8"})
    path = spec.save(tmp_path / "contract.json")
    again = InputSpec.load(path)
    assert again == spec
    assert again.extra == {"variant": "int8"}
    assert json.loads(path.read_text())["format"] == "edgekit.input-contract"


def test_contract_with_background_and_threshold_round_trips(tmp_path):
    spec = InputSpec(labels=("cats", "dogs", "other"), background_label="other", threshold=0.7, extra={"variant": "int8"})
    path = spec.save(tmp_path / "contract.json")
    data = json.loads(path.read_text())
    assert (data["version"], data["background_label"], data["threshold"]) == (4, "other", 0.7)
    assert data["rescue"] is None and data["distance_veto"] is None
    again = InputSpec.load(path)
    assert again == spec
    assert (again.background_label, again.threshold) == ("other", 0.7)
    assert again.interest_labels == ("cats", "dogs")
    assert again.is_detection("cats") and not again.is_detection("other") and not again.is_detection("unknown")


def test_version_1_contract_still_loads(tmp_path):
    """A contract written before version 2 (no background_label, no threshold) means: every label is of interest."""
    old = {"format": "edgekit.input-contract", "labels": ["cats", "dogs"], "height": 224, "width": 224,
           "color_order": "RGB", "resize": "bilinear", "crop": "none", "value_range": [0.0, 255.0],
           "name": "cats_dogs", "backbone": "mobilenet_v2_1.0_224", "version": 1, "extra": {"variant": "int8"}}
    path = tmp_path / "old.contract.json"
    path.write_text(json.dumps(old))
    spec = InputSpec.load(path)
    assert spec.version == 1
    assert spec.background_label is None and spec.threshold is None
    assert spec.interest_labels == ("cats", "dogs")
    assert spec.is_detection("cats") and spec.is_detection("dogs") and not spec.is_detection("unknown")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": ["only"]}, "at least 2"),
        ({"labels": ["a", "a"]}, "unique"),
        ({"resize": "area"}, "`resize` must be one of"),
        ({"crop": "random"}, "`crop` must be one of"),
        ({"height": 3}, "`height`"),
        ({"value_range": [-1, 1]}, "value_range"),
        ({"version": 99}, "newer"),
        ({"colour": "RGB"}, "unknown fields"),
        ({"background_label": "other"}, "`background_label` must be one of the labels"),
        ({"labels": ["a", "unknown"]}, "must not contain 'unknown'"),
        ({"threshold": 1.5}, "`threshold` must be a number from 0 to 1"),
    ],
)
def test_contract_errors_name_the_field(change, message):
    data = {"labels": ["a", "b"], **change}
    with pytest.raises(ContractError, match=message):
        InputSpec.from_dict(data, "x.json")


def test_contract_rejects_bad_json(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        InputSpec.load(bad)


def test_runtime_is_taken_in_the_order_of_preference(monkeypatch):
    """The first importable of LiteRT → tflite-runtime → TensorFlow; ``prefer`` (or $EDGEKIT_RUNTIME) takes exactly one."""
    from edge_runner.core import runtime as runtime_module

    imported = []

    def importer(name: str, available: bool):
        def load():
            imported.append(name)
            if not available:
                raise ImportError(f"No module named {name!r}")
            return runtime_module.Runtime(name, "1.0", object)

        return load

    def install(available: set[str]) -> None:
        importers = {name: importer(name, name in available) for name in runtime_module.RUNTIMES}
        monkeypatch.setattr(runtime_module, "_IMPORTERS", importers)
        monkeypatch.setattr(runtime_module, "_loaded", {})
        imported.clear()

    monkeypatch.delenv("EDGEKIT_RUNTIME", raising=False)
    install({"ai-edge-litert", "tflite-runtime", "tensorflow"})
    assert load_runtime().name == "ai-edge-litert" and imported == ["ai-edge-litert"]  # the others are never imported
    install({"tensorflow"})
    assert load_runtime().name == "tensorflow" and imported == ["ai-edge-litert", "tflite-runtime", "tensorflow"]
    install({"ai-edge-litert", "tensorflow"})
    monkeypatch.setenv("EDGEKIT_RUNTIME", "tensorflow")
    assert load_runtime().name == "tensorflow" and imported == ["tensorflow"]
    install({"ai-edge-litert"})
    with pytest.raises(RuntimeUnavailable, match=r"cannot import the runtime 'tensorflow'; install one with: pip install"):
        load_runtime()
    with pytest.raises(ValueError, match=r"runtime must be one of .*, received 'tflite'"):
        load_runtime("tflite")


@pytest.mark.parametrize("dtype, zero_point", [(np.uint8, 0), (np.int8, -128)])
def test_pixels_enter_int_models_exactly(dtype, zero_point):
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    tensor = quantize_input(pixels, np.dtype(dtype), 1.0, zero_point)
    assert tensor.dtype == dtype
    np.testing.assert_array_equal(tensor.astype(np.int32) - zero_point, pixels.astype(np.int32))


def test_float_tflite_matches_keras(tiny_models, tmp_path):
    """Parity: the runner's probabilities equal the Keras model's within 1e-4."""
    spec = tiny_models["spec"]
    classifier = Classifier(tiny_models["float32"], num_threads=1)
    rng = np.random.default_rng(1)
    for i in range(4):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(path)
        pixels = preprocess(path, spec).array
        expected = tiny_models["keras"](pixels[np.newaxis].astype(np.float32), training=False).numpy()[0]
        np.testing.assert_allclose(classifier.probabilities(pixels), expected, atol=1e-4)


def test_int8_model_reads_quantisation_from_interpreter(tiny_models):
    """uint8 pixels enter as they are (scale 1, zero point 0); the answers are the float Keras model's within 2 output steps."""
    classifier = Classifier(tiny_models["int8"])
    assert classifier.input_dtype == np.uint8
    assert (classifier.input_scale, classifier.input_zero_point) == (1.0, 0.0)
    assert classifier.output_scale == 1 / 256
    rng = np.random.default_rng(1)
    for _ in range(4):
        # Noise like the calibration images', so every activation stays inside its calibrated range.
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        expected = tiny_models["keras"](pixels[np.newaxis].astype(np.float32), training=False).numpy()[0]
        np.testing.assert_allclose(classifier.probabilities(pixels), expected, atol=2 * classifier.output_scale)
        prediction = classifier.classify(pixels, top_k=3)
        assert prediction.label == tiny_models["spec"].labels[int(expected.argmax())]
        assert abs(sum(item.score for item in prediction.top_k) - 1.0) < 0.02


def test_model_without_contract_is_refused(tiny_models, tmp_path):
    lone = tmp_path / "lone.tflite"
    lone.write_bytes(tiny_models["float32"].read_bytes())
    with pytest.raises(ContractError, match="no input contract"):
        read_contract(lone)


def test_contract_that_contradicts_model_is_refused(tiny_models, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_models["float32"].read_bytes())
    InputSpec(labels=("a", "b"), height=32, width=32).save(contract_path_for(model))
    with pytest.raises(ContractError, match="lists 2 labels"):
        Classifier(model)
    InputSpec(labels=("a", "b", "c"), height=64, width=64).save(contract_path_for(model))
    with pytest.raises(ContractError, match="input 1x64x64x3"):
        Classifier(model)


def test_non_tflite_file_is_refused(tmp_path):
    fake = tmp_path / "fake.tflite"
    fake.write_text("hello")
    with pytest.raises(ModelError, match="not a TFLite model"):
        Classifier(fake)
