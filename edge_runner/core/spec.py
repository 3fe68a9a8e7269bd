"""The input contract: what a model expects and what its outputs mean.

One small frozen dataclass shared by the whole kit. ``train/`` writes it beside
the Keras model, ``convert/`` embeds it inside every ``.tflite`` (and writes it
beside it), and ``edge_runner/`` reads it and refuses a model whose contract is
missing or contradicts the interpreter.

This module imports nothing beyond the standard library (and
:mod:`edge_runner.common.files`, which writes it atomically): it must load on a
Raspberry Pi that has no TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..common.console import EXIT_USAGE
from ..common.files import write_atomic
from ..common.run_layout import CONTRACT_FILENAME, LABELS_FILENAME  # noqa: F401 (LABELS_FILENAME re-exported)

CONTRACT_FORMAT = "edgekit.input-contract"
# Version 2 added ``background_label`` and ``threshold``; version 1 contracts
# (without them) still load and mean "no background class, no threshold".
# Version 3 added ``rescue``; older contracts mean "no rescue in the graph".
# Version 4 added ``distance_veto``; older contracts mean "no veto in the graph".
CONTRACT_VERSION = 4
# CONTRACT_FILENAME (from the run layout) is also the contract's name inside a .tflite's packed
# associated files; the suffix of the JSON written beside a model: ``model.tflite`` -> ``model.contract.json``.
CONTRACT_SUFFIX = ".contract.json"

COLOR_ORDERS = ("RGB",)
RESIZE_METHODS = ("bilinear", "bicubic", "nearest", "lanczos")
CROPS = ("none", "center")
# The label a prediction gets when its best score is below the threshold.
UNKNOWN_LABEL = "unknown"


class ContractError(ValueError):
    """A contract is missing, malformed, or disagrees with its model."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class InputSpec:
    """What a classifier takes and returns.

    Attributes:
        labels: class names, in the order of the model's output vector.
        height, width: input tensor size in pixels (NHWC, batch 1).
        color_order: channel order of the input tensor; only ``"RGB"``.
        resize: Pillow resampling filter used to bring a photo to ``height x width``.
        crop: ``"none"`` squashes the whole photo to the input size (what
            training does); ``"center"`` takes the largest centred square first.
        value_range: pixel values the graph takes, ``(0, 255)``: the model's
            own ``Rescaling`` layer normalises, so callers feed raw pixels.
        name: a short model name (shown by the runner and in metadata).
        backbone: the network it was built on, e.g. ``"mobilenet_v2_1.0_224"``.
        background_label: the label (one of ``labels``) that means "nothing of
            interest here", or ``None`` when every class is of interest. (v2)
        threshold: the recommended score (0-1) below which the runner answers
            ``unknown``, chosen by the training run; ``None``: no threshold. (v2)
        rescue: ``{"threshold": T, "limit": L, "teacher": NAME}`` when the graph holds a rescue
            (train/model/rescue.py): a photo the model does not call a class of interest at ``T``
            gets a score just above ``T`` when a head fitted to the teacher NAME gives it ``L`` or
            more. A threshold above ``T`` set at run time loses it. ``None``: no rescue. (v3)
        distance_veto: ``{"keep": KEEP, "directions": R, "limit": D}`` when the graph holds a distance
            veto (train/model/veto.py): a photo whose best label is of interest is answered with the
            background label when its pooled features lie farther than ``D`` from the training photos
            of interest (in ``R`` directions); ``KEEP`` of the validation photos of interest lie within.
            ``None``: no veto. (v4)
        version: contract format version; a newer one is refused.
    """

    labels: tuple[str, ...]
    height: int = 224
    width: int = 224
    color_order: str = "RGB"
    resize: str = "bilinear"
    crop: str = "none"
    value_range: tuple[float, float] = (0.0, 255.0)
    name: str = "edgekit-classifier"
    backbone: str = ""
    background_label: str | None = None
    threshold: float | None = None
    rescue: dict[str, Any] | None = None
    distance_veto: dict[str, Any] | None = None
    version: int = CONTRACT_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Normalise sequences so a contract read from JSON equals the one written.
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        if isinstance(self.threshold, int) and not isinstance(self.threshold, bool):
            object.__setattr__(self, "threshold", float(self.threshold))
        self.validate()

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def interest_labels(self) -> tuple[str, ...]:
        """The labels that mean something was seen: every label but the background one."""
        return tuple(label for label in self.labels if label != self.background_label)

    def is_detection(self, label: str) -> bool:
        """Whether a predicted ``label`` means something of interest was seen.

        ``False`` for the background label and for ``UNKNOWN_LABEL`` (below the threshold).
        """
        return label in self.labels and label != self.background_label

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, the order Pillow's ``resize`` takes."""
        return (self.width, self.height)

    def validate(self) -> None:
        """Raise ``ContractError`` naming the field, the allowed values and what was received."""
        if len(self.labels) < 2:
            raise ContractError(f"contract: `labels` needs at least 2 classes, received {list(self.labels)!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ContractError(f"contract: `labels` must be unique, received {list(self.labels)!r}")
        if any(not label.strip() or "\n" in label for label in self.labels):
            raise ContractError(f"contract: `labels` must be non-empty single-line names, received {list(self.labels)!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 4096:
                raise ContractError(f"contract: `{name}` must be an integer from 8 to 4096, received {value!r}")
        if self.color_order not in COLOR_ORDERS:
            raise ContractError(f"contract: `color_order` must be one of {COLOR_ORDERS}, received {self.color_order!r}")
        if self.resize not in RESIZE_METHODS:
            raise ContractError(f"contract: `resize` must be one of {RESIZE_METHODS}, received {self.resize!r}")
        if self.crop not in CROPS:
            raise ContractError(f"contract: `crop` must be one of {CROPS}, received {self.crop!r}")
        if len(self.value_range) != 2 or self.value_range[0] >= self.value_range[1]:
            raise ContractError(f"contract: `value_range` must be (low, high) with low < high, received {self.value_range!r}")
        if self.value_range != (0.0, 255.0):
            # The kit keeps normalisation inside the graph; a different range would
            # mean the runner has to normalise, which it deliberately never does.
            raise ContractError(f"contract: `value_range` must be (0.0, 255.0) (normalisation lives in the graph), received {self.value_range!r}")
        if self.background_label is not None and self.background_label not in self.labels:
            raise ContractError(
                f"contract: `background_label` must be one of the labels {list(self.labels)} or null, "
                f"received {self.background_label!r}"
            )
        if UNKNOWN_LABEL in self.labels:
            raise ContractError(
                f"contract: `labels` must not contain {UNKNOWN_LABEL!r} (the runner's answer below the threshold), "
                f"received {list(self.labels)!r}"
            )
        if self.threshold is not None and (
            not isinstance(self.threshold, float) or not 0.0 <= self.threshold <= 1.0
        ):
            raise ContractError(f"contract: `threshold` must be a number from 0 to 1 or null, received {self.threshold!r}")
        if self.rescue is not None:
            self._check_rescue()
        if self.distance_veto is not None:
            self._check_distance_veto()
        if not isinstance(self.version, int) or self.version < 1:
            raise ContractError(f"contract: `version` must be a positive integer, received {self.version!r}")
        if self.version > CONTRACT_VERSION:
            raise ContractError(
                f"contract: `version` {self.version} is newer than this edgekit understands ({CONTRACT_VERSION}); upgrade edgekit"
            )

    def _check_rescue(self) -> None:
        rescue = self.rescue
        allowed = {"threshold", "limit", "teacher"}
        if not isinstance(rescue, dict) or set(rescue) != allowed:
            raise ContractError(f"contract: `rescue` must be null or an object with {sorted(allowed)}, received {rescue!r}")
        for key in ("threshold", "limit"):
            value = rescue[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ContractError(f"contract: `rescue.{key}` must be a number above 0 and at most 1, received {value!r}")
        if self.background_label is None or self.threshold is None:
            raise ContractError("contract: `rescue` needs `background_label` and `threshold`, received "
                                f"{self.background_label!r} and {self.threshold!r}")
        if not isinstance(rescue["teacher"], str) or not rescue["teacher"].strip():
            raise ContractError(f"contract: `rescue.teacher` must be a name, received {rescue['teacher']!r}")

    def _check_distance_veto(self) -> None:
        veto = self.distance_veto
        allowed = {"keep", "directions", "limit"}
        if not isinstance(veto, dict) or set(veto) != allowed:
            raise ContractError(f"contract: `distance_veto` must be null or an object with {sorted(allowed)}, "
                                f"received {veto!r}")
        keep, directions, limit = veto["keep"], veto["directions"], veto["limit"]
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.5 <= keep < 1.0:
            raise ContractError(f"contract: `distance_veto.keep` must be a number from 0.5 to below 1, "
                                f"received {keep!r}")
        if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
            raise ContractError(f"contract: `distance_veto.directions` must be a positive integer, "
                                f"received {directions!r}")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise ContractError(f"contract: `distance_veto.limit` must be a number above 0, received {limit!r}")
        if self.background_label is None:
            raise ContractError("contract: `distance_veto` needs `background_label` (the answer of a vetoed photo), "
                                "received null")

    # -- serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["value_range"] = list(self.value_range)
        return {"format": CONTRACT_FORMAT, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "contract") -> InputSpec:
        if not isinstance(data, dict):
            raise ContractError(f"{source}: expected a JSON object, received {type(data).__name__}")
        if data.get("format", CONTRACT_FORMAT) != CONTRACT_FORMAT:
            raise ContractError(f"{source}: `format` must be {CONTRACT_FORMAT!r}, received {data.get('format')!r}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ContractError(f"{source}: unknown fields {unknown}; allowed: {sorted(known)}")
        if "labels" not in data:
            raise ContractError(f"{source}: the required field `labels` is missing")
        kwargs = {k: v for k, v in data.items() if k != "format"}
        try:
            return cls(**kwargs)
        except ContractError as exc:
            raise ContractError(f"{source}: {str(exc).removeprefix('contract: ')}") from None
        except TypeError as exc:
            raise ContractError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "contract") -> InputSpec:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ContractError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InputSpec:
        path = Path(path)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise ContractError(f"{path}: contract file not found") from None
        except OSError as exc:
            raise ContractError(f"{path}: cannot read contract ({exc.strerror})") from None
        return cls.from_json(text, str(path))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the contract as JSON atomically; returns the path."""
        return write_atomic(path, self.to_json().encode("utf-8"))

    def labels_text(self) -> str:
        """``labels.txt`` content: one label per line, in output order."""
        return "".join(f"{label}\n" for label in self.labels)

    def save_labels(self, path: str | os.PathLike[str]) -> Path:
        return write_atomic(path, self.labels_text().encode("utf-8"))


def contract_path_for(model_path: str | os.PathLike[str]) -> Path:
    """The sidecar contract of a model: ``dir/name.tflite`` -> ``dir/name.contract.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CONTRACT_SUFFIX)

