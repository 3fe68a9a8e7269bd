"""The configuration of a training run and the summary of its result.

``TrainConfig`` is what ``python -m train`` builds from its flags and what the main job (``edgekit.pipeline``) and
``train compare`` pass to :func:`train.run_training`. Its fields are declared in four groups, the way trainers usually
split them: **data** (where the photos come from and how they are split and weighted), **model** (what is built and
what its contract says), **fitting** (the hyper-parameters of the two phases) and **run** (how this run behaves:
folders, resume, threads, strategy, logging). Each field says once, in its :func:`train.options.option`, its group,
flag, help, allowed values and whether ``--resume`` may change it; the command line, the plain checks, the command
that repeats a run and the resumable list are all read from there. It is written as ``config.json`` into the output
directory so a run can be repeated (``TrainConfig.load``) and resumed (the resumed run must match on every
non-resumable field).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from edge_runner.common.files import cache_root, write_json
from edge_runner.core.spec import UNKNOWN_LABEL

from .backbones import BACKBONES, get_backbone
from .camera import KINDS as DEGRADE_KINDS, Degradation
from .errors import ConfigError
from .options import check_fields, check_int, command_words, is_number, option, resumable_names
from .result import TrainResult  # noqa: F401 (re-exported: train.config has always named it)

WEIGHTS_CHOICES = ("imagenet", "none")  # or a path to a weights file
TEACHER_CHOICES = ("none", "imagenet")  # or a path to a .tflite classifier (train.model.teacher)
CLASS_WEIGHT_CHOICES = ("auto", "on", "off")
FINE_TUNE_MODES = ("cached", "full")
STRATEGIES = ("default", "mirrored", "multi-worker")
SOURCE_BY_CHOICES = ("folder", "prefix")  # what makes a source: each root folder, or file-name prefixes (train.data.sources)
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024
# One seed default for python -m train, train compare and the main job, so each alone repeats `make all`.
DEFAULT_SEED = 0
SEED_RANGE = (0, 2**31 - 1)


def _backbone_names() -> tuple[str, ...]:
    return tuple(sorted(BACKBONES))


@dataclass
class TrainConfig:
    """Everything that defines a training run; each field's ``help`` (``python -m train --help``) says what it is.

    ``data`` and ``background`` take one folder or several (each ``DIR`` or ``NAME=DIR``) and are
    lists after ``__post_init__``, so ``config.json`` and ``--resume`` compare alike.
    """

    # -- data: where the photos come from, how they are split and weighted ------------------
    data: str | list[str] = option(
        group="data", required=True, repeat=True, metavar="[NAME=]DIR",
        help="photos: DIR/<class>/*.jpg, or DIR/train/<class>/ + DIR/validation/<class>/, or a flat folder with "
        "--labels-from-filename; repeat for several sources (each is reported on its own; NAME names it, default: "
        "the folder's name)")
    out: str = option(group="run", required=True, metavar="DIR", resumable=True,
                      help="output directory (model, contract, report, checkpoints)")
    labels_from_filename: bool = option(False, group="data",
                                        help="take labels from file names such as cat.123.jpg (flat folder)")
    background: str | list[str] | None = option(
        None, group="data", repeat=True, metavar="[NAME=]DIR",
        help="a folder (flat or nested) of photos with nothing of interest in them: trained as the background class "
        "(not copied), split like the other classes; repeat for several sources")
    background_label: str | None = option(
        None, group="data", metavar="NAME",
        help="the class that means 'nothing here' (default: 'other' with --background, else a class folder named "
        "'other' or 'background' if there is one)")
    holdout_sources: list[str] = option(
        default_factory=list, group="data", flag="--holdout-source", repeat=True, metavar="NAME",
        help="never train on this source (a folder's name, or NAME:PREFIX with --source-by prefix); its photos are "
        "only measured and the report's headline is their figure; repeatable")
    source_by: str = option("folder", group="data", choices=SOURCE_BY_CHOICES,
                            help="folder: each --data/--background folder is a source (default); prefix: file-name "
                            "prefixes such as oxford_… split a folder into sources")
    balance_sources: bool = option(False, group="data", help="weight training photos so that every source of a class "
                                   "counts as much as the others")
    source_weights: list[str] = option(
        default_factory=list, group="data", flag="--source-weight", repeat=True, metavar="NAME=W",
        help="multiply the loss weight of source NAME's training photos by W (default: a review export weighs as one "
        "of its class's sources, see train/README.md); repeatable")
    validation_fraction: float = option(0.2, group="data", floats=(0.0, 1.0, True, True), metavar="F",
                                        help="share of each class held out when there is no validation/ folder "
                                        "(default %(default)s)")
    class_weights: str = option("auto", group="data", choices=CLASS_WEIGHT_CHOICES,
                                help="weight classes by inverse frequency: auto = when imbalanced (default)")
    imbalance_ratio: float = option(1.5, group="data", floats=(1.0, math.inf, False, False), metavar="R",
                                    help="largest/smallest class count from which the training set counts as "
                                    "imbalanced (default %(default)s)")

    # -- model: what is built, and what its contract says ----------------------------------
    backbone: str = option("mobilenet_v2", group="model", choices=_backbone_names,
                           help="the pretrained network under the head (default %(default)s)")
    alpha: float = option(1.0, group="model", flag="--width", aliases=("--alpha",), metavar="W",
                          help="the backbone's width multiplier, Keras' alpha (default %(default)s; --alpha is the "
                          "deprecated spelling, removed in the next release)")
    image_size: int = option(224, group="model", metavar="PX", help="square input side in pixels (default %(default)s)")
    weights: str = option("imagenet", group="model", metavar="imagenet|none|PATH",
                          help="imagenet (Keras download, default), none (from scratch) or a local weights file")
    dropout: float = option(0.2, group="model", floats=(0.0, 1.0, False, True), metavar="RATE",
                            help="dropout before the classifier (default %(default)s)")
    name: str | None = option(None, group="model", help="model name in the contract (default: from the labels)")
    max_false_alarm: float = option(
        0.01, group="model", floats=(0.0, 1.0, False, False), metavar="RATE",
        help="the contract's recommended threshold: the lowest whose false-alarm rate on the validation background "
        "photos is at most RATE (default %(default)s)")
    max_recall_loss: float = option(
        0.01, group="model", floats=(0.0, 1.0, False, False), metavar="SHARE",
        help="the recommended threshold gives up at most this share of the real classes' recall (against 0.5) to "
        "meet --max-false-alarm; else the threshold with the fewest false alarms within it (default %(default)s)")
    teacher: str = option(
        "none", group="model", metavar="none|imagenet|PATH",
        help="after fitting, fit a head to what this image classifier sees in the training photos, for --rescue-limit "
        "and --prior-weight (train/README.md, 'A rescue head of its own'): imagenet = the kit's ImageNet classifier, "
        "downloaded once; a .tflite classifier needs --teacher-as (default %(default)s)")
    teacher_as: list[str] = option(
        default_factory=list, group="model", repeat=True, metavar="LABEL=RANGES",
        help="the teacher's outputs that mean LABEL, as indices and ranges (dogs=152-269) or the ImageNet "
        "classifier's named ranges (dogs=dogs, the default for a label named as one); repeatable; the background "
        "label takes the rest")
    rescue_limit: float = option(
        0.0, group="model", floats=(0.0, 1.0, False, True), metavar="L",
        help="with --teacher: a photo the model does not call a class of interest at its threshold becomes the "
        "teacher head's class when that head gives it L or more, inside the model's one output; 0 for none (default "
        "%(default)s; the main job uses 0.5)")
    prior_weight: float = option(
        0.0, group="model", floats=(0.0, 10.0, False, False), metavar="BETA",
        help="with --teacher: fold the teacher's head into the classifier at this weight (a product of experts): "
        "fewer unseen people and animals called a class, fewer unseen pets found; 0 for none (default %(default)s)")
    distance_veto: float = option(
        0.0, group="model", floats=(0.0, 1.0, False, True), metavar="KEEP",
        help="a strict mode, inside the model's one output: a photo it calls a class of interest becomes the "
        "background when its features lie farther from the training photos of interest than all but 1 - KEEP of the "
        "validation ones (0.99: fewer unseen people and animals called a class, about 1 in 100 of the pets missed; "
        "train/README.md, 'A strict mode'); needs a background class; convert makes no int8 file of it, ship "
        "float16; 0 for none (default %(default)s)")

    # -- fitting: the hyper-parameters of the head phase and the fine-tuning phase ----------
    epochs: int = option(20, group="fitting", ints=(0, 10_000), metavar="N", resumable=True,
                         help="head epochs (default %(default)s)")
    fine_tune_epochs: int = option(10, group="fitting", ints=(0, 10_000), metavar="N", resumable=True,
                                   help="fine-tuning epochs, 0 to skip (default %(default)s)")
    fine_tune_layers: int = option(38, group="fitting", ints=(0, 100_000), metavar="N",
                                   help="backbone layers trained in phase 2, rounded up to a block boundary "
                                   "(default %(default)s)")
    fine_tune_mode: str = option("cached", group="fitting", choices=FINE_TUNE_MODES,
                                 help="cached: train the top layers on cached activations of --augment-views views "
                                 "per photo (fast); full: every step through the whole network with fresh "
                                 "augmentation (slow)")
    augment_views: int = option(2, group="fitting", ints=(1, 64), metavar="N",
                                help="views per training photo in cached mode: itself, its mirror image, then random "
                                "augmentations (default %(default)s)")
    degrade: float = option(0.0, group="fitting", floats=(0.0, 1.0, False, False), metavar="P",
                            help="the share of the training photos given one camera degradation (blur, dark and "
                            "noisy, strong JPEG, low resolution, greyscale) in each random view (cached mode: needs "
                            "--augment-views 3 or more) or each batch (full mode); e.g. 0.7 with --augment-views 4 for a "
                            "camera whose frames are soft, dark or compressed; not the main job's (train/README.md, "
                            "'Camera degradations') (default %(default)s)")
    degrade_kinds: list[str] = option(
        default_factory=lambda: list(DEGRADE_KINDS), group="fitting", flag="--degrade-kind", repeat=True,
        choices=DEGRADE_KINDS, help="with --degrade, only this kind; repeatable (default: all; small alone moved unseen "
        "low-resolution face close-ups most, train/README.md 'Which kind does it')")
    batch_size: int = option(32, group="fitting", ints=(1, 4096), metavar="N", help="images per step (default %(default)s)")
    learning_rate: float = option(1e-3, group="fitting", floats=(0.0, 10.0, True, False), metavar="LR",
                                  help="head phase (and from-scratch) Adam learning rate (default %(default)s)")
    fine_tune_learning_rate: float = option(1e-5, group="fitting", floats=(0.0, 10.0, True, False), metavar="LR",
                                            help="fine-tuning Adam learning rate (default %(default)s)")
    patience: int = option(3, group="fitting", ints=(1, 10_000), metavar="N", resumable=True,
                           help="early stopping: epochs without a lower validation loss (default %(default)s)")
    seed: int = option(DEFAULT_SEED, group="fitting", ints=SEED_RANGE, metavar="N",
                       help="seeds the split, shuffling, augmentation, dropout and initialisation (default %(default)s, "
                       "as the main job's)")

    # -- run: how this run behaves ---------------------------------------------------------
    init_from: str | None = option(None, group="run", metavar="RUN", help="retrain from RUN: start from its "
                                   "model.keras; every setting not given is RUN's (--data, --background, "
                                   "--holdout-source add to RUN's); a short fine-tuning (train/README.md)")
    resume: bool = option(False, group="run", resumable=True, in_command=False,
                          help="continue the run in --out from its last finished epoch")
    overwrite: bool = option(False, group="run", resumable=True, in_command=False,
                             help="replace a previous run in --out")
    cache_dir: str | None = option(None, group="run", metavar="DIR", resumable=True,
                                   help="where decoded photos and backbone activations are cached "
                                   "(default $EDGEKIT_CACHE_DIR or ~/.cache/edgekit)")
    workers: int = option(0, group="run", ints=(0, 256), metavar="N", resumable=True,
                          help="decoding threads; 0 (the default) means one per CPU")
    strategy: str = option("default", group="run", choices=STRATEGIES, resumable=True,
                           help="mirrored: tf.distribute.MirroredStrategy over all GPUs (same code path on a CPU); "
                           "multi-worker: several processes or hosts, each named by its TF_CONFIG (train/README.md)")
    worker_timeout: float = option(300.0, group="run", resumable=True, floats=(1.0, 86400.0, False, False),
                                   metavar="S",
                                   help="multi-worker: seconds to wait for every worker to join, and to notice a lost "
                                   "one, before stopping with an error (default %(default)s)")
    deterministic: bool = option(True, group="run", flag="--no-determinism",
                                 help="skip tf.config.experimental.enable_op_determinism()")
    verbose: int = option(1, group="run", flag="--quiet", const=0, ints=(0, 2), resumable=True,
                          help="no progress bars or per-epoch lines")

    def __post_init__(self) -> None:
        self.data = [self.data] if isinstance(self.data, (str, os.PathLike)) else [str(d) for d in self.data]
        if self.background is None:
            self.background = []
        elif isinstance(self.background, (str, os.PathLike)):
            self.background = [self.background]
        else:
            self.background = [str(b) for b in self.background]
        self.holdout_sources = [self.holdout_sources] if isinstance(self.holdout_sources, str) else list(self.holdout_sources)
        self.degrade_kinds = [self.degrade_kinds] if isinstance(self.degrade_kinds, str) else list(self.degrade_kinds)

    # -- derived -------------------------------------------------------------

    @property
    def from_scratch(self) -> bool:
        return self.weights == "none"

    @property
    def degradation(self) -> Degradation:  # --degrade, --degrade-kind (raises ConfigError on a kind without a share)
        return Degradation(self.degrade, tuple(self.degrade_kinds))

    @property
    def weights_argument(self) -> str | None:
        """What ``keras.applications`` takes: ``"imagenet"``, a path, or ``None``."""
        return None if self.from_scratch else self.weights

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return cache_root()

    # -- checks --------------------------------------------------------------

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` naming the flag, the allowed values and what was received.

        The plain ranges and choices come from the fields' options; what depends on several
        fields (the backbone's widths and smallest input, the weights, nothing to train) is here.
        """
        backbone = get_backbone(self.backbone)
        check_int("--image-size", self.image_size, max(MIN_IMAGE_SIZE, backbone.min_size), MAX_IMAGE_SIZE)
        if not is_number(self.alpha) or float(self.alpha) not in backbone.alphas:
            raise ConfigError(f"--width for {self.backbone} must be one of {list(backbone.alphas)}, received {self.alpha!r}")
        if not self.init_from:  # with --init-from, RUN's model.keras gives every weight
            self._check_weights(backbone.pretrained)
        check_fields(self)
        if self.epochs == 0 and (self.fine_tune_epochs == 0 or self.fine_tune_layers == 0) and not self.from_scratch:
            raise ConfigError("--epochs and --fine-tune-epochs are both 0 (or --fine-tune-layers is 0): nothing would be trained")
        if self.from_scratch and self.fine_tune_epochs == 0:
            raise ConfigError("--weights none trains the whole network in the fine-tuning phase: --fine-tune-epochs must be at least 1")
        self._check_names()
        if self.teacher not in TEACHER_CHOICES and not Path(str(self.teacher)).expanduser().is_file():
            raise ConfigError(f"--teacher must be one of {list(TEACHER_CHOICES)} or a .tflite classifier, received "
                              f"{self.teacher!r} (no such file)")
        uses = [flag for flag, value in (("--rescue-limit", self.rescue_limit), ("--prior-weight", self.prior_weight)) if value]
        if self.teacher == "none" and uses:
            raise ConfigError(f"{uses[0]} needs --teacher imagenet or a .tflite classifier, received --teacher none")
        if self.teacher != "none" and not uses:
            raise ConfigError(f"--teacher {self.teacher}: nothing to teach; give --rescue-limit L (0.5 in the main job) "
                              "and/or --prior-weight BETA")
        if self.distance_veto and not 0.5 <= self.distance_veto < 1.0:
            raise ConfigError(f"--distance-veto must be 0 (none) or a share from 0.5 to below 1 (0.99 keeps 99 in "
                              f"100 of the validation photos of interest), received {self.distance_veto!r}")
        if self.degradation and self.fine_tune_mode == "cached" and not self.from_scratch and self.augment_views < 3:
            raise ConfigError(f"--degrade {self.degrade:g} acts on random views: --augment-views must be 3 or more in "
                              f"--fine-tune-mode cached, received --augment-views {self.augment_views}")
        if not self.data or not all(str(d) for d in self.data):
            raise ConfigError("--data is required")
        if not self.out:
            raise ConfigError("--out is required")
        return self

    def _check_weights(self, pretrained: bool) -> None:
        if not pretrained and self.weights != "none":
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

    def _check_names(self) -> None:
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
        """The ``python -m train`` command line that repeats this run (list fields as repeated flags)."""
        return shlex.join(["python", "-m", "train", *command_words(self, TrainConfig(data="", out=""))])


# Options that may change between an interrupted run and its --resume (the rest must match,
# or the checkpoints would belong to a different experiment): the fields marked resumable.
RESUMABLE_CHANGES = resumable_names(TrainConfig)
