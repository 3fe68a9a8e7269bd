"""Labelled photo sources for ``python -m convert evaluate``: ``--data`` class folders and ``--background`` folders.

A *source* is one root folder given on the command line, named ``NAME=DIR`` or, by
default, by the folder's own name. ``--data DIR`` holds one folder per class, named
like the model's labels (``DIR/cats/…``), or split folders holding them
(``DIR/train/cats/…``, ``DIR/validation/cats/…``). ``--background DIR`` is a flat or
nested folder of photos with nothing of interest: every one is labelled with the
contract's background label. Photos are listed by the kit's one finder
(:func:`edge_runner.core.image.find_images`), so the runner, training and this count the same files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from edge_runner.core.image import find_images, list_folders
from edge_runner.core.spec import InputSpec

from ..errors import ConvertError
from ..photos import Photo, labelled_folder

# Folders under a --data root that hold class folders rather than being classes
# (the layouts `python -m train` reads, plus "test").
SPLIT_FOLDER_NAMES = ("train", "training", "validation", "val", "valid", "test")
DATA, BACKGROUND = "data", "background"


@dataclass(frozen=True)
class Source:
    """One root folder of labelled photos.

    Attributes:
        name: how the figures name it (``NAME=`` or the folder's name).
        root: the folder.
        kind: ``"data"`` (class folders) or ``"background"`` (every photo is the background label).
    """

    name: str
    root: Path
    kind: str = DATA

    @property
    def flag(self) -> str:
        return f"--{self.kind}"

    def to_dict(self) -> dict:
        return {"name": self.name, "root": str(self.root), "kind": self.kind}


def source_argument(text: str) -> tuple[str, Path]:
    """An argparse ``type=``: ``"NAME=DIR"`` → ``(NAME, DIR)``; a bare ``"DIR"`` → ``(folder name, DIR)``."""
    name, sep, folder = text.partition("=")
    if not sep or "/" in name or not name:
        name, folder = "", text
    if not folder:
        raise argparse.ArgumentTypeError(f"must be DIR or NAME=DIR, received {text!r}")
    path = Path(folder)
    return name or path.resolve().name or str(path), path


def make_sources(data: Sequence[tuple[str, Path]], background: Sequence[tuple[str, Path]]) -> tuple[Source, ...]:
    """``--data`` and ``--background`` arguments → sources; ``ConvertError`` for none, a missing folder or a repeated name."""
    sources = [Source(n, p, DATA) for n, p in data] + [Source(n, p, BACKGROUND) for n, p in background]
    if not sources:
        raise ConvertError("give at least one --data DIR (class folders) or --background DIR (photos of nothing), "
                           "received neither")
    seen: dict[str, Source] = {}
    for source in sources:
        if not source.root.is_dir():
            raise ConvertError(f"{source.flag}: {source.root} is not a directory")
        if source.name in seen:
            raise ConvertError(f"{source.flag}: two sources are named {source.name!r} ({seen[source.name].root} and "
                               f"{source.root}); name them apart with NAME=DIR")
        seen[source.name] = source
    return tuple(sources)


def check_background(sources: Sequence[Source], spec: InputSpec) -> None:
    """``ConvertError`` when a ``--background`` source is given for a model without a background label."""
    if spec.background_label is None and any(s.kind == BACKGROUND for s in sources):
        raise ConvertError(
            f"--background: the model has no background label (its labels: {', '.join(spec.labels)}), so photos of "
            "nothing have no right answer; pass photos of its classes as --data DIR/<label>/ instead"
        )


def class_folder_roots(source: Source) -> list[Path]:
    """The folders that hold class folders: the root, or its split folders when every sub-folder is one."""
    folders = list_folders(source.root)
    if folders and all(folder.name.lower() in SPLIT_FOLDER_NAMES for folder in folders):
        return folders
    return [source.root]


def source_photos(source: Source, spec: InputSpec) -> list[Photo]:
    """Every photo of ``source`` with its true label; ``ConvertError`` for an unknown class folder or no photos."""
    if source.kind == BACKGROUND:
        check_background([source], spec)
        paths = find_images(source.root)
        if not paths:
            raise ConvertError(f"--background: {source.root} has no image files")
        return [Photo(path, spec.background_label, source.name) for path in paths]
    photos = []
    for root in class_folder_roots(source):
        photos += labelled_folder(root, spec.labels, what=f"--data {source.name}")
    return [Photo(photo.path, photo.label, source.name) for photo in photos]


def collect(sources: Sequence[Source], spec: InputSpec) -> list[Photo]:
    """The photos of every source, in source order then path order."""
    check_background(sources, spec)
    return [photo for source in sources for photo in source_photos(source, spec)]
