"""``--strategy multi-worker``: real worker processes on loopback ports, on generated photos.

* two workers train a from-scratch baseline CNN (it learns red vs green in a few epochs, so accuracy
  can be compared): both exit 0, the chief's run folder is complete, worker 1 leaves nothing behind,
  each worker decoded (and cached) only its share of the photos, and the validation accuracy matches
  a one-process run with the same global batch within one photo of twelve (TOLERANCE);
* a worker killed mid-epoch (SIGKILL, fine-tuning of the tiny MobileNetV2 of ``conftest``, both
  phases): the chief stops with one error line, both restart with the same command and finish, and
  the report says the run was resumed and from which epochs;
* a bad ``TF_CONFIG`` (unset, missing chief, index out of range, unsupported job, a batch that does
  not split) is one error line and exit status 2 before TensorFlow starts; an unreachable peer is one
  error line after ``--worker-timeout`` seconds, not a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")

from conftest import REPO, write_class_folders  # noqa: E402
from multiworker_helpers import free_ports, tf_config  # noqa: E402
from conftest import TINY_SIZE as SIZE  # noqa: E402
from train import TrainConfig, run_training  # noqa: E402
from train.fitting.cluster import parse_tf_config  # noqa: E402

TOLERANCE = 1 / 12  # validation accuracy, two workers against one: at most one of the 12 photos apart
RUN_FILES = ("model.keras", "contract.json", "labels.txt", "split.json", "config.json", "skipped.txt", "report.json",
             "report.md", "distributed.json", "training_curves.png", "confusion_matrix.png", "checkpoints/state.json")


def start_worker(argv: list[str], ports: list[int], index: int, tmp: Path, kill_at: str | None = None) -> subprocess.Popen:
    """``python -m train argv`` as worker ``index``, its own cache and temporary folder under ``tmp``."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "TF_CONFIG": tf_config(ports, index),
           "TMPDIR": str(tmp / f"tmp{index}")}
    (tmp / f"tmp{index}").mkdir(exist_ok=True)
    program = [str(REPO / "tests" / "multiworker_kill.py")] if kill_at else ["-m", "train"]
    if kill_at:
        env["EDGEKIT_KILL_AT"] = kill_at
    command = [sys.executable, *program, *argv, "--cache-dir", str(tmp / f"cache{index}")]
    return subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    """Wait for every process (killing the lot after ``timeout`` s); ``[(exit status, stdout, stderr)]``."""
    deadline, results = time.monotonic() + timeout, []
    for process in processes:
        try:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            raise AssertionError(f"a worker did not finish within {timeout} s") from None
        results.append((process.returncode, out, err))
    return results


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("train: error:")]


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mw_data") / "data"
    write_class_folders(root / "train", ["red", "green"], 16)
    write_class_folders(root / "validation", ["red", "green"], 6, seed=3)
    (root / "train" / "red" / "broken.jpg").write_bytes(b"")  # skipped by whichever worker decodes it
    return root


def scratch_argv(data: Path, out: Path) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--backbone", "baseline", "--image-size", "32", "--weights", "none",
            "--fine-tune-epochs", "6", "--batch-size", "8", "--learning-rate", "0.003", "--patience", "10",
            "--no-determinism", "--quiet"]


