"""A training run's folder: where each file lives (``train`` writes it, ``convert`` and ``edgekit`` read it).

``python -m train`` writes ``model.keras`` (raw 0–255 RGB float32 in, softmax out,
``Rescaling`` inside), ``contract.json``, ``labels.txt``, ``split.json``
(``{"data_dir", "labels", "train": [{"path", "label"}...], "validation": [...], "skipped": [...]}``),
``config.json``, ``skipped.txt``, ``report.{md,json}``, the plots, ``checkpoints/`` and, with
``--strategy multi-worker``, ``distributed.json``.

The file names are defined here once, in :class:`RunLayout`. Why here: dependencies point
train → convert → edge_runner, so the writer (``train``) and the reader (``convert``) can both
import the kit-wide helpers without ``train`` importing ``convert``'s logic. The contract and
labels file names travel with every model too, so :mod:`edge_runner.core.spec` takes them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONTRACT_FILENAME = "contract.json"
LABELS_FILENAME = "labels.txt"
MODEL_FILENAME = "model.keras"
SPLIT_FILENAME = "split.json"
CONFIG_FILENAME = "config.json"
SKIPPED_FILENAME = "skipped.txt"
REPORT_JSON_FILENAME = "report.json"
REPORT_MD_FILENAME = "report.md"
CHECKPOINT_DIR = "checkpoints"
DISTRIBUTED_FILENAME = "distributed.json"  # --strategy multi-worker: the chief's per-worker numbers
STATE_FILENAME = "state.json"  # inside CHECKPOINT_DIR, written last after every epoch
PLOT_FILENAMES = {
    "training_curves": "training_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "roc": "roc.png",
    "worst_mistakes": "worst_mistakes.png",
    "gradcam": "gradcam.png",
    "thresholds": "thresholds.png",
}


@dataclass(frozen=True)
class RunLayout:
    """Where each file of a training run lives under ``root`` (the ``--out`` of ``python -m train``)."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILENAME

    @property
    def contract(self) -> Path:
        return self.root / CONTRACT_FILENAME

    @property
    def labels(self) -> Path:
        return self.root / LABELS_FILENAME

    @property
    def split(self) -> Path:
        return self.root / SPLIT_FILENAME

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILENAME

    @property
    def skipped(self) -> Path:
        return self.root / SKIPPED_FILENAME

    @property
    def report_json(self) -> Path:
        return self.root / REPORT_JSON_FILENAME

    @property
    def report_md(self) -> Path:
        return self.root / REPORT_MD_FILENAME

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def state(self) -> Path:
        """``checkpoints/state.json``: present once an epoch has finished."""
        return self.checkpoints / STATE_FILENAME

    def plot(self, kind: str) -> Path:
        """The PNG of ``kind``, a key of ``PLOT_FILENAMES`` (``"roc"`` → ``root/roc.png``)."""
        return self.root / PLOT_FILENAMES[kind]

    def run_files(self) -> tuple[Path, ...]:
        """Every file a run writes directly into ``root`` (what ``--overwrite`` removes, with ``checkpoints/``)."""
        names = (MODEL_FILENAME, CONTRACT_FILENAME, LABELS_FILENAME, SPLIT_FILENAME, CONFIG_FILENAME, SKIPPED_FILENAME,
                 REPORT_JSON_FILENAME, REPORT_MD_FILENAME, DISTRIBUTED_FILENAME, *PLOT_FILENAMES.values())
        return tuple(self.root / name for name in names)
