"""Decode every photo once, with the runner's own preprocessing, into a cached array.

Training must see exactly the pixels the runner will see, so each photo goes
through the runner's own decoder (:mod:`edge_runner.core.decoder`:
:func:`edge_runner.core.image.preprocess` on a few threads; Pillow decode, EXIF orientation,
RGB, JPEG draft decode, bilinear resize). The result is cached as a ``uint8``
``.npy`` file (memory-mapped on reuse) keyed by the file list, each file's size
and modification time, and the input contract's geometry, so a second run, a
``--resume`` or another seed skips the decoding.

Decoding is also the scan for unreadable files: a photo that fails is recorded
with the runner's own error message and its row is left black.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runner.core.decoder import decode_photos as decode_each
from edge_runner.common.files import write_atomic
from edge_runner.core.spec import InputSpec

from ..progress import Progress

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass
class DecodedPixels:
    """Preprocessed photos.

    Attributes:
        key: the cache key (file list, sizes, mtimes, geometry).
        paths: the photo paths, in row order.
        array: ``uint8`` ``(N, height, width, 3)`` RGB 0–255 (a read-only memory map
            when it comes from the cache); rows of unreadable photos are zero.
        errors: ``{path: reason}`` for the photos that could not be decoded.
        from_cache: whether the array was read from the cache.
        seconds: time spent decoding (or opening the cache).
    """

    key: str
    paths: list[str]
    array: np.ndarray
    errors: dict[str, str]
    from_cache: bool
    seconds: float

    def rows(self, paths: list[str]) -> np.ndarray:
        """``int64`` row indices of ``paths`` in :attr:`array`."""
        index = {path: i for i, path in enumerate(self.paths)}
        return np.array([index[path] for path in paths], dtype=np.int64)


def cache_key(paths: list[str], spec: InputSpec) -> str:
    """A digest of the file list (with sizes and mtimes) and the preprocessing geometry."""
    entries = []
    for path in paths:
        try:
            stat = os.stat(path)
            entries.append((path, stat.st_size, stat.st_mtime_ns))
        except OSError:
            entries.append((path, -1, -1))
    blob = json.dumps([CACHE_FORMAT, spec.height, spec.width, spec.resize, spec.crop, "draft", entries])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def decode_photos(
    paths: list[str],
    spec: InputSpec,
    *,
    cache_dir: Path | None,
    workers: int = 0,
    progress: bool = True,
) -> DecodedPixels:
    """Preprocess ``paths`` as the runner does, reusing a cached result when one matches.

    Args:
        spec: gives the size, resize filter and crop (its labels are not used).
        cache_dir: folder for the ``.npy`` cache (``None``: keep the array in memory only).
        workers: decoding threads (0: one per CPU). Pillow releases the GIL while
            decoding and resizing, so threads scale.

    A photo that cannot be decoded leaves its row black and is listed in
    ``errors`` with the decoder's ``"PATH: reason"``; it never stops the batch.
    """
    start = time.perf_counter()
    shape = (len(paths), spec.height, spec.width, 3)
    key = cache_key(paths, spec)
    array_path = meta_path = None
    if cache_dir is not None:
        folder = Path(cache_dir) / "pixels"
        array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
        cached = _load_cached(array_path, meta_path, shape)
        if cached is not None:
            log.info("decoded photos: reusing the cache %s", array_path)
            return DecodedPixels(key, list(paths), cached[0], cached[1], True, time.perf_counter() - start)
        folder.mkdir(parents=True, exist_ok=True)
        tmp_path = folder / f".{key}.{os.getpid()}.tmp.npy"
        array = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=shape)
    else:
        array = np.zeros(shape, dtype=np.uint8)

    errors: dict[str, str] = {}
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd EXIF blocks and huge images; the failures that
            # matter raise, and are listed with their reason.
            warnings.simplefilter("ignore")
            with Progress(len(paths), "decode photos", "photo", enabled=progress) as bar:
                decoded = decode_each(paths, spec, workers=workers or os.cpu_count() or 1)
                for index, photo in enumerate(decoded):
                    if photo.ok:
                        array[index] = photo.pixels
                    else:
                        errors[paths[index]] = photo.error  # the row stays black
                    bar.update(1)
        if array_path is not None:
            array.flush()
            del array
            os.replace(tmp_path, array_path)
            ordered = {path: errors[path] for path in paths if path in errors}
            write_atomic(meta_path, json.dumps({"format": CACHE_FORMAT, "shape": list(shape), "errors": ordered}).encode())
            array = np.load(array_path, mmap_mode="r")
    except BaseException:
        if array_path is not None:
            tmp_path.unlink(missing_ok=True)
        raise
    errors = {path: errors[path] for path in paths if path in errors}
    return DecodedPixels(key, list(paths), array, errors, False, time.perf_counter() - start)


def _load_cached(array_path: Path, meta_path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, dict[str, str]] | None:
    if not (array_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        array = np.load(array_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT or tuple(array.shape) != shape or array.dtype != np.uint8:
        return None
    return array, dict(meta.get("errors", {}))