def test_two_workers_match_one_and_each_decodes_its_share(tmp_path, colour_data):
    ports = free_ports(2)
    out = tmp_path / "out"
    argv = scratch_argv(colour_data, out) + ["--strategy", "multi-worker", "--worker-timeout", "60"]
    (code0, stdout0, err0), (code1, stdout1, err1) = finish([start_worker(argv, ports, i, tmp_path) for i in (0, 1)])
    assert (code0, code1) == (0, 0), err0 + err1
    assert stdout0.startswith("validation accuracy") and stdout1.startswith("worker 1 of 2 (127.0.0.1:")
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert not any((tmp_path / "tmp1").iterdir()), "worker 1 left its temporary folder behind"
    assert "broken.jpg" in (out / "skipped.txt").read_text()

    stats = json.loads((out / "distributed.json").read_text())
    assert (stats["workers"], stats["global_batch"], stats["per_worker_batch"], stats["resumed"]) == (2, 8, 4, False)
    workers = stats["per_worker"]
    # 45 files (32 training photos + 1 broken + 12 validation): photos k, k+2, ... for worker k.
    assert [w["photos"] for w in workers] == [23, 22] and all(not w["from_cache"] for w in workers)
    assert sum(w["train"] for w in workers) == 32 and sum(w["validation"] for w in workers) == 12
    assert [w["steps"]["fine_tune"] for w in workers] == [4 * 6, 4 * 6]  # 32 photos / global batch 8, 6 epochs
    # What each worker decoded is what it cached: its share; the chief also the 12 validation photos for the report.
    assert stats["chief_report_decode"]["photos"] == 12
    for index, worker in enumerate(workers):
        cached = sum(np.load(f, mmap_mode="r").shape[0] for f in (tmp_path / f"cache{index}" / "pixels" / "chunks").glob("*.npy"))
        assert cached == worker["photos"] + (12 if index == 0 else 0), cached  # in chunks, one per folder

    one = run_training(TrainConfig(
        data=str(colour_data), out=str(tmp_path / "one"), backbone="baseline", image_size=32, weights="none",
        fine_tune_epochs=6, batch_size=8, learning_rate=0.003, patience=10, deterministic=False, verbose=0,
        cache_dir=str(tmp_path / "cache_one")))
    report = json.loads((out / "report.json").read_text())
    two = report["validation"]["accuracy"]
    assert abs(two - one.val_accuracy) <= TOLERANCE + 1e-9, (two, one.val_accuracy)
    assert two >= 0.9, report["phases"]["fine_tune"]["history"]
    assert report["config"]["strategy"] == "multi-worker" and "--strategy multi-worker" in report["command"]


def test_held_out_photos_are_not_trained_on_and_the_chief_measures_them(tmp_path):
    home, web = tmp_path / "home", tmp_path / "web"
    write_class_folders(home, ["red", "green"], 15)
    write_class_folders(web, ["red", "green"], 4, seed=5)
    ports, out = free_ports(2), tmp_path / "out"
    argv = scratch_argv(home, out)[2:] + ["--data", str(home), "--data", str(web), "--holdout-source", "web",
                                          "--strategy", "multi-worker", "--worker-timeout", "60"]
    results = finish([start_worker(argv, ports, i, tmp_path) for i in (0, 1)])
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    split = json.loads((out / "split.json").read_text())
    stats = json.loads((out / "distributed.json").read_text())
    per_worker = stats["per_worker"]
    assert sum(w["train"] for w in per_worker) == len(split["train"]) and len(split["holdout"]) == 8
    assert sum(w["validation"] for w in per_worker) == len(split["validation"])
    assert stats["chief_report_decode"]["photos"] == len(split["validation"]) + 8
    held = json.loads((out / "report.json").read_text())["per_source"]["holdout"]
    assert held["photos"] == 8


