"""Photo folders: find the labelled photo files of ``--data`` (and ``--background``), nothing decoded yet.

Layouts understood (``DIR`` is ``--data``):

* ``DIR/train/<class>/…`` and ``DIR/validation/<class>/…`` (also ``training``,
  ``val``, ``valid``): the split is given.
* ``DIR/<class>/…`` (e.g. Microsoft's PetImages ``Cat/`` and ``Dog/``): each class
  is split by a seeded, stratified ``validation_fraction`` (see ``train.data.split``).
* ``--labels-from-filename``: a flat folder of names like ``cat.123.jpg`` or
  ``american_bulldog_10.jpg`` (the label is the name before its trailing number),
  either ``DIR`` itself or ``DIR/train`` + ``DIR/validation``.

Files are listed by the kit's one finder (``edge_runner.core.image.list_files``: hidden
files and folders ignored, sorted by path text); a file without an image suffix is
skipped with a reason naming it. Reading the photos is not done here:
``train.data.pixels`` decodes every candidate once, and the ones it cannot read are
skipped (and listed) before the split.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence, Union

from convert.evaluation.sources import Source
from edge_runner.core.photo import Photo
from edge_runner.core.image import find_images, is_image_path, list_files, list_folders
from edge_runner.core.spec import UNKNOWN_LABEL

from ..errors import DataError
from .review_export import is_review_export, read_export
from .sources import check_holdout, check_unique, held_out, parse_root, source_names

PathArg = Union[str, "os.PathLike[str]"]

TRAIN_DIR_NAMES = ("train", "training")
VALIDATION_DIR_NAMES = ("validation", "val", "valid")
# "cat.123", "american_bulldog_10", "dog (3)": the label is what precedes the number.
FILENAME_LABEL = re.compile(r"(?P<label>.+?)[\s._-]*\(?\d+\)?")

LAYOUT_SPLIT = "train/validation folders"
LAYOUT_CLASSES = "class folders"
LAYOUT_FILENAMES = "labels from file names"
LAYOUT_EXPORT = "review export"
# A class folder with one of these names is the background class when
# --background-label is not given ("nothing of interest here").
BACKGROUND_FOLDER_NAMES = ("other", "background")
# The background class's name when --background DIR is given without --background-label.
DEFAULT_BACKGROUND_LABEL = "other"


@dataclass(frozen=True)
class Skipped:
    """A file left out of training, and why (the reason names the file)."""

    path: str
    reason: str


@dataclass
class Candidates:
    """The photos found in the data folders, before any has been decoded.

    ``train`` and ``validation`` hold the photos of the class folders: as given by
    roots with train/validation folders (``presplit``), all in ``train`` for the
    others (``validation`` is ``None`` when no root gives a split); those, and the
    photos of the ``--background`` folders (``background``, labelled
    ``background_label``), are split by the seeded, stratified fraction, root by
    root (:func:`train.data.split.split_samples`). ``holdout`` holds the photos of the
    ``--holdout-source`` sources: measured, never trained on. ``data_dir``,
    ``layout`` and ``background_dir`` are those of the first root of each kind.
    """

    data_dir: Path
    layout: str
    labels: tuple[str, ...]
    train: list[Photo]
    validation: list[Photo] | None
    skipped: list[Skipped] = field(default_factory=list)
    background_label: str | None = None
    background_dir: Path | None = None
    background: list[Photo] = field(default_factory=list)
    roots: list[Source] = field(default_factory=list)
    presplit: frozenset[str] = frozenset()
    holdout: list[Photo] = field(default_factory=list)
    holdout_sources: tuple[str, ...] = ()
    exports: frozenset[str] = frozenset()

    @property
    def all_samples(self) -> list[Photo]:
        return self.train + (self.validation or []) + self.background + self.holdout


def find_candidates(
    data_dir: PathArg | Sequence[PathArg],
    *,
    labels_from_filename: bool = False,
    background: PathArg | Sequence[PathArg] | None = None,
    background_label: str | None = None,
    source_by: str = "folder",
    holdout: Sequence[str] = (),
) -> Candidates:
    """List the labelled photo files under the data folder(s) (nothing is decoded yet).

    Args:
        data_dir: one folder, or several (each ``DIR`` or ``NAME=DIR``), of class folders.
        background: a folder (flat or nested) of photos with nothing of interest in
            them, or several, used as the class ``background_label`` without copying them.
        background_label: the background class's name; default: ``"other"`` with
            ``background``, else a class folder named ``other`` or ``background``
            if there is one, else no background class.
        source_by: ``"folder"`` (each root is a source) or ``"prefix"`` (file-name
            prefixes split a root further; see :mod:`train.data.sources`).
        holdout: sources (or roots) whose photos are only measured, never trained on.

    Raises:
        DataError: a folder is missing, holds no photos, only one class, a class
            named ``unknown``, the background folder/label is unusable, or a
            held-out source does not exist or leaves a class without training photos.
    """
    data_roots = [parse_root(d, "data") for d in _as_list(data_dir)]
    background_roots = [parse_root(b, "background") for b in _as_list(background)]
    check_unique(data_roots + background_roots)
    train: list[Photo] = []
    validation: list[Photo] = []
    skipped: list[Skipped] = []
    presplit: set[str] = set()
    layouts = []
    exports: dict[str, list[Photo]] = {}  # review exports: root name → frames reviewed "nothing"
    for root in data_roots:
        if root.root.is_dir() and is_review_export(root.root):
            frames = read_export(root.root)
            train += [replace(f, source=root.name) for f in frames.labelled]
            exports[root.name] = [replace(f, source=root.name) for f in frames.background]
            layouts.append(LAYOUT_EXPORT)
            continue
        r_train, r_validation, r_skipped, layout = _find_in_root(root, labels_from_filename)
        sources = source_names(root, [s.key for s in r_train + (r_validation or [])], source_by)
        train += [replace(s, source=sources[s.key]) for s in r_train]
        if r_validation is not None:
            presplit.add(root.name)
            validation += [replace(s, source=sources[s.key]) for s in r_validation]
        skipped += r_skipped
        layouts.append(layout)
    data_text = str(data_roots[0].root)

    background_samples: list[Photo] = []
    for root in background_roots:
        _, found, background_label, bg_skipped = find_background(root.root, background_label, {s.label for s in train})
        sources = source_names(root, [s.key for s in found], source_by)
        background_samples += [replace(s, source=sources[s.key]) for s in found]
        skipped += bg_skipped
    nothing = [s for frames in exports.values() for s in frames]
    if background_roots:  # the export's "nothing" frames join the --background photos
        background_samples += [replace(s, label=background_label) for s in nothing]
    labels = tuple(sorted({s.label for s in train} | ({background_label} if background_samples else set())))
    if UNKNOWN_LABEL in labels:
        where = f"--background-label {UNKNOWN_LABEL}" if background_samples and background_label == UNKNOWN_LABEL else f"--data {data_text}"
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
        raise DataError(f"--data {data_text}: no labelled photos found ({hint})")
    if len(labels) < 2:
        raise DataError(f"--data {data_text}: found only one class ({labels[0]!r}); at least 2 are needed")
    unknown = sorted({s.label for s in validation} - set(labels))
    if unknown:
        raise DataError(
            f"--data {data_text}: validation classes {unknown} have no training photos (training classes: {list(labels)})"
        )
    if not background_roots:
        background_label = _background_from_folders(labels, background_label, data_text)
        if nothing and background_label is None:
            raise DataError(f"--data {nothing[0].source}: {len(nothing)} frames reviewed 'nothing' need a background "
                            "class; the run has none (pass --background DIR or a class folder named 'other')")
        train += [replace(s, label=background_label) for s in nothing]  # the background is a class folder here
    held: list[Photo] = []
    if holdout:
        check_holdout(holdout, [s.source for s in train + validation + background_samples])
        held = [s for s in train + validation + background_samples if held_out(s.source, holdout)]
        train, validation, background_samples = (
            [s for s in part if not held_out(s.source, holdout)] for part in (train, validation, background_samples)
        )
        _check_classes_left(labels, train + background_samples, holdout)
    layout = layouts[0] if len(layouts) == 1 else f"{layouts[0]} + {len(layouts) - 1} more folder(s)"
    return Candidates(
        data_roots[0].root, layout, labels, train, validation if presplit else None, skipped, background_label,
        background_roots[0].root if background_roots else None, background_samples, data_roots + background_roots,
        frozenset(presplit), held, tuple(holdout), frozenset(exports),
    )


def _as_list(value: PathArg | Sequence[PathArg] | None) -> list[PathArg]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)


def _check_classes_left(labels: tuple[str, ...], kept: list[Photo], holdout: Sequence[str]) -> None:
    present = {s.label for s in kept}
    for label in labels:
        if label not in present:
            raise DataError(
                f"--holdout-source {' '.join(holdout)}: class {label!r} has no photos left to train on; "
                "hold out fewer sources"
            )


def _find_in_root(root: Source, labels_from_filename: bool) -> tuple[list[Photo], list[Photo] | None, list[Skipped], str]:
    """``(train, validation or None, skipped, layout)`` of one ``--data`` folder."""
    path = root.root
    if not path.exists():
        raise DataError(f"--data {path}: no such directory")
    if not path.is_dir():
        raise DataError(f"--data {path}: not a directory")
    train_dir = _first_dir(path, TRAIN_DIR_NAMES)
    validation_dir = _first_dir(path, VALIDATION_DIR_NAMES)
    find = _find_by_filename if labels_from_filename else _find_by_folder
    if train_dir is not None and validation_dir is not None:
        train, skipped = find(train_dir)
        validation, skipped_val = find(validation_dir)
        skipped += skipped_val
        if not validation:
            raise DataError(f"--data {path}: the validation folder {validation_dir} holds no labelled photos")
        layout = f"{LAYOUT_FILENAMES}, {LAYOUT_SPLIT}" if labels_from_filename else LAYOUT_SPLIT
        return train, validation, skipped, layout
    # A lone train/ folder (e.g. next to an unlabelled test/) is split by fraction.
    train, skipped = find(train_dir if train_dir is not None else path)
    return train, None, skipped, LAYOUT_FILENAMES if labels_from_filename else LAYOUT_CLASSES


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
) -> tuple[Path, list[Photo], str, list[Skipped]]:
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
    samples: list[Photo] = []
    skipped: list[Skipped] = []
    for path in list_files(root):
        if is_image_path(path):
            samples.append(Photo(path, label))
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


def _find_by_folder(root: Path) -> tuple[list[Photo], list[Skipped]]:
    samples: list[Photo] = []
    skipped: list[Skipped] = []
    class_dirs = list_folders(root)
    for class_dir in class_dirs:
        found_image = False
        for path in list_files(class_dir):
            if is_image_path(path):
                samples.append(Photo(path, class_dir.name))
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


def _find_by_filename(root: Path) -> tuple[list[Photo], list[Skipped]]:
    samples: list[Photo] = []
    skipped: list[Skipped] = []
    for path in list_files(root, recursive=False):
        if not is_image_path(path):
            skipped.append(_not_an_image(path))
            continue
        label = label_from_filename(path)
        if label is None:
            skipped.append(Skipped(str(path), f"{path}: no label in the file name (expected names like cat.123.jpg)"))
        else:
            samples.append(Photo(path, label))
    return samples, skipped
