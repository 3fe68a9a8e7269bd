"""Photo folders: find the labelled photo files of ``--data`` (and ``--background``), nothing decoded yet.

Layouts understood (``DIR`` is ``--data``):

* ``DIR/train/<class>/…`` and ``DIR/validation/<class>/…`` (also ``training``,
  ``val``, ``valid``): the split is given.
* ``DIR/<class>/…`` (e.g. Microsoft's PetImages ``Cat/`` and ``Dog/``): each class
  is split by a seeded, stratified ``validation_fraction`` (see ``train.split``).
* ``--labels-from-filename``: a flat folder of names like ``cat.123.jpg`` or
  ``american_bulldog_10.jpg`` (the label is the name before its trailing number),
  either ``DIR`` itself or ``DIR/train`` + ``DIR/validation``.

Files are listed by the kit's one finder (``edge_runner.core.image.list_files``: hidden
files and folders ignored, sorted by path text); a file without an image suffix is
skipped with a reason naming it. Reading the photos is not done here:
``train.pixels`` decodes every candidate once, and the ones it cannot read are
skipped (and listed) before the split.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from edge_runner.core.image import find_images, is_image_path, list_files, list_folders
from edge_runner.core.spec import UNKNOWN_LABEL

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
        background_dir, background_samples, background_label, bg_skipped = find_background(
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


def find_background(
    folder: str | os.PathLike[str], label: str | None, classes: set[str]
) -> tuple[Path, list[Sample], str, list[Skipped]]:
    """The photos of a ``--background`` folder (recursive), labelled ``label`` (default ``other``).

    Returns ``(the folder resolved, its photos, the label, its non-image files skipped)``.
    """
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
    for path in list_files(root):
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


def _not_an_image(path: Path) -> Skipped:
    suffix = path.suffix.lower() or "no suffix"
    return Skipped(str(path), f"{path}: not an image file type ({suffix})")


def _find_by_folder(root: Path) -> tuple[list[Sample], list[Skipped]]:
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    class_dirs = list_folders(root)
    for class_dir in class_dirs:
        found_image = False
        for path in list_files(class_dir):
            if is_image_path(path):
                samples.append(Sample(str(path), class_dir.name))
                found_image = True
            else:
                skipped.append(_not_an_image(path))
        if not found_image:
            raise DataError(f"--data {root}: class folder {class_dir.name!r} holds no image files")
    if not class_dirs and find_images(root, recursive=False):
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
    for path in list_files(root, recursive=False):
        if not is_image_path(path):
            skipped.append(_not_an_image(path))
            continue
        label = label_from_filename(path)
        if label is None:
            skipped.append(Skipped(str(path), f"{path}: no label in the file name (expected names like cat.123.jpg)"))
        else:
            samples.append(Sample(str(path), label))
    return samples, skipped
