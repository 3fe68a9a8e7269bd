"""convert/: export with metadata, the accuracy gate, bad input, resume, and the benchmark.

Everything runs on a tiny 32-px model trained for a few seconds on generated
photos, so the whole file takes well under a minute; the real-photo check is
marked slow.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="convert/ needs TensorFlow (pip install .[train])")

from conftest import LABELS, build_tiny_keras, draw_photo, make_train_out, write_photos  # noqa: E402

from convert.tflite import metadata as md  # noqa: E402
from convert.cli import main  # noqa: E402
from convert.gate.accuracy import Comparison, Scores, Thresholds, compare, judge, score  # noqa: E402
from convert.quantize import check_graph, convert, parse_variants, pin_input_range  # noqa: E402
from edge_runner import Classifier, InputSpec, preprocess  # noqa: E402
from edge_runner.core.model import read_contract, read_packed_files  # noqa: E402
from edge_runner.core.spec import contract_path_for  # noqa: E402

SIZE = 32
VARIANTS = ("float32", "float16", "dynamic", "int8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One full export of the tiny model: ``(train_out, out_dir, exit_code, stderr_text)``."""
    root = tmp_path_factory.mktemp("convert")
    train_out = make_train_out(root)
    out = root / "models"
    capture = io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(capture):
        code = main(["export", str(train_out), "--out", str(out), "--calibration-size", "30", "--quiet",
                     "--author", "Test Author", "--license", "MIT", "--model-version", "2.1.0"])
    return train_out, out, code, capture.getvalue()


