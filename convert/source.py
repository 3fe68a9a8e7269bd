"""Reading a training run's folder for ``convert``: the model, its contract, labels and split.

Where each file lives is :class:`edge_runner.common.run_layout.RunLayout` (``train`` writes
through the same class).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runner.common.run_layout import CONTRACT_FILENAME, MODEL_FILENAME, RunLayout
from edge_runner.core.spec import ContractError, InputSpec

from .errors import ConvertError

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
