"""``python -m train ARGS`` that kills itself (SIGKILL) at one training step: a worker lost mid-epoch.

Used by ``tests/test_train_multiworker.py``. ``EDGEKIT_KILL_AT="fine-tune epoch 2/2:1"`` kills the
process when step 1 (from 0) of that epoch has run, as an out-of-memory kill or a lost host would.
"""

from __future__ import annotations

import os
import signal
import sys

from train.fitting import fit
from train.cli import main

target, _, step = os.environ["EDGEKIT_KILL_AT"].rpartition(":")
started, batch_end = fit._ProgressBar.__init__, fit._ProgressBar.on_train_batch_end


def _init(self, total: int, desc: str, enabled: bool) -> None:
    started(self, total, desc, enabled)
    self.kill_here = desc == target


def _batch_end(self, batch: int, logs: dict | None = None) -> None:
    if self.kill_here and batch == int(step):
        os.kill(os.getpid(), signal.SIGKILL)
    batch_end(self, batch, logs)


fit._ProgressBar.__init__, fit._ProgressBar.on_train_batch_end = _init, _batch_end
sys.exit(main(sys.argv[1:]))
