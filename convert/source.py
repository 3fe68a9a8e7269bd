"""A training run's directory: its layout (``train`` writes it) and its reader (``convert`` reads it).

``python -m train`` writes ``model.keras`` (raw 0–255 RGB float32 in, softmax out,
``Rescaling`` inside), ``contract.json``, ``labels.txt``, ``split.json``
(``{"data_dir", "labels", "train": [{"path", "label"}...], "validation": [...], "skipped": [...]}``),
``config.json``, ``skipped.txt``, ``report.{md,json}``, the plots and ``checkpoints/``.

The file names are defined here once, in :class:`RunLayout`. Why in ``convert`` and not in
``train``: dependencies point train → convert → edge_runner, and ``convert`` (the reader) may
not import ``train`` (the writer), so the one definition sits on the reading side where both
can import it; the runner reads only ``.tflite`` files and a contract, so ``edge_runner`` needs
none of it (it owns ``contract.json`` and ``labels.txt``, :mod:`edge_runner.core.spec`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME, ContractError, InputSpec

from .errors import ConvertError

MODEL_FILENAME = "model.keras"
SPLIT_FILENAME = "split.json"
CONFIG_FILENAME = "config.json"
SKIPPED_FILENAME = "skipped.txt"
REPORT_JSON_FILENAME = "report.json"
REPORT_MD_FILENAME = "report.md"
CHECKPOINT_DIR = "checkpoints"
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
                 REPORT_JSON_FILENAME, REPORT_MD_FILENAME, *PLOT_FILENAMES.values())
        return tuple(self.root / name for name in names)


@dataclass(frozen=True)
class TrainingOutput:
    """What ``convert`` reads from a training run.

    Attributes:
        root: the directory.
        model_path: ``root/model.keras``.
        spec: the input contract from ``root/contract.json``.
        split: the parsed ``split.json``, or None when absent.
        model_sha256: hex digest of ``model.keras`` (ties every export to its source).
    """

    root: Path
    model_path: Path
    spec: InputSpec
    split: dict[str, Any] | None
    model_sha256: str

    @property
    def split_path(self) -> Path:
        return RunLayout(self.root).split

    def split_entries(self, part: str) -> list[dict]:
        """``split.json``'s ``part`` list; ``ConvertError`` when the file or the list is missing."""
        if self.split is None:
            raise ConvertError(
                f"{self.split_path}: not found; pass --{'eval' if part == 'validation' else 'calibration'}-data DIR "
                "or convert the output directory of `python -m train`"
            )
        entries = self.split.get(part)
        if not isinstance(entries, list):
            raise ConvertError(f"{self.split_path}: `{part}` must be a list of {{\"path\", \"label\"}} entries")
        return entries


def load_training_output(root: str | Path) -> TrainingOutput:
    """Check and read a training output directory (does not load the Keras model).

    Raises ``ConvertError`` naming the file when the directory, the model or the
    contract is missing or malformed.
    """
    root = Path(root)
    layout = RunLayout(root)
    if not root.is_dir():
        raise ConvertError(f"TRAIN_OUT: {root} is not a directory (expected the output directory of `python -m train`)")
    model_path = layout.model
    if not model_path.is_file():
        raise ConvertError(f"{model_path}: no Keras model (expected {MODEL_FILENAME} written by `python -m train`)")
    contract_path = layout.contract
    if not contract_path.is_file():
        raise ConvertError(f"{contract_path}: no input contract (expected {CONTRACT_FILENAME} written by `python -m train`)")
    try:
        spec = InputSpec.load(contract_path)
    except ContractError as exc:
        raise ConvertError(str(exc)) from None
    split = None
    split_path = layout.split
    if split_path.is_file():
        try:
            split = json.loads(split_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConvertError(f"{split_path}: not readable JSON ({exc})") from None
        if not isinstance(split, dict):
            raise ConvertError(f"{split_path}: expected a JSON object, received {type(split).__name__}")
    digest = hashlib.sha256()
    with open(model_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return TrainingOutput(root, model_path, spec, split, digest.hexdigest())


def load_keras_model(source: TrainingOutput) -> Any:
    """Load ``model.keras`` and check it against the contract: input ``(None, H, W, 3)``, output ``(None, N)``."""
    from edge_runner.common.native_log import import_quietly as import_tensorflow

    import_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(source.model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise ConvertError(f"{source.model_path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from None
    spec = source.spec
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConvertError(f"{source.model_path}: expected 1 input and 1 output, found {len(model.inputs)} and {len(model.outputs)}")
    in_shape = tuple(model.inputs[0].shape[1:])
    out_shape = tuple(model.outputs[0].shape[1:])
    if in_shape != (spec.height, spec.width, 3):
        raise ConvertError(
            f"{source.model_path}: input shape {in_shape} contradicts the contract ({spec.height}, {spec.width}, 3)"
        )
    if out_shape != (spec.num_classes,):
        raise ConvertError(f"{source.model_path}: output shape {out_shape} contradicts the contract's {spec.num_classes} labels")
    return model
