"""A review export (``python -m edge_runner`` review → export) as one more ``--data`` source.

An export folder holds ``manifest.json`` (``"format": "edgekit-review-export"``) and one folder per label,
``OUT/<label>/<group>--<id>.jpg``: the contract's labels, and the contract's background label (e.g. ``other``,
``nothing`` when the contract has none) for frames a user reviewed as "nothing". It is read from its manifest,
not from its folders:

* a frame whose label is a class of the run is a photo of that class;
* a frame whose label is the manifest's ``background_label`` (or ``nothing``) joins the run's background class,
  whatever the run calls it (also when ``--background`` folders are given: the export is not a class folder);
* every frame keeps its ``group`` (the frames of one visit, or of one 10-minute window), so the split keeps a
  group on one side (:func:`train.data.split.split_samples`).

Nothing is decoded here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_runner.core.image import is_image_path
from edge_runner.core.photo import Photo

from ..errors import DataError

EXPORT_FORMAT = "edgekit-review-export"
MANIFEST = "manifest.json"
NOTHING = "nothing"
# Placeholder label of the frames reviewed "nothing" until the run's background label is known.
BACKGROUND_PLACEHOLDER = "\0background"


@dataclass(frozen=True)
class ExportFrames:
    """The frames of one export root.

    Attributes:
        labelled: frames of a contract class (``Photo``: absolute path, label, group; no source yet).
        background: frames reviewed "nothing", labelled :data:`BACKGROUND_PLACEHOLDER` (the caller relabels them).
        labels: the manifest's contract labels.
    """

    labelled: list[Photo]
    background: list[Photo]
    labels: tuple[str, ...]


def is_review_export(root: Path) -> bool:
    """Whether ``root`` holds a ``manifest.json`` whose ``format`` is :data:`EXPORT_FORMAT`."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_export(root: Path, flag: str = "--data") -> ExportFrames:
    """The frames listed in ``root/manifest.json`` (files that are missing are an error naming them).

    Raises:
        DataError: unreadable manifest, unknown version, a frame outside ``root``, a missing file, or no frame.
    """
    root = Path(root)
    where = f"{flag} {root}"
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read {MANIFEST} ({exc})") from None
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("version") != 1:
        raise DataError(f"{where}: {MANIFEST} is not an {EXPORT_FORMAT} version 1 (received format "
                        f"{manifest.get('format')!r}, version {manifest.get('version')!r})")
    labels = tuple(str(label) for label in manifest.get("labels") or ())
    background = manifest.get("background_label") or NOTHING
    labelled: list[Photo] = []
    nothing: list[Photo] = []
    for frame in manifest.get("frames") or ():
        try:
            file, label, group = str(frame["file"]), str(frame["label"]), str(frame.get("group") or "")
        except (KeyError, TypeError):
            raise DataError(f"{where}: each frame of {MANIFEST} needs \"file\" and \"label\", received {frame!r}") from None
        path = (root / file).resolve()
        if root.resolve() not in path.parents or not is_image_path(path):
            raise DataError(f"{where}: frame {file!r} of {MANIFEST} is not an image file inside the export")
        if not path.is_file():
            raise DataError(f"{where}: {MANIFEST} lists {file!r}, which does not exist")
        group = group or path.stem.partition("--")[0] or path.stem
        if label in (background, NOTHING):
            nothing.append(Photo(path, BACKGROUND_PLACEHOLDER, group=group))
        elif label in labels:
            labelled.append(Photo(path, label, group=group))
        else:
            raise DataError(f"{where}: frame {file!r} has label {label!r}, not one of the export's labels "
                            f"{list(labels)} nor its background {background!r}")
    if not labelled and not nothing:
        raise DataError(f"{where}: {MANIFEST} lists no reviewed frame")
    key = lambda s: s.key  # noqa: E731
    return ExportFrames(sorted(labelled, key=key), sorted(nothing, key=key), labels)
