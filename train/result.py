"""``TrainResult``: what a finished training run produced (files, figures, timings), and its one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        out_dir: the output directory.
        model_path, contract_path, labels_path, split_path, report_path: files written there.
        val_accuracy: accuracy of the saved model on the validation split, 0–1.
        val_loss: its mean cross-entropy there.
        elapsed_s: wall time of the whole run (this process only, when resumed).
        timings: seconds per step: ``decode``, ``features`` (frozen backbone, view 0),
            ``head_phase`` (features + head epochs), ``fine_tune_phase``, ``evaluate``, ``total``.
        epochs: epochs finished per phase.
        num_train, num_validation, num_skipped: photo counts.
        labels: class names in output order.
        worker: with ``--strategy multi-worker``, set on the workers other than the chief (which
            write no model: the paths are the chief's and the metrics NaN).
    """

    out_dir: Path
    model_path: Path
    contract_path: Path
    labels_path: Path
    split_path: Path
    report_path: Path
    val_accuracy: float
    val_loss: float
    elapsed_s: float
    timings: dict[str, float]
    epochs: dict[str, int]
    num_train: int
    num_validation: int
    num_skipped: int
    labels: tuple[str, ...]
    worker: str | None = None

    def summary_line(self) -> str:
        if self.worker:
            return (f"{self.worker}: training finished in {_minutes(self.elapsed_s)}; the chief writes the model, "
                    "contract and report into its --out")
        return (
            f"validation accuracy {self.val_accuracy * 100:.2f}% on {self.num_validation} photos "
            f"({len(self.labels)} classes, {self.num_train} training photos, {self.num_skipped} skipped) "
            f"in {_minutes(self.elapsed_s)}; model, contract and report in {self.out_dir}"
        )


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
