"""Listing and decoding the photos the converter calibrates and evaluates on.

Every photo goes through the runner's own decoder (:mod:`edge_runner.core.decoder`, which
calls :func:`edge_runner.core.image.preprocess`), so calibration and the accuracy gate see
exactly the pixels the model will see on the device. An unreadable photo is skipped
with a warning line naming it; a set with no usable photo is a ``ConvertError``.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from edge_runner.core.decoder import DecodedPhoto, decode_photos
from edge_runner.core.image import find_images, list_folders
from edge_runner.core.photo import Photo
from edge_runner.core.spec import InputSpec

from .errors import ConvertError

Warn = Callable[[str], None]
# The fewest photos int8 calibration runs on. The converter records each activation's
# min/max over the calibration set; with fewer than about ten photos those ranges are set
# by one or two images and clip everything else (the TFLite guide asks for ~100-500).
# Fewer than --calibration-size but at least this many: every photo is used, with a note.
MIN_CALIBRATION = 10


def warn_stderr(message: str) -> None:
    """The default warning sink: one line on stderr."""
    print(f"convert: warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Decoded:
    """Photos decoded for the model.

    Attributes:
        photos: the photos that decoded, in order.
        pixels: ``uint8`` ``(len(photos), H, W, 3)`` RGB 0–255 from ``preprocess``.
        skipped: ``"PATH: reason"`` for each photo that could not be decoded.
    """

    photos: tuple[Photo, ...]
    pixels: np.ndarray
    skipped: tuple[str, ...]


def labelled_folder(root: Path, labels: Sequence[str], what: str = "--eval-data") -> list[Photo]:
    """Photos in a one-folder-per-class directory whose folder names are among ``labels``.

    Raises ``ConvertError`` when ``root`` is missing, has no class folders, names a
    class the model does not know, or holds no image files.
    """
    if not root.is_dir():
        raise ConvertError(f"{what}: {root} is not a directory")
    folders = list_folders(root)
    if not folders:
        raise ConvertError(f"{what}: {root} has no class folders (expected one sub-folder per class: {', '.join(labels)})")
    unknown = [p.name for p in folders if p.name not in labels]
    if unknown:
        raise ConvertError(
            f"{what}: {root} has class folders the model does not know: {', '.join(unknown)} "
            f"(the model's classes: {', '.join(labels)})"
        )
    photos = [Photo(path, folder.name) for folder in folders for path in find_images(folder)]
    if not photos:
        raise ConvertError(f"{what}: {root} has no image files in its class folders ({', '.join(p.name for p in folders)})")
    return photos


def split_photos(entries: Iterable[dict], labels: Sequence[str], source: str) -> list[Photo]:
    """``split.json`` entries ``{"path": ..., "label": ...}`` → photos; unknown labels are a ``ConvertError``."""
    photos = []
    for entry in entries:
        try:
            path, label = Path(entry["path"]), str(entry["label"])
        except (KeyError, TypeError):
            raise ConvertError(f"{source}: each entry needs \"path\" and \"label\", received {entry!r}") from None
        if label not in labels:
            raise ConvertError(f"{source}: label {label!r} of {path} is not a class the model knows ({', '.join(labels)})")
        photos.append(Photo(path, label))
    return photos


def decode(photos: Sequence[Photo], spec: InputSpec, *, draft: bool = True, warn: Warn = warn_stderr,
           progress: str | None = None) -> Decoded:
    """Decode photos with the kit's decoder (:func:`edge_runner.core.decoder.decode_photos`), skipping unreadable ones.

    Args:
        photos: what to decode.
        spec: the model's contract (size, resize, crop).
        draft: passed to ``preprocess`` (JPEG reduced-size decoding).
        warn: called with ``"PATH: reason (skipped)"`` per unreadable photo.
        progress: a tqdm description, or None for no bar.
    """
    results: Iterable[DecodedPhoto] = decode_photos([photo.path for photo in photos], spec, draft=draft)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(photos), desc=progress, unit="photo", leave=False, disable=None)
    kept, arrays, skipped = [], [], []
    for photo, result in zip(photos, results):
        if not result.ok:
            skipped.append(result.error)
            warn(f"{result.error} (skipped)")
        else:
            kept.append(photo)
            arrays.append(result.pixels)
    pixels = np.stack(arrays) if arrays else np.zeros((0, spec.height, spec.width, 3), np.uint8)
    return Decoded(tuple(kept), pixels, tuple(skipped))


@dataclass(frozen=True)
class Calibration:
    """A seeded sample of training photos for int8 calibration.

    Attributes:
        pixels: float32 ``(used, H, W, 3)`` raw 0–255 RGB, exactly the runner's input values.
        paths: the photos used, in order.
        skipped: unreadable photos passed over (``"PATH: reason"``).
        pinned_range: True when one pixel was set to 0 and one to 255 so the input range is exactly 0..255.
        requested: ``--calibration-size``; more than ``len(paths)`` when the set had fewer readable photos
            (then every one of them was used).
    """

    pixels: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[str, ...]
    pinned_range: bool
    requested: int = 0

    @property
    def all_photos(self) -> bool:
        """True when fewer photos than requested were available, so all readable ones were used."""
        return len(self.paths) < self.requested


def check_calibration_size(candidates: Sequence[Path], size: int, source: str) -> int:
    """How many photos calibration will sample: ``min(size, len(candidates))`` (checked before any work).

    Raises ``ConvertError`` when ``size`` is below ``MIN_CALIBRATION`` or ``candidates`` has
    fewer than ``MIN_CALIBRATION`` photos.
    """
    if size < MIN_CALIBRATION:
        raise ConvertError(f"`--calibration-size` must be at least {MIN_CALIBRATION}, received {size}")
    if len(candidates) < MIN_CALIBRATION:
        raise ConvertError(
            f"calibration set too small: {source} has {len(candidates)} photos, int8 calibration needs at least "
            f"{MIN_CALIBRATION} (add photos, pass --calibration-data DIR, or leave out the int8 variants)"
        )
    return min(size, len(candidates))


def sample_calibration(candidates: Sequence[Path], spec: InputSpec, size: int, seed: int, source: str,
                       *, warn: Warn = warn_stderr, progress: bool = True) -> Calibration:
    """Decode a seeded random sample of ``size`` readable photos from ``candidates``.

    With fewer readable photos than ``size`` (but at least ``MIN_CALIBRATION``) every
    readable one is used and ``warn`` gets one line saying so. The order of ``candidates``
    does not matter (they are sorted first); unreadable photos are replaced by the next
    ones of the same seeded shuffle.
    """
    from .quantize import pin_input_range

    target = check_calibration_size(candidates, size, source)
    order = sorted(str(p) for p in candidates)
    random.Random(seed).shuffle(order)
    chosen: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: list[str] = []
    position = 0
    while len(chosen) < target and position < len(order):
        batch = order[position: position + target - len(chosen)]
        position += len(batch)
        decoded = decode([Photo(Path(p)) for p in batch], spec, warn=warn,
                         progress="calibration photos" if progress else None)
        chosen.extend(str(p.path) for p in decoded.photos)
        arrays.extend(decoded.pixels)
        skipped.extend(decoded.skipped)
    if len(chosen) < MIN_CALIBRATION:
        raise ConvertError(
            f"calibration set too small: {source} has {len(chosen)} readable photos ({len(skipped)} unreadable), "
            f"int8 calibration needs at least {MIN_CALIBRATION} (add photos or pass --calibration-data DIR)"
        )
    if len(chosen) < size:
        warn(f"calibrating on all {len(chosen)} readable photos of {source}: fewer than `--calibration-size` {size}")
    pixels = np.stack(arrays).astype(np.float32)
    pinned = pin_input_range(pixels)
    return Calibration(pixels, tuple(chosen), tuple(skipped), pinned, requested=size)
