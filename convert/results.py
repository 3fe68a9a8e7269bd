"""What ``convert export`` returns and reports: its options, one result per variant, and the file names.

Its own module so the report writer, the fix loop and the main job read the results
without importing the export machinery (no import cycle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runner.core.spec import InputSpec

from .gate.accuracy import Comparison, DraftStudy, Scores, Thresholds, Verdict
from .tflite.metadata import ModelInfo
from .quantize import DEFAULT_VARIANTS, GraphCheck
from .gate.significance import ClassChange, ConfidentAgreement, PairedTest

REPORT_MD = "report.md"
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class ExportOptions:
    """Everything ``export`` needs besides the directories (the CLI's flags).

    Attributes:
        variants: names from ``quantize.VARIANTS``.
        calibration_data: a folder of photos (any layout) for int8 calibration; None → split.json's train photos.
        calibration_size: how many photos to sample (seeded) for calibration.
        eval_data: a one-folder-per-class directory; None → split.json's validation photos.
        thresholds: the gate.
        seed: the calibration sample's seed.
        info: metadata text (description, version, author, licence).
        diagnose: always diagnose int8 (otherwise only when it is rejected or close to the limit).
        fix: ``"auto"`` try fixes when int8 is rejected, ``"always"`` also when it passes, ``"never"``.
        diagnose_photos: calibration photos the per-layer diagnosis runs on.
    """

    variants: tuple[str, ...] = DEFAULT_VARIANTS
    calibration_data: Path | None = None
    calibration_size: int = 300
    eval_data: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    seed: int = 0
    info: ModelInfo = field(default_factory=ModelInfo)
    diagnose: bool = False
    fix: str = "auto"
    diagnose_photos: int = 50


@dataclass
class VariantResult:
    """One variant's outcome.

    Attributes:
        variant: its name.
        status: ``"accepted"``, ``"rejected"`` (written, but fails the gate) or ``"failed"`` (not written).
        path: the written ``.tflite`` (None when failed).
        size_bytes: file size, metadata included.
        graph: I/O types and op census of the converted model.
        scores, comparison, verdict: the gate's measurements (None when failed).
        error: why it failed.
        reused: True when an identical earlier conversion was kept.
        seconds: conversion time.
        disagreements: photos whose top-1 differs from the Keras model's.
        paired: the paired right/wrong table, McNemar p-value and interval of the change.
        confident: agreement on the photos where the float model is sure.
        class_changes: per-class accuracy change with counts.
        summary: one sentence for someone about to ship it.
    """

    variant: str
    status: str
    path: str | None = None
    size_bytes: int = 0
    graph: GraphCheck | None = None
    scores: Scores | None = None
    comparison: Comparison | None = None
    verdict: Verdict | None = None
    error: str | None = None
    reused: bool = False
    seconds: float = 0.0
    disagreements: tuple[str, ...] = ()
    paired: PairedTest | None = None
    confident: ConfidentAgreement | None = None
    class_changes: tuple[ClassChange, ...] = ()
    summary: str = ""


@dataclass
class ExportResult:
    """Everything the report shows.

    Attributes:
        source: the training output directory; model_sha256 ties the files to it.
        out_dir: where the files went.
        spec: the training contract.
        options: what was asked.
        eval_source: where the evaluation photos came from; eval_skipped: unreadable ones.
        reference: the float Keras model's scores on them (draft decoding, as the runner).
        draft: the draft-decoding study.
        calibration: the calibration sample's summary (None when no calibrated variant).
        variants: per-variant results in the order asked.
        environment: library versions.
        remedy: int8's diagnosis, the fixes tried and the file chosen (None when not needed).
    """

    source: str
    model_sha256: str
    out_dir: str
    spec: InputSpec
    options: ExportOptions
    eval_source: str
    eval_skipped: tuple[str, ...]
    reference: Scores
    draft: DraftStudy
    calibration: dict[str, Any] | None
    variants: list[VariantResult]
    environment: dict[str, str]
    remedy: Any = None

    @property
    def all_accepted(self) -> bool:
        return all(v.status == "accepted" for v in self.variants)


def file_stem(spec: InputSpec) -> str:
    """``contract.name`` made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name).strip("._") or "model"


def model_path_for(out_dir: Path, spec: InputSpec, variant: str) -> Path:
    return out_dir / f"{file_stem(spec)}_{variant}.tflite"