def test_worker_killed_mid_epoch_is_restarted_and_the_run_resumes(tmp_path, tiny_weights):  # noqa: F811
    data = tmp_path / "data"
    write_class_folders(data / "train", ["red", "green"], 16)
    write_class_folders(data / "validation", ["red", "green"], 6, seed=3)
    ports, out = free_ports(2), tmp_path / "out"
    argv = ["--data", str(data), "--out", str(out), "--width", "0.35", "--image-size", str(SIZE), "--weights",
            str(tiny_weights), "--epochs", "2", "--fine-tune-epochs", "2", "--fine-tune-layers", "29", "--batch-size", "8",
            "--fine-tune-learning-rate", "1e-4", "--augment-views", "1", "--patience", "5", "--no-determinism",
            "--quiet", "--strategy", "multi-worker", "--worker-timeout", "30", "--resume"]
    chief = start_worker(argv, ports, 0, tmp_path)
    killed = start_worker(argv, ports, 1, tmp_path, kill_at="fine-tune epoch 2/2:1")
    (code0, _, err0), (code1, _, _) = finish([chief, killed])
    assert code1 == -9
    lines = error_lines(err0)
    assert code0 == 2 and len(lines) == 1 and "lost contact" in lines[0] and "--resume" in lines[0], err0
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert (state["head"]["epoch"], state["head"]["done"], state["fine_tune"]["epoch"]) == (2, True, 1)
    assert not (out / "model.keras").exists()

    results = finish([start_worker(argv, ports, i, tmp_path) for i in (0, 1)])
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    report = json.loads((out / "report.json").read_text())
    stats = json.loads((out / "distributed.json").read_text())
    assert stats["resumed"] and stats["resumed_from_epoch"] == {"head": 2, "fine_tune": 1}
    assert all(w["from_cache"] for w in stats["per_worker"]) and [w["photos"] for w in stats["per_worker"]] == [22, 22]
    assert [w["steps"] for w in stats["per_worker"]] == [{"head": 0, "fine_tune": 4}] * 2  # only epoch 2 again
    assert any("resumed" in note for note in report["notes"])
    assert report["phases"]["fine_tune"]["epochs_run"] == 2 and len(report["phases"]["fine_tune"]["history"]["val_loss"]) == 2
    for name in RUN_FILES:
        assert (out / name).is_file(), name


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, "TF_CONFIG is not set"),
        ("{not json", "TF_CONFIG: not valid JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}',
         "TF_CONFIG: task type 'chief' but the cluster has no 'chief' job (missing chief?)"),
        ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "TF_CONFIG: the cluster has no chief"),
        ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
         "TF_CONFIG: task index 2 is out of range for 2 workers (0 to 1)"),
        ('{"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}',
         "TF_CONFIG: job 'ps' is not supported by --strategy multi-worker; allowed jobs are ['chief', 'worker']"),
        ('{"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}',
         "TF_CONFIG: cluster.worker address must be 'host:port'"),
        ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}, "task": {"type": "worker", "index": 0}}',
         "--batch-size must be a multiple of the 3 workers in TF_CONFIG"),
    ],
)
def test_bad_tf_config_is_one_error_line(tmp_path, colour_data, monkeypatch, capsys, config, expected):
    from train.cli import main

    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config)
    assert main(scratch_argv(colour_data, tmp_path / "out") + ["--strategy", "multi-worker"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"train: error: {expected}"), lines
    assert not (tmp_path / "out").exists()


def test_chief_first_then_workers_in_order():
    spec = parse_tf_config('{"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}, "task": {"type": "worker", "index": 1}}')
    assert (spec.addresses, spec.index, spec.is_chief, spec.name) == (("h0:1", "h1:1", "h2:1"), 2, False, "worker 2 of 3 (h2:1)")
    assert parse_tf_config('{"cluster": {"chief": ["h0:1"]}, "task": {"type": "chief"}}').is_chief


def test_unreachable_peer_is_one_error_line_after_the_timeout(tmp_path, colour_data):
    ports = free_ports(2)  # nothing will listen on the second one
    argv = scratch_argv(colour_data, tmp_path / "out") + ["--strategy", "multi-worker", "--worker-timeout", "3"]
    started = time.monotonic()
    [(code, _, err)] = finish([start_worker(argv, ports, 0, tmp_path)], timeout=120)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("train: error: TF_CONFIG: not every worker joined within 3 s (--worker-timeout)")
    assert f"waiting for 127.0.0.1:{ports[1]}" in lines[0]
    assert time.monotonic() - started < 60


def test_teacher_is_fitted_on_the_chiefs_share_of_the_training_photos(tmp_path, watch_model):
    """``--teacher``: the chief fits its head after the last epoch on the training photos it decoded (its share,
    each once), never on the validation photos it decodes again for the report, and builds the rescue in."""
    data = write_class_folders(tmp_path / "photos", ["red", "green"], 12)
    negatives = write_class_folders(tmp_path / "sky", ["blue"], 12, seed=9)  # the colour model's own "other"
    ports, out = free_ports(2), tmp_path / "out"
    argv = scratch_argv(data, out) + ["--background", str(negatives / "blue"), "--teacher", str(watch_model),
                                      "--teacher-as", "red=0", "--teacher-as", "green=1", "--rescue-limit", "0.5",
                                      "--strategy", "multi-worker", "--worker-timeout", "60"]
    results = finish([start_worker(argv, ports, i, tmp_path) for i in (0, 1)])
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    chief = json.loads((out / "distributed.json").read_text())["per_worker"][0]
    teacher = json.loads((out / "report.json").read_text())["model"]["teacher"]
    assert teacher["photos"] == chief["train"] > 0, (teacher, chief)
    assert teacher["mass"]["other"] > 0.2 and teacher["mass"]["red"] > 0.2 and teacher["mass"]["green"] > 0.2, teacher
    assert json.loads((out / "contract.json").read_text())["rescue"]["limit"] == 0.5
