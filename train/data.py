"""Photo folders: find the labelled photos, then split them into training and validation.

Layouts understood (``DIR`` is ``--data``):

* ``DIR/train/<class>/…`` and ``DIR/validation/<class>/…`` (also ``training``,
  ``val``, ``valid``): the split is given.
* ``DIR/<class>/…`` (e.g. Microsoft's PetImages ``Cat/`` and ``Dog/``): each class
  is split by a seeded, stratified ``validation_fraction``.
* ``--labels-from-filename``: a flat folder of names like ``cat.123.jpg`` or
  ``american_bulldog_10.jpg`` (the label is the name before its trailing number),
  either ``DIR`` itself or ``DIR/train`` + ``DIR/validation``.

Reading the photos is not done here: ``train.pixels`` decodes every candidate
once, and the ones it cannot read are skipped (and listed) before the split.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runner.image import is_image_path
from edge_runner.spec import UNKNOWN_LABEL, write_atomic

from .errors import DataError

TRAIN_DIR_NAMES = ("train", "training")
VALIDATION_DIR_NAMES = ("validation", "val", "valid")
# "cat.123", "american_bulldog_10", "dog (3)": the label is what precedes the number.
FILENAME_LABEL = re.compile(r"(?P<label>.+?)[\s._-]*\(?\d+\)?")

LAYOUT_SPLIT = "train/validation folders"
LAYOUT_CLASSES = "class folders"
LAYOUT_FILENAMES = "labels from file names"
# A class folder with one of these names is the background class when
# --background-label is not given ("nothing of interest here").
BACKGROUND_FOLDER_NAMES = ("other", "background")
# The background class's name when --background DIR is given without --background-label.
DEFAULT_BACKGROUND_LABEL = "other"


@dataclass(frozen=True)
class Sample:
    """A photo and its label. ``path`` is absolute."""

    path: str
    label: str


@dataclass(frozen=True)
class Skipped:
    """A file left out of training, and why (the reason names the file)."""

    path: str
    reason: str


@dataclass
class Candidates:
    """The photos found in a data directory, before any has been decoded.

    ``validation`` is ``None`` when the layout has no validation folder (the
    split is then made by :func:`split_samples`). ``background`` holds the
    photos of a ``--background DIR`` folder (labelled ``background_label``),
    which are always split by the seeded, stratified fraction.
    """

    data_dir: Path
    layout: str
    labels: tuple[str, ...]
    train: list[Sample]
    validation: list[Sample] | None
    skipped: list[Skipped] = field(default_factory=list)
    background_label: str | None = None
    background_dir: Path | None = None
    background: list[Sample] = field(default_factory=list)

    @property
    def all_samples(self) -> list[Sample]:
        return self.train + (self.validation or []) + self.background


@dataclass
class DataSplit:
    """The readable photos, split; written as ``split.json``.

    Attributes:
        data_dir: the ``--data`` folder (absolute).
        layout: one of the ``LAYOUT_*`` names.
        labels: class names in the model's output order (sorted).
        train, validation: readable samples, sorted by label then path.
        skipped: files left out (unreadable, not images, no label), with reasons.
        background_label: the class meaning "nothing of interest", or ``None``.
        background_dir: the ``--background`` folder its photos came from, or ``None``
            (a class folder of the data, or no background class).
    """

    data_dir: Path
    layout: str
    labels: tuple[str, ...]
    train: list[Sample]
    validation: list[Sample]
    skipped: list[Skipped]
    background_label: str | None = None
    background_dir: Path | None = None

    def counts(self, which: str) -> dict[str, int]:
        """Photos per class in ``"train"`` or ``"validation"``, in label order."""
        counter = Counter(sample.label for sample in getattr(self, which))
        return {label: counter.get(label, 0) for label in self.labels}

    def label_indices(self, which: str) -> np.ndarray:
        """``int32`` class indices ``(N,)`` of ``"train"`` or ``"validation"``."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[sample.label] for sample in getattr(self, which)], dtype=np.int32)

    def imbalance(self) -> float:
        """Largest over smallest training class count (1.0 = balanced)."""
        counts = [n for n in self.counts("train").values()]
        return max(counts) / max(1, min(counts))

    def to_dict(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "layout": self.layout,
            "labels": list(self.labels),
            "background_label": self.background_label,
            "background_dir": None if self.background_dir is None else str(self.background_dir),
            "counts": {"train": self.counts("train"), "validation": self.counts("validation")},
            "train": [{"path": s.path, "label": s.label} for s in self.train],
            "validation": [{"path": s.path, "label": s.label} for s in self.validation],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_atomic(path, (json.dumps(self.to_dict(), indent=1) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataSplit:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            data_dir=Path(data["data_dir"]),
            layout=data.get("layout", ""),
            labels=tuple(data["labels"]),
            train=[Sample(item["path"], item["label"]) for item in data["train"]],
            validation=[Sample(item["path"], item["label"]) for item in data["validation"]],
            skipped=[Skipped(item["path"], item["reason"]) for item in data.get("skipped", [])],
            background_label=data.get("background_label"),
            background_dir=Path(data["background_dir"]) if data.get("background_dir") else None,
        )

    def skipped_text(self) -> str:
        """``skipped.txt``: one ``path<TAB>reason`` line per skipped file."""
        return "".join(f"{s.path}\t{s.reason}\n" for s in self.skipped)


# -- finding photos ------------------------------------------------------------


def find_candidates(
    data_dir: str | os.PathLike[str],
    *,
    labels_from_filename: bool = False,
    background: str | os.PathLike[str] | None = None,
    background_label: str | None = None,
) -> Candidates:
    """List the labelled photo files under ``data_dir`` (nothing is decoded yet).

    Args:
        background: a folder (flat or nested) of photos with nothing of interest in
            them, used as the class ``background_label`` without copying them.
        background_label: the background class's name; default: ``"other"`` with
            ``background``, else a class folder named ``other`` or ``background``
            if there is one, else no background class.

    Raises:
        DataError: the folder is missing, holds no photos, only one class, a class
            named ``unknown``, or the background folder/label is unusable.
    """
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise DataError(f"--data {data_dir}: no such directory")
    if not root.is_dir():
        raise DataError(f"--data {data_dir}: not a directory")
    root = root.resolve()
    train_dir = _first_dir(root, TRAIN_DIR_NAMES)
    validation_dir = _first_dir(root, VALIDATION_DIR_NAMES)
    find = _find_by_filename if labels_from_filename else _find_by_folder
    if train_dir is not None and validation_dir is not None:
        train, skipped = find(train_dir)
        validation, skipped_val = find(validation_dir)
        skipped += skipped_val
        layout = LAYOUT_SPLIT
    else:
        # A lone train/ folder (e.g. next to an unlabelled test/) is split by fraction.
        source = train_dir if train_dir is not None else root
        train, skipped = find(source)
        validation = None
        layout = LAYOUT_CLASSES if not labels_from_filename else LAYOUT_FILENAMES
    if labels_from_filename and validation is not None:
        layout = f"{LAYOUT_FILENAMES}, {LAYOUT_SPLIT}"

    background_samples: list[Sample] = []
    background_dir: Path | None = None
    if background is not None:
        background_dir, background_samples, background_label, bg_skipped = _find_background(
            background, background_label, {s.label for s in train}
        )
        skipped += bg_skipped
    labels = tuple(sorted({s.label for s in train} | ({background_label} if background_samples else set())))
    if UNKNOWN_LABEL in labels:
        where = f"--background-label {UNKNOWN_LABEL}" if background_samples and background_label == UNKNOWN_LABEL else f"--data {data_dir}"
        raise DataError(
            f"{where}: a class may not be named {UNKNOWN_LABEL!r}; the runner answers {UNKNOWN_LABEL!r} below the "
            "threshold (rename the folder, e.g. to 'other')"
        )
    if not train:
        hint = (
            "expected names like cat.123.jpg"
            if labels_from_filename
            else "expected one folder of photos per class (DIR/<class>/*.jpg), or DIR/train/<class>/ and "
            "DIR/validation/<class>/, or --labels-from-filename for a flat folder of names like cat.123.jpg"
        )
        raise DataError(f"--data {data_dir}: no labelled photos found ({hint})")
    if len(labels) < 2:
        raise DataError(f"--data {data_dir}: found only one class ({labels[0]!r}); at least 2 are needed")
    if validation is not None:
        if not validation:
            raise DataError(f"--data {data_dir}: the validation folder {validation_dir} holds no labelled photos")
        unknown = sorted({s.label for s in validation} - set(labels))
        if unknown:
            raise DataError(
                f"--data {data_dir}: validation classes {unknown} have no training photos (training classes: {list(labels)})"
            )
    if background is None:
        background_label = _background_from_folders(labels, background_label, data_dir)
    return Candidates(root, layout, labels, train, validation, skipped, background_label, background_dir, background_samples)


def _background_from_folders(labels: tuple[str, ...], background_label: str | None, data_dir) -> str | None:
    """The background class among the data's own classes: ``--background-label``, else ``other``/``background``."""
    if background_label is not None:
        if background_label not in labels:
            raise DataError(
                f"--background-label {background_label}: no class of that name in --data {data_dir} "
                f"(classes: {list(labels)}); name one of them, or pass --background DIR"
            )
        return background_label
    return next((name for name in BACKGROUND_FOLDER_NAMES if name in labels), None)


def _find_background(
    folder: str | os.PathLike[str], label: str | None, classes: set[str]
) -> tuple[Path, list[Sample], str, list[Skipped]]:
    """The photos of a ``--background`` folder (recursive), labelled ``label`` (default ``other``)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        reason = "no such directory" if not root.exists() else "not a directory"
        raise DataError(f"--background {folder}: {reason}")
    label = DEFAULT_BACKGROUND_LABEL if label is None else label
    if label in classes:
        raise DataError(
            f"--background {folder}: --data already has a class folder {label!r}; put these photos there, or "
            f"give the background class another name with --background-label"
        )
    root = root.resolve()
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    for path in _files_under(root, recursive=True):
        if is_image_path(path):
            samples.append(Sample(str(path), label))
        else:
            skipped.append(_not_an_image(path))
    if not samples:
        raise DataError(f"--background {folder}: holds no image files")
    return root, samples, label, skipped


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _files_under(folder: Path, recursive: bool) -> list[Path]:
    """Regular, non-hidden files, sorted (hidden files such as .DS_Store are ignored)."""
    if recursive:
        found = []
        for current, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(current) / name for name in files if not name.startswith(".")]
        return sorted(found)
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _not_an_image(path: Path) -> Skipped:
    suffix = path.suffix.lower() or "no suffix"
    return Skipped(str(path), f"{path}: not an image file type ({suffix})")


def _find_by_folder(root: Path) -> tuple[list[Sample], list[Skipped]]:
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for class_dir in class_dirs:
        found_image = False
        for path in _files_under(class_dir, recursive=True):
            if is_image_path(path):
                samples.append(Sample(str(path), class_dir.name))
                found_image = True
            else:
                skipped.append(_not_an_image(path))
        if not found_image:
            raise DataError(f"--data {root}: class folder {class_dir.name!r} holds no image files")
    if not class_dirs and any(is_image_path(p) for p in _files_under(root, recursive=False)):
        raise DataError(
            f"--data {root}: photos lie directly in the folder, not in one folder per class; "
            "pass --labels-from-filename for names like cat.123.jpg"
        )
    return samples, skipped


def label_from_filename(path: str | os.PathLike[str]) -> str | None:
    """``cat.123.jpg`` → ``"cat"``; ``american_bulldog_10.jpg`` → ``"american_bulldog"``; else ``None``."""
    match = FILENAME_LABEL.fullmatch(Path(path).stem)
    if match is None or not any(c.isalpha() for c in match.group("label")):
        return None
    return match.group("label")


def _find_by_filename(root: Path) -> tuple[list[Sample], list[Skipped]]:
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    for path in _files_under(root, recursive=False):
        if not is_image_path(path):
            skipped.append(_not_an_image(path))
            continue
        label = label_from_filename(path)
        if label is None:
            skipped.append(Skipped(str(path), f"{path}: no label in the file name (expected names like cat.123.jpg)"))
        else:
            samples.append(Sample(str(path), label))
    return samples, skipped


# -- splitting -----------------------------------------------------------------


def split_samples(
    candidates: Candidates,
    unreadable: dict[str, str],
    *,
    validation_fraction: float,
    seed: int,
) -> DataSplit:
    """Drop unreadable photos, then split (seeded, stratified) when the layout has no validation folder.

    Args:
        unreadable: ``{path: reason}`` of the candidates that could not be decoded.

    Raises:
        DataError: nothing readable, a class with no readable photo, or too few to split.
    """
    skipped = list(candidates.skipped) + [Skipped(path, reason) for path, reason in unreadable.items()]
    readable = [s for s in candidates.all_samples if s.path not in unreadable]
    total = len(candidates.all_samples)
    if not readable:
        raise DataError(f"--data {candidates.data_dir}: none of the {total} photos could be read (first: {skipped[0].reason})")
    train = [s for s in candidates.train if s.path not in unreadable]
    labels = candidates.labels
    background = [s for s in candidates.background if s.path not in unreadable]
    if candidates.background and not background:
        raise DataError(f"--background {candidates.background_dir}: none of its photos could be read")
    present = Counter(s.label for s in train + background)
    missing = [label for label in labels if present[label] == 0]
    if missing:
        raise DataError(f"--data {candidates.data_dir}: class {missing[0]!r} has no readable training photos")
    if candidates.validation is not None:
        validation = [s for s in candidates.validation if s.path not in unreadable]
        if not validation:
            raise DataError(f"--data {candidates.data_dir}: none of the validation photos could be read")
        if background:
            # The same seeded, stratified rule as a class-folder layout's classes.
            bg_train, bg_validation = _stratified_split(
                background, (candidates.background_label,), validation_fraction, seed,
                f"--background {candidates.background_dir}",
            )
            train, validation = train + bg_train, validation + bg_validation
    else:
        train, validation = _stratified_split(train + background, labels, validation_fraction, seed, f"--data {candidates.data_dir}")
    order = {label: i for i, label in enumerate(labels)}
    key = lambda s: (order[s.label], s.path)  # noqa: E731
    skipped.sort(key=lambda s: s.path)
    return DataSplit(
        candidates.data_dir, candidates.layout, labels, sorted(train, key=key), sorted(validation, key=key), skipped,
        candidates.background_label, candidates.background_dir,
    )


def _stratified_split(
    samples: list[Sample], labels: tuple[str, ...], fraction: float, seed: int, where: str
) -> tuple[list[Sample], list[Sample]]:
    """Per label (in order), a seeded permutation holds out ``round(n * fraction)`` photos (at least 1)."""
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    validation: list[Sample] = []
    for label in labels:
        members = sorted((s for s in samples if s.label == label), key=lambda s: s.path)
        if len(members) < 2:
            raise DataError(
                f"{where}: class {label!r} has {len(members)} readable photo; at least 2 are needed "
                "to hold one out for validation"
            )
        n_val = min(len(members) - 1, max(1, round(len(members) * fraction)))
        order = rng.permutation(len(members))
        validation += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, validation


def background_split(
    background: str | os.PathLike[str],
    *,
    label: str = DEFAULT_BACKGROUND_LABEL,
    validation_fraction: float = 0.2,
    seed: int = 0,
    unreadable: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Path], list[Path]]:
    """``(training, held-out)`` photo paths of a ``--background`` folder, split as a training run splits them.

    The same seeded, stratified rule as :func:`split_samples` for a ``--data`` with
    train/validation folders (the background class is then split on its own), so
    evaluation scripts and tests can find the photos a model never trained on.
    ``unreadable`` lists paths the run skipped (its ``skipped.txt``).
    """
    root, samples, label, _ = _find_background(background, label, set())
    samples = [s for s in samples if s.path not in unreadable]
    train, validation = _stratified_split(samples, (label,), validation_fraction, seed, f"--background {root}")
    return sorted(Path(s.path) for s in train), sorted(Path(s.path) for s in validation)
