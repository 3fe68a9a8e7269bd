"""Fine-tune a pretrained CNN on a folder of labelled photos.

``run_training(TrainConfig(data=..., out=...))`` (or ``python -m train``)
writes into the output directory: ``model.keras`` (raw 0–255 RGB in, softmax
out), ``contract.json`` and ``labels.txt`` (the runner's input contract),
``split.json``, ``skipped.txt``, ``config.json``, ``report.json``/``report.md``,
PNG plots and ``checkpoints/`` (for ``--resume``).

TensorFlow is imported only when training starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_runner import __version__  # the kit's one version source (pyproject.toml reads it too)

from .config import TrainConfig, TrainResult
from .errors import ConfigError, DataError, TrainError

if TYPE_CHECKING:
    from .fitting.fit import EpochHook


def run_training(config: TrainConfig, *, on_epoch_end: "EpochHook | None" = None) -> TrainResult:
    """Train as ``config`` says; see :func:`train.training.run_training`."""
    from .training import run_training as _run

    return _run(config, on_epoch_end=on_epoch_end)


__all__ = ["__version__", "TrainConfig", "TrainResult", "TrainError", "ConfigError", "DataError", "run_training"]
