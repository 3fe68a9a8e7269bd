"""Redirected to a file (a journal, CI), training writes plain lines: no progress-bar
carriage returns, a few lines per epoch, and none of TensorFlow's INFO start-up notices.
On a terminal the bars are still there.

Not ``slow`` (that mark is for tests needing ``../shared``): the run trains the registry's
smallest network (``baseline``, from scratch, 32 px, 24 generated photos, 2 epochs), so
nearly all of its ~30 s is starting TensorFlow.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")

from conftest import REPO, write_class_folders  # noqa: E402

SIZE = 32
EPOCHS = 2  # all in the fine-tuning phase: a network without pretrained weights has no head-only phase


def test_train_log_redirected_to_a_file_has_lines_not_bars(tmp_path):
    data = write_class_folders(tmp_path / "photos", ["red", "green"], 12)
    log_path = tmp_path / "train.log"
    argv = [sys.executable, "-m", "train", "--data", str(data), "--out", str(tmp_path / "out"),
            "--backbone", "baseline", "--weights", "none", "--image-size", str(SIZE),
            "--epochs", "0", "--fine-tune-epochs", str(EPOCHS), "--batch-size", "8",
            "--validation-fraction", "0.25", "--cache-dir", str(tmp_path / "cache"), "--no-determinism"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["PYTHONPATH"] = str(REPO)
    with log_path.open("wb") as log:
        result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=tmp_path, timeout=600)
    text = log_path.read_text(encoding="utf-8")
    assert result.returncode == 0, text
    assert "\r" not in text, "a progress bar was written to a file"
    lines = text.splitlines()
    assert max(map(len, lines)) < 300, max(lines, key=len)
    assert [line.split(":")[0] for line in lines if " epoch " in line] == [
        "fine-tune epoch 1/2", "fine-tune epoch 2/2"]
    # Each stage that had a bar says once that it finished.
    assert sum(line.startswith("decode photos: 24 photos in ") for line in lines) == 1
    assert any(line.startswith("evaluate saved model: 6 photos in ") for line in lines)
    # No absl C++ log lines (I/W/E + date): neither the start-up INFO notices nor TensorFlow 2.21's
    # harmless per-epoch "NodeDef mentions attribute use_unbounded_threadpool" ERROR lines.
    assert not [line for line in lines if re.match(r"^[IWE]\d{4} ", line) or "absl::InitializeLog" in line], text
    assert len(lines) <= 12 + 3 * EPOCHS, text
    assert lines[-1].startswith("validation accuracy ")


def test_progress_draws_a_bar_only_on_a_terminal(monkeypatch, caplog):
    from train import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, bar in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        caplog.clear()
        with caplog.at_level("INFO", logger="train"), progress.Progress(3, "decode photos", "photo") as stage:
            for _ in range(3):
                stage.update()
        drawn = stream.getvalue()
        assert ("\r" in drawn and "decode photos" in drawn) is bar
        assert [r.getMessage().split(" in ")[0] for r in caplog.records] == ([] if bar else ["decode photos: 3 photos"])
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    with progress.Progress(3, "decode photos", "photo", enabled=False) as stage:
        stage.update(3)
    assert quiet.getvalue() == ""
