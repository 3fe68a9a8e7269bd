"""What ``python -m train compare`` is told (:class:`CompareConfig`) and records per candidate (:class:`CandidateResult`).

Shared by :mod:`train.comparison.compare` (which runs the comparison) and :mod:`train.comparison.compare_report`
(which tabulates it), so neither imports the other's module for its types.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_runner.common.files import write_json

from .candidates import Candidate
from ..config import TrainConfig
from ..errors import ConfigError


@dataclass(frozen=True)
class CompareConfig:
    """Everything ``compare`` needs.

    Attributes:
        data: the photo folder (any layout ``python -m train`` reads).
        out: the comparison's folder.
        candidates: with their weights resolved (:func:`train.comparison.candidates.resolve_weights`).
        epochs, fine_tune_epochs: the pretrained candidates' head and fine-tuning epochs.
        scratch_epochs: the from-scratch candidates' epochs (they train in the fine-tuning phase).
        seed, batch_size, cache_dir, workers: as for ``python -m train``.
        calibration_size: int8 calibration photos (lowered to the training photos when fewer).
        threads: latency thread counts; latency_runs: timed calls per measurement; latency_rounds: interleaved repeats.
        max_latency_ms, max_size_mb: the recommendation's budget (None = no limit).
        target_accuracy: percent; the report names the fastest candidate reaching it.
        overwrite: retrain candidates whose earlier result used other options.
        verbose: 0 quiet, 1 progress bars.
    """

    data: str
    out: str
    candidates: tuple[Candidate, ...]
    epochs: int = TrainConfig.epochs
    fine_tune_epochs: int = TrainConfig.fine_tune_epochs
    scratch_epochs: int = 20
    seed: int = 0
    batch_size: int = TrainConfig.batch_size
    cache_dir: str | None = None
    workers: int = TrainConfig.workers
    calibration_size: int = 300
    threads: tuple[int, ...] = (1, 4)
    latency_runs: int = 100
    latency_rounds: int = 3
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    target_accuracy: float = 98.0
    overwrite: bool = False
    verbose: int = 1


@dataclass
class CandidateResult:
    """One candidate's measurements (``result.json``); accuracies in percent, sizes in bytes, times in seconds.

    ``latency_ms`` maps the thread count (as text) to the p50 in ms; it is measured
    after all candidates, so it is empty in ``result.json``.
    """

    name: str
    candidate: dict[str, Any]
    status: str = "done"
    error: str | None = None
    keras_accuracy: float = 0.0
    float_accuracy: float = 0.0
    int8_accuracy: float = 0.0
    int8_gate: str = ""
    int8_size_bytes: int = 0
    float32_size_bytes: int = 0
    int8_path: str = ""
    train_seconds: float = 0.0
    convert_seconds: float = 0.0
    photos: int = 0
    wrong: list[str] = field(default_factory=list)
    train_config: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_p90_ms: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        data = {k: v for k, v in asdict(self).items() if k not in ("skipped", "latency_ms", "latency_p90_ms")}
        write_json(path, data)

    @classmethod
    def load(cls, path: Path) -> CandidateResult:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: cannot read a finished candidate's result ({exc}); delete it to redo the candidate") from None
