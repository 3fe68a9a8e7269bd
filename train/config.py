"""The configuration of a training run and the summary of its result.

``TrainConfig`` is what the CLI builds from its flags and what the lead's
pipeline passes to :func:`train.run_training`; it is written as ``config.json``
into the output directory so a run can be repeated (``TrainConfig.load``) and
resumed (the resumed run must have the same identity fields).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_runner.common.files import write_json
from edge_runner.core.spec import UNKNOWN_LABEL

from .backbones import get_backbone
from .errors import ConfigError
from .sources import SOURCE_BY_CHOICES

WEIGHTS_CHOICES = ("imagenet", "none")  # or a path to a weights file
CLASS_WEIGHT_CHOICES = ("auto", "on", "off")
FINE_TUNE_MODES = ("cached", "full")
STRATEGIES = ("default", "mirrored")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024

# Options that may change between an interrupted run and its --resume (the rest
# must match, or the checkpoints would belong to a different experiment).
RESUMABLE_CHANGES = frozenset(
    {"out", "resume", "overwrite", "verbose", "workers", "cache_dir", "epochs", "fine_tune_epochs", "patience", "strategy"}
)


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        data: the photo folder, or several (each ``DIR`` or ``NAME=DIR``; see
            ``train.folders`` for the layouts it understands); a list after ``__post_init__``.
        out: the output directory (model, contract, report, checkpoints).
        backbone: a key of ``train.backbones.BACKBONES``.
        alpha: the backbone's width multiplier.
        image_size: the square input side in pixels (the contract's height and width).
        weights: ``"imagenet"`` (Keras download), ``"none"`` (from scratch) or a weights file path.
        epochs: head-phase epochs (base frozen, head trained on cached features).
        fine_tune_epochs: fine-tuning epochs (0 skips the phase).
        fine_tune_layers: how many of the backbone's top layers are trained in the
            fine-tuning phase; rounded up to a block boundary (see ``train.model``).
        batch_size: images per step.
        seed: seeds the split, shuffling, augmentation, dropout and initialisation.
        resume: continue the run in ``out`` from its last finished epoch.
        labels_from_filename: labels from names like ``cat.123.jpg`` in a flat folder.
        background: a folder (flat or nested) of photos with nothing of interest in them,
            or several, used as the background class without copying (split like the other
            classes); a list after ``__post_init__`` (empty: none).
        holdout_sources: sources (``train.sources``) never trained on, only measured;
            the report's headline is their figure.
        source_by: ``"folder"`` (each root is a source) or ``"prefix"`` (file-name prefixes
            split a root into sources).
        balance_sources: weight each training photo so that every source of a class
            counts as much as the others (on top of the class weights).
        background_label: the background class's name (default: ``other`` with
            ``background``; else a class folder named ``other`` or ``background``).
        max_false_alarm: the recommended threshold is the lowest one whose false-alarm
            rate (background photos given another label) on the validation split is at
            most this (0–1); only with a background class.
        validation_fraction: the share of each class held out when the data has no
            ``validation/`` folder.
        learning_rate: the head phase's Adam learning rate (and from-scratch training's).
        fine_tune_learning_rate: the fine-tuning phase's Adam learning rate.
        dropout: dropout rate before the classifier.
        patience: early stopping: epochs without a lower validation loss before a phase stops.
        class_weights: ``"auto"`` weights classes when the training set is imbalanced.
        imbalance_ratio: largest/smallest class count from which the data counts as imbalanced.
        fine_tune_mode: ``"cached"`` trains the top layers on cached activations of
            ``augment_views`` fixed views per photo; ``"full"`` runs every step through
            the whole network with fresh augmentation (slower, see the README).
        augment_views: views per training photo in cached mode: the photo itself,
            its mirror image, then random flips/rotations/zooms/contrast changes.
        strategy: ``"mirrored"`` builds and trains under ``tf.distribute.MirroredStrategy``.
        name: the model name written into the contract (default: from the labels).
        cache_dir: where decoded pixels and cached activations are kept (default:
            ``$EDGEKIT_CACHE_DIR`` or ``~/.cache/edgekit``).
        workers: decoding threads (0: one per CPU).
        overwrite: replace a previous run in ``out`` instead of refusing.
        deterministic: ``tf.config.experimental.enable_op_determinism()``.
        verbose: 0 silent, 1 progress bars and per-epoch lines.
    """

    data: str | list[str]
    out: str
    backbone: str = "mobilenet_v2"
    alpha: float = 1.0
    image_size: int = 224
    weights: str = "imagenet"
    epochs: int = 20
    fine_tune_epochs: int = 10
    fine_tune_layers: int = 38
    batch_size: int = 32
    seed: int = 42
    resume: bool = False
    labels_from_filename: bool = False
    background: str | list[str] | None = None
    background_label: str | None = None
    holdout_sources: list[str] = field(default_factory=list)
    source_by: str = "folder"
    balance_sources: bool = False
    max_false_alarm: float = 0.01
    validation_fraction: float = 0.2
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    dropout: float = 0.2
    patience: int = 3
    class_weights: str = "auto"
    imbalance_ratio: float = 1.5
    fine_tune_mode: str = "cached"
    augment_views: int = 2
    strategy: str = "default"
    name: str | None = None
    cache_dir: str | None = None
    workers: int = 0
    overwrite: bool = False
    deterministic: bool = True
    verbose: int = 1

    def __post_init__(self) -> None:
        # One folder or several: always lists, so config.json and --resume compare alike.
        self.data = [self.data] if isinstance(self.data, (str, os.PathLike)) else [str(d) for d in self.data]
        if self.background is None:
            self.background = []
        elif isinstance(self.background, (str, os.PathLike)):
            self.background = [self.background]
        else:
            self.background = [str(b) for b in self.background]
        self.holdout_sources = [self.holdout_sources] if isinstance(self.holdout_sources, str) else list(self.holdout_sources)

    # -- derived -------------------------------------------------------------

    @property
    def from_scratch(self) -> bool:
        return self.weights == "none"

    @property
    def weights_argument(self) -> str | None:
        """What ``keras.applications`` takes: ``"imagenet"``, a path, or ``None``."""
        return None if self.from_scratch else self.weights

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        if os.environ.get("EDGEKIT_CACHE_DIR"):
            return Path(os.environ["EDGEKIT_CACHE_DIR"]).expanduser()
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "edgekit"

    # -- checks --------------------------------------------------------------

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` naming the flag, the allowed values and what was received."""
        backbone = get_backbone(self.backbone)
        _check_int("--image-size", self.image_size, max(MIN_IMAGE_SIZE, backbone.min_size), MAX_IMAGE_SIZE)
        if not _is_number(self.alpha) or float(self.alpha) not in backbone.alphas:
            raise ConfigError(f"--alpha for {self.backbone} must be one of {list(backbone.alphas)}, received {self.alpha!r}")
        if not backbone.pretrained and self.weights != "none":
            raise ConfigError(f"--weights for --backbone {self.backbone} must be 'none' (it has no pretrained weights), received {self.weights!r}")
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError(f"--weights must be one of {list(WEIGHTS_CHOICES)} or a weights file path, received {self.weights!r}")
        if self.weights not in WEIGHTS_CHOICES:
            path = Path(self.weights).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"--weights must be one of {list(WEIGHTS_CHOICES)} or an existing weights file, "
                    f"received {self.weights!r} (no such file)"
                )
            if not path.name.endswith((".h5", ".keras")):
                raise ConfigError(f"--weights file must be a Keras .h5/.weights.h5/.keras file, received {self.weights!r}")
        _check_int("--epochs", self.epochs, 0, 10_000)
        _check_int("--fine-tune-epochs", self.fine_tune_epochs, 0, 10_000)
        _check_int("--fine-tune-layers", self.fine_tune_layers, 0, 100_000)
        if self.epochs == 0 and (self.fine_tune_epochs == 0 or self.fine_tune_layers == 0) and not self.from_scratch:
            raise ConfigError("--epochs and --fine-tune-epochs are both 0 (or --fine-tune-layers is 0): nothing would be trained")
        if self.from_scratch and self.fine_tune_epochs == 0:
            raise ConfigError("--weights none trains the whole network in the fine-tuning phase: --fine-tune-epochs must be at least 1")
        _check_int("--batch-size", self.batch_size, 1, 4096)
        _check_int("--seed", self.seed, 0, 2**31 - 1)
        _check_int("--patience", self.patience, 1, 10_000)
        _check_int("--augment-views", self.augment_views, 1, 64)
        _check_int("--workers", self.workers, 0, 256)
        _check_int("--verbose", self.verbose, 0, 2)
        _check_float("--validation-fraction", self.validation_fraction, 0.0, 1.0, open_low=True, open_high=True)
        _check_float("--learning-rate", self.learning_rate, 0.0, 10.0, open_low=True)
        _check_float("--fine-tune-learning-rate", self.fine_tune_learning_rate, 0.0, 10.0, open_low=True)
        _check_float("--dropout", self.dropout, 0.0, 1.0, open_high=True)
        _check_float("--imbalance-ratio", self.imbalance_ratio, 1.0, math.inf)
        _check_choice("--class-weights", self.class_weights, CLASS_WEIGHT_CHOICES)
        _check_choice("--fine-tune-mode", self.fine_tune_mode, FINE_TUNE_MODES)
        _check_choice("--strategy", self.strategy, STRATEGIES)
        if self.name is not None and (not str(self.name).strip() or "\n" in str(self.name)):
            raise ConfigError(f"--name must be a non-empty single-line name, received {self.name!r}")
        if self.background_label is not None:
            label = self.background_label
            if not isinstance(label, str) or not label.strip() or "\n" in label or "/" in label:
                raise ConfigError(f"--background-label must be a non-empty single-line class name, received {label!r}")
            if label == UNKNOWN_LABEL:
                raise ConfigError(
                    f"--background-label must not be {UNKNOWN_LABEL!r} (the runner's answer below the threshold), "
                    f"received {label!r}; use e.g. 'other'"
                )
        for folder in self.background:
            if not isinstance(folder, (str, os.PathLike)) or not str(folder):
                raise ConfigError(f"--background must be a folder of photos, received {folder!r}")
        for name in self.holdout_sources:
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"--holdout-source must be a source name, received {name!r}")
        _check_choice("--source-by", self.source_by, SOURCE_BY_CHOICES)
        _check_float("--max-false-alarm", self.max_false_alarm, 0.0, 1.0)
        if not self.data or not all(str(d) for d in self.data):
            raise ConfigError("--data is required")
        if not self.out:
            raise ConfigError("--out is required")
        return self

    # -- serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown options {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the configuration ({exc})") from None
        return cls.from_dict(data, str(path))

    def differences(self, other: TrainConfig) -> list[str]:
        """Fields (other than those a resume may change) whose values differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [key for key in mine if key not in RESUMABLE_CHANGES and mine[key] != theirs.get(key)]

    def to_command(self) -> str:
        """The ``python -m train`` command line that repeats this run."""
        defaults = TrainConfig(data="", out="")
        parts = ["python", "-m", "train"]
        for folder in self.data:
            parts += ["--data", str(folder)]
        parts += ["--out", self.out]
        for f in fields(self):
            if f.name in ("data", "out", "resume", "overwrite"):
                continue
            value = getattr(self, f.name)
            if value == getattr(defaults, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, list):  # repeated flags: --background, --holdout-source
                for item in value:
                    parts += [flag.removesuffix("s") if f.name == "holdout_sources" else flag, str(item)]
            elif f.name == "deterministic":
                parts.append("--no-determinism")
            elif f.name == "verbose":
                parts.append("--quiet")
            elif isinstance(value, bool):
                if value:
                    parts.append(flag)
            else:
                parts += [flag, str(value)]
        return shlex.join(parts)


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

    def summary_line(self) -> str:
        return (
            f"validation accuracy {self.val_accuracy * 100:.2f}% on {self.num_validation} photos "
            f"({len(self.labels)} classes, {self.num_train} training photos, {self.num_skipped} skipped) "
            f"in {_minutes(self.elapsed_s)}; model, contract and report in {self.out_dir}"
        )


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(flag: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{flag} must be an integer from {low} to {high}, received {value!r}")


def _check_float(flag: str, value: Any, low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> None:
    ok = _is_number(value) and math.isfinite(float(value)) if high != math.inf else _is_number(value)
    if ok:
        v = float(value)
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise ConfigError(f"{flag} must be a number in {left}{low:g}, {high:g}{right}, received {value!r}")


def _check_choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} must be one of {list(choices)}, received {value!r}")
