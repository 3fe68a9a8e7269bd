"""`python -m edge_runner` on files: inputs, output formats, options, exit codes, runtimes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, draw_photo, run_runner

from edge_runner import Classifier, preprocess
from edge_runner.cli import runner as cli
from edge_runner.core import loading
from edge_runner.core import runtime as runtime_module
from edge_runner.cli.batch import classify_paths, collect_inputs


run = run_runner  # python -m edge_runner, in-process (tests/conftest.py)


@pytest.fixture
def gallery(tmp_path):
    """``a/red.0.jpg … a/b/blue.2.png`` and a text file, in nested folders."""
    root = tmp_path / "gallery"
    (root / "nested" / "deeper").mkdir(parents=True)
    files = []
    for i, (name, colour) in enumerate(CLASS_COLOURS.items()):
        jpg = root / f"{name}.{i}.jpg"
        draw_photo(colour, seed=i).save(jpg, quality=92)
        png = root / "nested" / "deeper" / f"{name}.{i}.png"
        draw_photo(colour, seed=10 + i).save(png)
        files += [jpg, png]
    (root / "nested" / "notes.txt").write_text("not an image, and not picked up from a directory")
    return root


def expected(model_path, path, top_k=3, threshold=0.0):
    classifier = Classifier(model_path, num_threads=1)
    return classifier.classify(preprocess(path, classifier.spec).array, top_k=top_k, threshold=threshold)


def test_human_output_is_file_label_score_in_input_order(tiny_models, gallery, capsys):
    model = tiny_models["int8"]
    inputs = [gallery / "green.1.jpg", gallery / "red.0.jpg", gallery / "nested"]
    code, out, err = run([*inputs, "--model", model], capsys)
    assert code == 0, err
    lines = out.splitlines()
    nested = sorted(str(p) for p in (gallery / "nested").rglob("*.png"))
    assert [line.split("  ")[0] for line in lines] == [str(inputs[0]), str(inputs[1]), *nested]
    for line in lines:
        source, label, score = line.split("  ")
        want = expected(model, source)
        assert label == want.label
        assert float(score) == pytest.approx(want.score, abs=1e-3)


def test_json_is_one_prediction_dict_per_input(tiny_models, gallery, capsys):
    model = tiny_models["float32"]
    code, out, err = run([gallery, "--model", model, "--json"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 6
    for record in records:
        assert set(record) == {"source", "label", "detected", "score", "top_k", "latency_ms"}
        want = expected(model, record["source"]).to_dict(record["source"])
        assert record["label"] == want["label"]
        assert record["detected"] is True  # no background label, no threshold: every answer is a detection
        assert record["score"] == pytest.approx(want["score"], abs=1e-5)
        assert [item["label"] for item in record["top_k"]] == [item["label"] for item in want["top_k"]]
        assert len(record["top_k"]) == 3  # the default in JSON
        assert record["latency_ms"] > 0


def test_top_k(tiny_models, gallery, capsys):
    photo = gallery / "red.0.jpg"
    code, out, _ = run([photo, "--model", tiny_models["int8"], "--json", "--top-k", "2"], capsys)
    record = json.loads(out)
    assert code == 0 and len(record["top_k"]) == 2
    scores = [item["score"] for item in record["top_k"]]
    assert scores == sorted(scores, reverse=True) and record["top_k"][0]["label"] == record["label"]
    # More than the model has: all classes, no error.
    code, out, _ = run([photo, "--model", tiny_models["int8"], "--json", "--top-k", "10"], capsys)
    assert code == 0 and len(json.loads(out)["top_k"]) == 3
    # Text output lists the top-k only when asked.
    code, out, _ = run([photo, "--model", tiny_models["int8"], "--top-k", "3"], capsys)
    labels = [part.rsplit(" ", 1)[0] for part in out.split("[")[1].rstrip("]\n").split(", ")]
    assert sorted(labels) == ["blue", "green", "red"]


def test_threshold_turns_low_scores_into_unknown(tiny_models, gallery, capsys):
    model = tiny_models["float32"]
    code, out, _ = run([gallery, "--model", model, "--json"], capsys)
    scores = sorted(json.loads(line)["score"] for line in out.splitlines())
    threshold = (scores[2] + scores[3]) / 2  # half the photos fall below it
    code, out, _ = run([gallery, "--model", model, "--json", "--threshold", f"{threshold:.6f}"], capsys)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    for record in records:
        if record["score"] < threshold:
            assert record["label"] == "unknown"
        else:
            assert record["label"] == record["top_k"][0]["label"]
    assert sum(r["label"] == "unknown" for r in records) == 3


def test_globs_recursion_and_deduplication(tiny_models, gallery, capsys, monkeypatch):
    monkeypatch.chdir(gallery)
    collected = collect_inputs(["*.jpg", "nested/**/*.png", "red.0.jpg", "nested"])
    assert collected.errors == []
    assert collected.paths == [
        "blue.2.jpg", "green.1.jpg", "red.0.jpg",
        "nested/deeper/blue.2.png", "nested/deeper/green.1.png", "nested/deeper/red.0.png",
    ]
    code, out, err = run(["*.jpg", "**/*.png", "--model", tiny_models["int8"]], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 6
    code, out, err = run(["*.gif", "--model", tiny_models["int8"]], capsys)
    assert code == 1 and "edge_runner: error: *.gif: no files match this pattern" in err


def test_ordering_is_kept_with_many_inputs_and_decode_threads(tiny_models, tmp_path):
    """The thread pool decodes ahead; results still come back in input order, with failures in place."""
    paths = []
    for i in range(40):
        path = tmp_path / f"p{i:02d}.png"
        if i % 7 == 3:
            path.write_bytes(b"")  # a failure in the middle of the look-ahead window
        else:
            draw_photo(list(CLASS_COLOURS.values())[i % 3], seed=i).save(path)
        paths.append(str(path))
    paths.reverse()  # not alphabetical: the order given must be kept
    classifier = Classifier(tiny_models["int8"], num_threads=1)
    threaded = list(classify_paths(classifier, paths, workers=3))
    inline = list(classify_paths(classifier, paths, workers=0))
    assert [r.source for r in threaded] == paths
    assert [r.ok for r in threaded] == [r.ok for r in inline]
    assert sum(not r.ok for r in threaded) == 6
    for a, b in zip(threaded, inline):
        if a.ok:
            np.testing.assert_array_equal(a.prediction.probabilities, b.prediction.probabilities)


def test_exit_codes(tiny_models, gallery, capsys, tmp_path):
    model = tiny_models["int8"]
    assert run([gallery / "red.0.jpg", "--model", model], capsys)[0] == 0
    code, out, err = run([gallery / "red.0.jpg", tmp_path / "missing.jpg", gallery / "blue.2.jpg", "--model", model], capsys)
    assert code == 1
    assert len(out.splitlines()) == 2  # the batch went on
    assert f"edge_runner: error: {tmp_path / 'missing.jpg'}: no such file or directory" in err
    for argv, message in [
        ([], "nothing to do"),
        ([gallery, "--threshold", "1.5"], "--threshold: must be a number from 0 to 1, received 1.5"),
        ([gallery, "--top-k", "0"], "--top-k: must be a positive integer, received 0"),
        ([gallery, "--runtime", "onnx"], "invalid choice: 'onnx'"),
        ([gallery, "--max-frames", "3"], "--max-frames only applies with --camera"),
        ([gallery, "--camera"], "--camera takes no INPUT files"),
    ]:
        code, _, err = run([*argv, "--model", model], capsys)
        assert code == 2, argv
        assert message in err and err.rstrip().splitlines()[-1].startswith("edge_runner: error:"), err
    assert run(["--help"], capsys)[0] == 0


def test_verbose_names_the_runtime(tiny_models, gallery, capsys):
    code, _, err = run([gallery / "red.0.jpg", "--model", tiny_models["int8"], "--verbose"], capsys)
    runtime = runtime_module.load_runtime()
    assert code == 0
    assert f"runtime: {runtime.name} {runtime.version}" in err
    assert "labels: red, green, blue" in err


def test_default_model_from_env_then_shipped_then_usage_error(tiny_models, gallery, capsys, monkeypatch, tmp_path):
    photo = gallery / "red.0.jpg"
    monkeypatch.setattr(loading, "shipped_model_path", lambda: tmp_path / "models" / "cats_dogs_int8.tflite")
    monkeypatch.delenv("EDGEKIT_MODEL", raising=False)
    code, _, err = run([photo], capsys)
    assert code == 2
    assert "edge_runner: error: --model is required" in err and "cats_dogs_int8.tflite" in err
    monkeypatch.setenv("EDGEKIT_MODEL", str(tiny_models["int8"]))
    code, out, _ = run([photo], capsys)
    assert code == 0 and out.startswith(str(photo))
    monkeypatch.delenv("EDGEKIT_MODEL")
    monkeypatch.setattr(loading, "shipped_model_path", lambda: Path(tiny_models["float32"]))
    code, out, _ = run([photo], capsys)
    assert code == 0 and out.startswith(str(photo))


def test_shipped_model_location_is_next_to_the_package():
    assert loading.shipped_model_path() == REPO / "models" / "cats_dogs_int8.tflite"


def test_missing_runtime_says_what_to_install(tiny_models, gallery, capsys, monkeypatch):
    def unavailable():
        raise ImportError("No module named 'x'")

    monkeypatch.setattr(runtime_module, "_IMPORTERS", {name: unavailable for name in runtime_module.RUNTIMES})
    monkeypatch.setattr(runtime_module, "_loaded", {})
    monkeypatch.delenv("EDGEKIT_RUNTIME", raising=False)
    code, out, err = run([gallery / "red.0.jpg", "--model", tiny_models["int8"]], capsys)
    assert code == 2 and out == ""
    assert err.startswith("edge_runner: error: cannot import a TFLite runtime")
    assert "pip install .[edge]" in err and "Traceback" not in err


def test_tflite_runtime_under_numpy2_is_explained(tiny_models, gallery, capsys, monkeypatch):
    """tflite-runtime 2.14 + numpy 2 dies with a bare SystemError; the runner explains it instead."""

    class BrokenInterpreter:
        def __init__(self, model_content=None, num_threads=None):
            raise SystemError("<built-in method CreateWrapperFromBuffer> returned NULL without setting an exception")

    fake = runtime_module.Runtime("tflite-runtime", "2.14.0", BrokenInterpreter)
    monkeypatch.setattr(runtime_module, "_IMPORTERS", {**runtime_module._IMPORTERS, "tflite-runtime": lambda: fake})
    monkeypatch.setattr(runtime_module, "_loaded", {})
    monkeypatch.setattr(runtime_module.np, "__version__", "2.1.0")
    code, out, err = run([gallery / "red.0.jpg", "--model", tiny_models["int8"], "--runtime", "tflite-runtime"], capsys)
    assert code == 2 and out == ""
    assert "edge_runner: warning: using tflite-runtime" in err  # the slowness warning, as one line
    assert "tflite-runtime 2.14.0 was built for numpy 1.x" in err and "numpy 2.1.0" in err
    assert "pip install .[edge]" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["runner", "watch", "serve"])
def test_every_runner_command_takes_the_same_model_arguments(command):
    """One argument group: ``-m/--model``, ``--runtime``, ``--threads``, ``-v/--verbose`` mean the same in all three."""
    from edge_runner.watcher import watch
    from edge_runner.web import server

    parser = {"runner": cli, "watch": watch, "serve": server}[command].build_parser()
    args = parser.parse_args(["-m", "m.tflite", "--runtime", "tflite-runtime", "--threads", "3", "-v"])
    assert (args.model, args.runtime, args.threads, args.verbose) == ("m.tflite", "tflite-runtime", 3, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--runtime", "onnx"])


def test_workers_zero_means_one_per_cpu_as_in_train(tiny_models, gallery, capsys):
    from edge_runner.core.decoder import usable_cores

    code, out, err = run([gallery, "--model", tiny_models["int8"], "--workers", "0", "-v"], capsys)
    assert code == 0 and len(out.splitlines()) == 6
    assert f"workers: {usable_cores()}" in err.splitlines()
    code, _, err = run([gallery, "--model", tiny_models["int8"], "--workers", "1", "-v"], capsys)
    assert code == 0 and "workers: 1" in err.splitlines()


def test_serve_is_delegated_to_the_server_module(monkeypatch):
    calls = []
    fake = types.ModuleType("edge_runner.web.server")
    fake.main = lambda argv: calls.append(list(argv)) or 7
    monkeypatch.setitem(sys.modules, "edge_runner.web.server", fake)
    import edge_runner.web

    monkeypatch.setattr(edge_runner.web, "server", fake, raising=False)
    assert cli.main(["serve", "--port", "9000"]) == 7
    assert calls == [["--port", "9000"]]


def test_benchmark_prints_latency_table_cold_start_and_memory(tiny_models, gallery, capsys):
    code, out, err = run(["--benchmark", gallery / "red.0.jpg", "--model", tiny_models["int8"]], capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "4"]
    for row in rows:
        p50, p90, p99 = map(float, row[1:4])
        assert 0 < p50 <= p90 <= p99
    assert "cold start (spawn -> first result" in out
    assert "peak RSS, runner classifying one photo:" in out


def test_subprocess_end_to_end_without_tensorflow_opencv_or_server(tiny_models, gallery, tmp_path):
    """The real entry point; a photo run never imports TensorFlow, OpenCV or the web server."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-m", "edge_runner", str(gallery / "red.0.jpg"), str(tmp_path / "nope.jpg"),
         "--model", str(tiny_models["int8"]), "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["source"] == str(gallery / "red.0.jpg")
    assert completed.stderr.strip() == f"edge_runner: error: {tmp_path / 'nope.jpg'}: no such file or directory"
    probe = (
        "import sys; from edge_runner.cli.runner import main; "
        f"code = main([{str(gallery)!r}, '--model', {str(tiny_models['int8'])!r}]); "
        "print('MODULES', code, sorted(m for m in ('tensorflow', 'keras', 'cv2', 'edge_runner.web.server', "
        "'edge_runner.watcher.camera') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert completed.stdout.splitlines()[-1] == "MODULES 0 []", completed.stderr