def test_export_writes_every_variant_and_passes_the_gate(exported):
    train_out, out, code, _ = exported
    report = json.loads((out / "report.json").read_text())
    assert code == 0, report["rejected"]
    assert report["all_accepted"] and report["rejected"] == []
    assert (out / "labels.txt").read_text() == "red\ngreen\nblue\n"
    assert "**Result: all 4 variants accepted.**" in (out / "report.md").read_text()
    for entry, variant in zip(report["variants"], VARIANTS):
        path = out / f"tiny_{variant}.tflite"
        assert entry["variant"] == variant and entry["status"] == "accepted"
        assert entry["path"] == str(path) and entry["size_bytes"] == path.stat().st_size
        assert entry["comparison"]["agreement"] >= 98.0
        assert entry["accepted"] is True and entry["agreement"] == entry["comparison"]["agreement"] / 100
        assert entry["accuracy"] == pytest.approx(entry["scores"]["accuracy"] / 100)
        assert set(entry["scores"]["per_class"]) == set(LABELS)
        classifier = Classifier(path)
        assert classifier.variant == variant
        assert classifier.labels == LABELS
        sidecar = InputSpec.load(contract_path_for(path))
        assert read_contract(path) == sidecar and read_contract(path).extra == sidecar.extra
        assert sidecar.extra["variant"] == variant
    # The float32 variant is the Keras model: same top-1 on every photo.
    assert report["variants"][0]["comparison"]["agreement"] == 100.0
    assert report["variants"][0]["comparison"]["max_probability_difference"] < 1e-4
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_int8_takes_raw_pixels_exactly_and_is_all_int8(exported):
    _, out, _, _ = exported
    classifier = Classifier(out / "tiny_int8.tflite")
    assert classifier.input_dtype == np.uint8
    assert (classifier.input_scale, classifier.input_zero_point) == (1.0, 0.0)
    assert classifier.output_dtype == np.uint8
    graph = check_graph((out / "tiny_int8.tflite").read_bytes(), "int8")
    assert graph.problems == ()
    assert set(graph.tensor_types) <= {"INT8", "INT32", "UINT8"} and graph.tensor_types["UINT8"] == 2
    assert graph.ops["QUANTIZE"] == 2 and "DEQUANTIZE" not in graph.ops
    # Calibration photos (generated: noise + a shape) never reach 0 and 255; the
    # range was pinned and the report says so.
    calibration = json.loads((out / "report.json").read_text())["calibration"]
    assert calibration["used"] == 30 and calibration["pinned_range"] is True and calibration["all_photos"] is False
    assert (calibration["input_min"], calibration["input_max"]) == (0.0, 255.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_metadata_reads_back_from_the_written_file(exported, variant):
    _, out, _, _ = exported
    content = (out / f"tiny_{variant}.tflite").read_bytes()
    meta = md.read_metadata(content)
    assert meta["name"] == "tiny"
    assert "red, green, blue" in meta["description"] and variant in meta["description"]
    assert (meta["version"], meta["author"], meta["license"]) == ("2.1.0", "Test Author", "MIT")
    assert meta["min_parser_version"] == "1.0.0"
    (subgraph,) = meta["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"]["content_properties_type"] == "ImageProperties"
    assert image["content"]["content_properties"] == {"color_space": "RGB", "default_size": {"width": SIZE, "height": SIZE}}
    assert image["stats"] == {"max": [255.0], "min": [0.0]}
    if variant == "int8":  # uint8 pixels enter as they are: no normalisation
        assert "process_units" not in image
    else:  # float input: MediaPipe needs NormalizationOptions; raw pixels → mean 0, std 1
        assert image["process_units"] == [{"options_type": "NormalizationOptions", "options": {"mean": [0.0], "std": [1.0]}}]
    (probability,) = subgraph["output_tensor_metadata"]
    assert probability["content"]["content_properties_type"] == "FeatureProperties"
    assert probability["stats"] == {"max": [1.0], "min": [0.0]}
    assert probability["associated_files"][0]["name"] == "labels.txt"
    assert probability["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert [f["name"] for f in meta["associated_files"]] == ["contract.json"]
    # The packed files: a zip after the flatbuffer, uncompressed (MediaPipe refuses compressed entries).
    packed = read_packed_files(content)
    assert packed["labels.txt"] == b"red\ngreen\nblue\n"
    assert InputSpec.from_json(packed["contract.json"]).extra["variant"] == variant
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


def test_unreadable_photo_is_skipped_with_a_warning(exported):
    train_out, out, _, stderr = exported
    broken = train_out.parent / "photos" / "validation" / "red" / "broken.jpg"
    assert f"convert: warning: {broken}:" in stderr and "(skipped)" in stderr
    report = json.loads((out / "report.json").read_text())
    assert len(report["eval_skipped"]) == 1 and str(broken) in report["eval_skipped"][0]
    assert report["reference"]["photos"] == 18


def readable_validation(train_out: Path) -> tuple[list[dict], InputSpec]:
    """The validation photos export evaluates (the broken one left out) and the contract."""
    split = json.loads((train_out / "split.json").read_text())
    photos = [e for e in split["validation"] if Path(e["path"]).name != "broken.jpg"]
    return photos, InputSpec.load(train_out / "contract.json")


def keras_probabilities(train_out: Path, pixels: np.ndarray) -> np.ndarray:
    import keras

    model = keras.saving.load_model(train_out / "model.keras")
    return model.predict(pixels.astype(np.float32), verbose=0)


def test_draft_decoding_is_measured(exported):
    """The report's draft study equals a recomputation: both decodings through preprocess, the Keras model on each."""
    train_out, out, _, _ = exported
    draft = json.loads((out / "report.json").read_text())["draft"]
    photos, spec = readable_validation(train_out)
    full = np.stack([preprocess(e["path"], spec, draft=False).array for e in photos])
    reduced = np.stack([preprocess(e["path"], spec, draft=True).array for e in photos])
    truth = np.array([LABELS.index(e["label"]) for e in photos])
    full_top, draft_top = (keras_probabilities(train_out, x).argmax(axis=1) for x in (full, reduced))
    assert draft["photos"] == len(photos) == 18
    # 256x192 JPEGs are decoded at half size for a 32-px model, so every photo's pixels change a little.
    assert draft["photos_decoded_differently"] == int((full != reduced).reshape(18, -1).any(axis=1).sum()) == 18
    assert draft["mean_abs_pixel_difference"] == pytest.approx(np.abs(full.astype(int) - reduced).mean(), abs=1e-4)
    assert draft["accuracy_full"] == pytest.approx(100 * np.mean(full_top == truth))
    assert draft["accuracy_draft"] == pytest.approx(100 * np.mean(draft_top == truth))
    assert draft["comparison"]["agreement"] == pytest.approx(100 * np.mean(full_top == draft_top))
    # The colours stay the colours at half size: the trained model gives the same answers, so draft costs nothing.
    assert draft["comparison"]["agreement"] == 100.0 and draft["costs_nothing"] is True
    assert "## JPEG draft decoding" in (out / "report.md").read_text()


# The largest difference from the Keras model's probabilities each variant may have on the validation
# photos: float32 is the same graph; float16 and dynamic (weights only) round the weights; int8's
# output is in steps of 1/256, and its rounded activations may add one more step.
VARIANT_TOLERANCE = {"float32": 1e-5, "float16": 1e-3, "dynamic": 1e-3, "int8": 2 / 256}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_answers_as_the_keras_model(exported, variant):
    """Through the runner, every written variant gives the Keras model's probabilities within its tolerance."""
    train_out, out, _, _ = exported
    photos, spec = readable_validation(train_out)
    pixels = np.stack([preprocess(e["path"], spec).array for e in photos])
    expected = keras_probabilities(train_out, pixels)
    classifier = Classifier(out / f"tiny_{variant}.tflite")
    got = np.stack([classifier.probabilities(x) for x in pixels])
    np.testing.assert_allclose(got, expected, atol=VARIANT_TOLERANCE[variant])
    assert [classifier.labels[i] for i in got.argmax(axis=1)] == [e["label"] for e in photos]
    entry = next(v for v in json.loads((out / "report.json").read_text())["variants"] if v["variant"] == variant)
    assert entry["comparison"]["max_probability_difference"] == pytest.approx(np.abs(got - expected).max(), abs=1e-5)


def test_second_run_reuses_identical_conversions(exported):
    train_out, out, _, _ = exported
    before = {p.name: p.read_bytes() for p in out.glob("*.tflite")}
    code = main(["export", str(train_out), "--out", str(out), "--calibration-size", "30", "--quiet",
                 "--author", "Test Author", "--license", "MIT", "--model-version", "2.1.0"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert all(v["reused"] for v in report["variants"])
    assert {p.name: p.read_bytes() for p in out.glob("*.tflite")} == before


def test_gate_rejects_an_int8_collapse(tmp_path, capsys):
    train_out = make_train_out(tmp_path, collapse=True)
    out = tmp_path / "models"
    code = main(["export", str(train_out), "--out", str(out), "--variants", "float32,int8", "--calibration-size", "20", "--quiet"])
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    status = {v["variant"]: v["status"] for v in report["variants"]}
    assert status == {"float32": "accepted", "int8": "rejected"}
    assert report["rejected"] == ["int8"]
    int8 = report["variants"][1]
    assert int8["comparison"]["agreement"] < 98.0
    assert any("significant loss" in reason for reason in int8["verdict"]["reasons"])
    assert int8["p_value_loss"] < 0.05 and int8["change_interval_points"][1] < -1.0
    assert "**Result: REJECTED** — int8:" in (out / "report.md").read_text()
    assert "1/2 variants accepted; not accepted: int8 (rejected)" in capsys.readouterr().out


def test_a_failing_conversion_leaves_no_broken_file_and_resumes(tmp_path, monkeypatch):
    import convert.variants as export_module  # where each variant is converted and written

    train_out = make_train_out(tmp_path)
    out = tmp_path / "models"
    real_convert = export_module.convert

    def convert_then_die(model, variant, calibration=None):
        if variant == "int8":
            raise KeyboardInterrupt  # as if Ctrl-C arrived in the middle of the int8 conversion
        return real_convert(model, variant, calibration)

    monkeypatch.setattr(export_module, "convert", convert_then_die)
    args = ["export", str(train_out), "--out", str(out), "--variants", "float32,int8", "--calibration-size", "20", "--quiet"]
    assert main(args) == 130
    assert sorted(p.name for p in out.iterdir()) == ["tiny_float32.contract.json", "tiny_float32.tflite"]
    Classifier(out / "tiny_float32.tflite")  # complete and loadable
    monkeypatch.setattr(export_module, "convert", real_convert)
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert [v["reused"] for v in report["variants"]] == [True, False]


def test_a_variant_breaking_its_invariants_is_not_written(tmp_path, monkeypatch):
    import convert.variants as export_module  # where each variant is checked and written
    from convert.quantize import GraphCheck

    train_out = make_train_out(tmp_path)
    real_check = export_module.check_graph

    def check_with_problem(content, variant):
        graph = real_check(content, variant)
        return GraphCheck(graph.input, graph.output, graph.ops, graph.tensor_types, ("input scale 0.5, expected 1.0",))

    monkeypatch.setattr(export_module, "check_graph", check_with_problem)
    out = tmp_path / "models"
    assert main(["export", str(train_out), "--out", str(out), "--variants", "float32", "--quiet"]) == 1
    assert not (out / "tiny_float32.tflite").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["variants"][0]["status"] == "failed"
    assert "input scale 0.5" in report["variants"][0]["error"]


def test_a_packing_that_changes_quantisation_is_not_written(tmp_path, monkeypatch):
    import convert.tflite.metadata as metadata_module
    from convert.tflite.flatbuffer import pack_model

    def pack_with_a_wrong_scale(model):
        for tensor in model.subgraphs[0].tensors:
            q = tensor.quantization
            if q is not None and q.scale is not None and len(q.scale) > 1:
                q.scale = np.asarray(q.scale, np.float32) * np.float32(1.0001)
                break
        return pack_model(model)

    monkeypatch.setattr(metadata_module, "pack_model", pack_with_a_wrong_scale)
    out = tmp_path / "models"
    args = ["export", str(make_train_out(tmp_path)), "--out", str(out), "--variants", "int8", "--calibration-size", "20",
            "--quiet"]
    assert main(args) == 1
    assert not (out / "tiny_int8.tflite").exists()
    assert "changed a tensor's quantisation" in json.loads((out / "report.json").read_text())["variants"][0]["error"]


# -- bad input: one line, exit 2, nothing written ------------------------------

@pytest.fixture(scope="module")
def train_out_for_errors(exported):
    return exported[0]


def run_bad(args, capsys, out):
    code = main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    # One error line, preceded only by warnings naming unreadable photos.
    assert lines[-1].startswith("convert: error: ")
    assert all(line.startswith("convert: warning: ") for line in lines[:-1])
    assert "Traceback" not in "".join(lines)
    assert not out.exists(), "nothing may be written for bad input"
    return lines[-1]


def test_unknown_variant_names_allowed_values(train_out_for_errors, tmp_path, capsys):
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--variants", "float32,int4"], capsys, out)
    assert "float32, float16, dynamic, int8, int16x8" in err and "'float32,int4'" in err and "unknown: int4" in err


@pytest.mark.parametrize("missing, message", [("model.keras", "no Keras model"), ("contract.json", "no input contract")])
def test_train_dir_without_model_or_contract(train_out_for_errors, tmp_path, capsys, missing, message):
    import shutil

    broken = tmp_path / "train_out"
    shutil.copytree(train_out_for_errors, broken)
    (broken / missing).unlink()
    out = tmp_path / "out"
    err = run_bad(["export", str(broken), "--out", str(out)], capsys, out)
    assert message in err and str(broken / missing) in err


def test_eval_dir_with_unknown_class(train_out_for_errors, tmp_path, capsys):
    eval_dir = tmp_path / "eval"
    write_photos(eval_dir, 1, (64, 48), seed=5)
    (eval_dir / "purple").mkdir()
    draw_photo((150, 0, 150), seed=1).save(eval_dir / "purple" / "p.jpg")
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--eval-data", str(eval_dir)], capsys, out)
    assert "purple" in err and "red, green, blue" in err


def test_eval_dir_with_no_readable_photos(train_out_for_errors, tmp_path, capsys):
    eval_dir = tmp_path / "eval"
    (eval_dir / "red").mkdir(parents=True)
    (eval_dir / "red" / "a.jpg").write_bytes(b"")
    (eval_dir / "red" / "b.jpg").write_text("not an image")
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--eval-data", str(eval_dir),
                   "--variants", "float32"], capsys, out)
    assert "none of the 2 evaluation photos could be read" in err


def test_eval_dir_without_class_folders(train_out_for_errors, tmp_path, capsys):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    draw_photo((200, 0, 0)).save(eval_dir / "loose.jpg")
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--eval-data", str(eval_dir)], capsys, out)
    assert "no class folders" in err


def test_calibration_size_below_the_minimum_is_refused(train_out_for_errors, tmp_path, capsys):
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--calibration-size", "3"], capsys, out)
    assert "`--calibration-size` must be at least 10, received 3" in err


def test_calibration_dir_below_the_minimum_is_refused(train_out_for_errors, tmp_path, capsys):
    calibration = tmp_path / "few"
    write_photos(calibration, 3, (64, 48), seed=3)  # 9 photos: one fewer than MIN_CALIBRATION
    out = tmp_path / "out"
    err = run_bad(["export", str(train_out_for_errors), "--out", str(out), "--calibration-data", str(calibration),
                   "--calibration-size", "20"], capsys, out)
    assert f"calibration set too small: {calibration} has 9 photos, int8 calibration needs at least 10" in err


def test_calibration_uses_every_photo_when_fewer_than_asked(train_out_for_errors, tmp_path, capsys):
    """36 training photos, --calibration-size 300 (the default): all 36 calibrate, one line and the report say so."""
    out = tmp_path / "out"
    code = main(["export", str(train_out_for_errors), "--out", str(out), "--variants", "float32,int8", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    notes = [line for line in err.splitlines() if "calibrating on all" in line]
    assert notes == [f"convert: warning: calibrating on all 36 readable photos of {train_out_for_errors / 'split.json'} "
                     "(train split): fewer than `--calibration-size` 300"]
    calibration = json.loads((out / "report.json").read_text())["calibration"]
    assert (calibration["used"], calibration["size"], calibration["all_photos"]) == (36, 300, True)
    assert "Fewer photos than `--calibration-size` 300 were available, so all 36 were used (the minimum is 10)." in (
        out / "report.md").read_text()


# -- units ------------------------------------------------------------------------

def test_parse_variants():
    assert parse_variants("int8, float32,int8") == ("int8", "float32")


def test_pin_input_range_only_when_needed():
    full = np.zeros((2, 4, 4, 3), np.float32)
    full[1, 1, 1, 1] = 255.0
    assert pin_input_range(full) is False
    narrow = np.full((2, 4, 4, 3), 100.0, np.float32)
    assert pin_input_range(narrow) is True
    assert (narrow.min(), narrow.max()) == (0.0, 255.0)
    assert np.count_nonzero(narrow != 100.0) == 2


def test_int8_without_full_pixel_range_is_refused():
    """The trap the pinning guards against: calibration that misses 0 or 255 rescales the input."""
    model = build_tiny_keras(3, SIZE)
    rng = np.random.default_rng(0)
    pixels = rng.integers(20, 200, size=(12, SIZE, SIZE, 3)).astype(np.float32)
    graph = check_graph(convert(model, "int8", pixels), "int8")
    assert graph.input.scale != 1.0
    assert any("expected uint8 scale 1.0" in p for p in graph.problems)
    float_graph = check_graph(convert(model, "float32"), "int8")
    assert any("float tensors" in p for p in float_graph.problems)


def test_embedding_keeps_the_graph_and_aligns_weights(tiny_models):
    from ai_edge_litert import schema_py_generated as schema

    bare = Path(tiny_models["float32"]).read_bytes()
    spec = tiny_models["spec"]
    meta = md.classifier_metadata(spec, "float32", float_input=True, info=md.ModelInfo())
    files = {"labels.txt": spec.labels_text().encode(), "contract.json": spec.to_json().encode()}
    content = md.embed(bare, meta, files)
    twice = md.embed(content, meta, files)  # replacing metadata, not stacking it
    assert len(twice) == len(content) and md.read_metadata(twice) == md.read_metadata(content)
    model = schema.Model.GetRootAs(content, 0)
    assert [model.Metadata(i).Name() for i in range(model.MetadataLength())].count(b"TFLITE_METADATA") == 1
    for i in range(model.BuffersLength()):
        if model.Buffers(i).DataLength():
            assert model.Buffers(i).DataAsNumpy().ctypes.data % 16 == np.frombuffer(content, np.uint8).ctypes.data % 16
    from edge_runner.core.runtime import load_runtime

    pixels = np.random.default_rng(1).integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32)
    results = []
    for blob in (bare, content):
        interpreter = load_runtime().make_interpreter(blob, 1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
        interpreter.invoke()
        results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert np.array_equal(results[0], results[1])
    with pytest.raises(ValueError, match="associated files"):
        md.embed(bare, meta, {"labels.txt": b"x\n"})


def _zero_point_vectors(content: bytes) -> tuple[int, set[int]]:
    """(tensors with per-channel zero-points, distinct places their vectors start) of a ``.tflite``."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    starts = []
    for i in range(graph.TensorsLength()):
        q = graph.Tensors(i).Quantization()
        if q is not None and q.ZeroPointLength() > 1:
            starts.append(q._tab.Vector(q._tab.Offset(10)))  # field 3 of QuantizationParameters: zero_point
    return len(starts), set(starts)


def test_packing_shares_identical_quantisation_vectors(tiny_models):
    import flatbuffers

    from convert.variants import _tensor_quantization
    from convert.tflite.flatbuffer import pack_model, read_model
    from edge_runner.core.runtime import load_runtime

    bare = Path(tiny_models["int8"]).read_bytes()
    model = read_model(bare)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    plain, packed = bytes(builder.Output()), pack_model(model)
    per_channel, starts = _zero_point_vectors(plain)
    assert per_channel >= 4 and len(starts) == per_channel  # the object API writes every vector afresh
    per_channel, starts = _zero_point_vectors(packed)
    assert len(starts) < per_channel  # weights and bias of a convolution share their all-zero vector
    assert len(packed) < len(plain)
    assert pack_model(model) == packed  # the model object is left as it was
    pixels = np.random.default_rng(2).integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.uint8)
    seen = []
    for blob in (bare, packed):  # the interpreter verifies the flatbuffer on load
        interpreter = load_runtime().make_interpreter(blob, 1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
        interpreter.invoke()
        seen.append((_tensor_quantization(interpreter), interpreter.get_tensor(interpreter.get_output_details()[0]["index"])))
    assert seen[0][0] == seen[1][0] and np.array_equal(seen[0][1], seen[1][1])


def test_gate_arithmetic():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    variant = np.array([[0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.3, 0.7]], np.float32)
    truth = np.array([0, 1, 0, 1])
    ref_scores, var_scores = score(reference, truth, ("a", "b")), score(variant, truth, ("a", "b"))
    assert (ref_scores.accuracy, var_scores.accuracy) == (100.0, 75.0)
    assert var_scores.per_class == {"a": 50.0, "b": 100.0}
    comparison = compare(reference, variant)
    assert comparison.agreement == 75.0 and comparison.disagreements == (2,)
    assert comparison.max_probability_difference == pytest.approx(0.15)
    verdict = judge(var_scores, ref_scores, comparison, Thresholds(max_accuracy_drop=1.0, min_agreement=98.0))
    assert not verdict.accepted and len(verdict.reasons) == 2  # no paired table: any loss above the limit rejects
    assert judge(Scores(99.5, {}, 4), Scores(100.0, {}, 4), Comparison(99.0, 0.1, 0.1), Thresholds()).accepted


# -- benchmark ----------------------------------------------------------------------

def test_benchmark_writes_table_json_and_chart(exported, tmp_path, capsys):
    train_out, out, _, _ = exported
    data = train_out.parent / "photos" / "validation"
    bench = tmp_path / "bench"
    code = main(["benchmark", str(out / "tiny_float32.tflite"), str(out / "tiny_int8.tflite"), "--data", str(data),
                 "--threads", "1,2", "--keras", str(train_out), "--runs", "3", "--warmup", "1", "--limit", "9",
                 "--out", str(bench), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "| tiny_int8.tflite | int8 |" in printed.out and "| Keras float | keras |" in printed.out
    result = json.loads((bench / "benchmark.json").read_text())
    assert [m["variant"] for m in result["models"]] == ["float32", "int8"]
    for entry in result["models"]:
        assert [lat["threads"] for lat in entry["latencies"]] == [1, 2]
        assert all(lat["p50_ms"] > 0 and lat["p90_ms"] >= lat["p50_ms"] and lat["runs"] == 3 for lat in entry["latencies"])
        # The tiny model names all 18 validation photos right (see test_each_variant_answers_as_the_keras_model),
        # so on any 8 of them every variant is right and agrees with the Keras model.
        assert entry["accuracy"] == 100.0 and entry["agreement"] == 100.0
        assert set(entry["latency_ms"]) == {"1", "2"} and entry["latency_ms"]["1"]["p50"] == entry["latencies"][0]["p50_ms"]
    assert result["photos"] == 8  # 9 asked, round-robin over classes; the broken photo is skipped
    assert result["keras"]["latencies"][0]["p50_ms"] > 0 and result["keras"]["accuracy"] == 100.0 and result["reference"] == "Keras float model"
    assert result["models"][1]["size_vs_float32"] < 1.0
    assert (bench / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Model | Variant |" in (bench / "benchmark.md").read_text()


def test_benchmark_bad_threads_and_bad_model(exported, tmp_path, capsys):
    _, out, _, _ = exported
    assert main(["benchmark", str(out / "tiny_int8.tflite"), "--threads", "0,x"]) == 2
    assert "convert: error: argument --threads: must be comma-separated thread counts from 1 to 64, received '0,x'" in \
        capsys.readouterr().err
    not_model = tmp_path / "x.tflite"
    not_model.write_text("hello")
    assert main(["benchmark", str(not_model)]) == 2
    assert "not a TFLite model" in capsys.readouterr().err


# -- real photos ----------------------------------------------------------------------

@pytest.mark.slow
def test_int8_mobilenet_v2_on_real_photos(shared_data, shared_weights, tmp_path):
    """MobileNetV2 (ImageNet weights) + a head fitted on 120 photos' features: int8 passes the gate on real photos."""
    import keras

    labels = ("cats", "dogs")
    spec = InputSpec(labels=labels, height=224, width=224, name="real", backbone="mobilenet_v2_1.0_224")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((224, 224, 3), name="image")
    base = keras.applications.MobileNetV2(include_top=False, weights=str(shared_weights), input_shape=(224, 224, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))
    head = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, head(features))
    split: dict = {"labels": list(labels), "skipped": []}
    for part, count in (("train", 60), ("validation", 100)):
        split[part] = [{"path": str(p), "label": label} for label in labels
                       for p in sorted((shared_data / part / label).glob("*.jpg"))[:count]]
    x = np.stack([preprocess(e["path"], spec).array for e in split["train"]]).astype(np.float32)
    y = np.array([labels.index(e["label"]) for e in split["train"]])
    feats = keras.Model(inputs, features).predict(x, verbose=0)
    probe = keras.Sequential([keras.Input((feats.shape[1],)), head])
    probe.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    probe.fit(feats, y, epochs=30, verbose=0)
    train_out = tmp_path / "train_out"
    train_out.mkdir()
    model.save(train_out / "model.keras")
    spec.save(train_out / "contract.json")
    (train_out / "split.json").write_text(json.dumps(split))
    out = tmp_path / "models"
    assert main(["export", str(train_out), "--out", str(out), "--variants", "float32,int8",
                 "--calibration-size", "100", "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    int8 = report["variants"][1]
    assert report["reference"]["accuracy"] >= 90.0
    assert int8["comparison"]["agreement"] >= 98.0
    assert int8["size_bytes"] <= 0.30 * report["variants"][0]["size_bytes"]  # the target
    assert report["calibration"]["pinned_range"] is False  # real photos span 0..255 on their own


def test_calibration_is_a_seeded_sample_through_the_runners_preprocessing(tmp_path):
    from convert.photos import sample_calibration

    photos = [Path(e["path"]) for e in write_photos(tmp_path / "cal", 6, (96, 72), seed=4)]
    (tmp_path / "cal" / "red" / "bad.jpg").write_bytes(b"garbage")
    candidates = photos + [tmp_path / "cal" / "red" / "bad.jpg"]
    spec = InputSpec(labels=LABELS, height=SIZE, width=SIZE)
    warnings: list[str] = []
    first = sample_calibration(candidates, spec, 17, seed=3, source="cal", warn=warnings.append, progress=False)
    again = sample_calibration(list(reversed(candidates)), spec, 17, seed=3, source="cal", warn=lambda _m: None,
                               progress=False)
    other = sample_calibration(candidates, spec, 17, seed=4, source="cal", warn=lambda _m: None, progress=False)
    assert first.paths == again.paths and first.paths != other.paths
    assert len(first.paths) == 17 and str(tmp_path / "cal" / "red" / "bad.jpg") not in first.paths
    assert len(first.skipped) == 1 and "bad.jpg" in warnings[0]
    # Exactly the runner's pixels (apart from the two pinned ones in the first photo).
    expected = np.stack([preprocess(p, spec).array for p in first.paths]).astype(np.float32)
    assert np.count_nonzero(first.pixels != expected) <= 2
    assert np.array_equal(first.pixels[1:], expected[1:])
