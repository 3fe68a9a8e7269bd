"""The shared helpers under every writer and every latency figure: ``edge_runner.common.files``,
``edge_runner.common.timing`` and the file-descriptor tools of ``edge_runner.common.native_log``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from edge_runner.common.files import write_atomic, write_figure, write_json
from edge_runner.common.native_log import silenced
from edge_runner.common.timing import Latency, time_interleaved


def test_write_atomic_creates_parents_replaces_and_is_readable_by_others(tmp_path):
    path = tmp_path / "a" / "b" / "model.tflite"
    assert write_atomic(path, b"first") == path
    assert write_atomic(path, b"second") == path
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["model.tflite"]  # no temporary file left behind


def test_write_atomic_failing_part_way_keeps_the_old_file(tmp_path):
    path = tmp_path / "report.json"
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "text, not bytes")  # the write fails after the temporary file exists
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_json_is_indented_with_a_final_newline(tmp_path):
    data = {"b": [1, 2], "a": "é"}
    assert write_json(tmp_path / "x.json", data).read_bytes() == b'{\n  "b": [\n    1,\n    2\n  ],\n  "a": "\\u00e9"\n}\n'
    assert write_json(tmp_path / "y.json", data, indent=1).read_text() == json.dumps(data, indent=1) + "\n"


def test_write_figure_writes_a_png_with_the_savefig_options(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install .[train])")
    from matplotlib.figure import Figure
    from PIL import Image

    figure = Figure(figsize=(2, 1))
    figure.subplots().plot([0, 1], [1, 0])
    small, large = write_figure(figure, tmp_path / "small.png", dpi=50), write_figure(figure, tmp_path / "d" / "large.png", dpi=100)
    assert Image.open(small).size == (100, 50) and Image.open(large).size == (200, 100)
    assert Image.open(large).format == "PNG"


def test_latency_percentiles_and_rounding():
    times = np.arange(1, 101, dtype=float)  # 1..100 ms
    exact = Latency.from_times(times, threads=2)
    assert (exact.threads, exact.runs) == (2, 100)
    assert [exact.p50_ms, exact.p90_ms, exact.p99_ms, exact.mean_ms] == pytest.approx([50.5, 90.1, 99.01, 50.5], abs=1e-9)
    rounded = Latency.from_times([1.23456, 2.34567, 3.45678], threads=1, digits=3)
    assert rounded.p50_ms == 2.346 and rounded.mean_ms == 2.346 and rounded.runs == 3
    assert Latency.from_times([1.23456, 2.34567], threads=1).p50_ms == pytest.approx(1.790115, abs=1e-12)


def test_time_interleaved_warms_up_then_takes_turns():
    order: list[str] = []
    calls = [lambda: order.append("a"), lambda: order.append("b"), lambda: order.append("c")]
    rounds: list[int] = []
    times = time_interleaved(calls, runs=3, warmup=2, on_round=lambda: rounds.append(len(order)))
    assert order[:6] == ["a", "a", "b", "b", "c", "c"]
    assert order[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # round r starts at call r mod 3
    assert rounds == [9, 12, 15]
    assert [len(t) for t in times] == [3, 3, 3] and all(v >= 0 for t in times for v in t)


def _native_print(text: str, fd: int) -> None:
    os.write(fd, text.encode())  # straight to the descriptor, as C++ logging does


def test_silenced_drops_both_descriptors_and_returns_the_result(capfd):
    def noisy():
        _native_print("converter chatter\n", 1)
        _native_print("converter notice\n", 2)
        print("python print")
        return 42

    assert silenced(noisy) == 42
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""


def test_silenced_restores_the_descriptors_when_the_call_raises(capfd):
    def failing():
        _native_print("noise\n", 2)
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        silenced(failing)
    _native_print("visible\n", 2)
    assert capfd.readouterr().err == "visible\n"


def test_filtered_stderr_drops_info_lines_and_keeps_the_rest():
    # A child process: under pytest's capture sys.stderr has no descriptor and the filter stands aside.
    script = (
        "import os, sys\n"
        "from edge_runner.common.native_log import INFO_NOISE, filtered_stderr\n"
        "with filtered_stderr(INFO_NOISE):\n"
        "    os.write(2, b'I0000 00:00:1796163041.341537   21387 port.cc:153] oneDNN custom operations are on\\n')\n"
        "    os.write(2, b'W0000 00:00:1796163041.341537   21387 foo.cc:1] a real warning\\n')\n"
        "    sys.stderr.write('Traceback: kept\\n')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "W0000 00:00:1796163041.341537   21387 foo.cc:1] a real warning\nTraceback: kept\n"
