"""Decode every photo once, with the runner's own preprocessing, into a cached array.

Training must see exactly the pixels the runner will see, so each photo goes
through the runner's own decoder (:mod:`edge_runner.core.decoder`:
:func:`edge_runner.core.image.preprocess` on a few threads; Pillow decode, EXIF orientation,
RGB, JPEG draft decode, bilinear resize). The result is cached as ``uint8``
``.npy`` chunks, one per folder (memory-mapped on reuse), each keyed by that folder's
file list, each file's size and modification time, and the input contract's geometry, so a
second run, a ``--resume``, another seed or a retrain that adds a folder (a review export)
decodes only what is new.

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
        array: ``uint8`` ``(N, height, width, 3)`` RGB 0–255 (a memory map when a cache is used);
            rows of unreadable photos are zero.
        errors: ``{path: reason}`` for the photos that could not be decoded.
        from_cache: whether every photo was read from the cache.
        seconds: time spent decoding (or opening the cache).
        chunks: the cache key of each folder's chunk (see :func:`chunk_of_rows`), or ``None`` without a cache.
        chunk_index, chunk_row: ``int64`` ``(N,)``: each row's chunk (into ``chunks``) and its row there.
        decoded: photos decoded by this call (the others came from the cache).
    """

    key: str
    paths: list[str]
    array: np.ndarray
    errors: dict[str, str]
    from_cache: bool
    seconds: float
    chunks: list[str] | None = None
    chunk_index: np.ndarray | None = None
    chunk_row: np.ndarray | None = None
    decoded: int = 0

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


def chunk_of_rows(paths: list[str]) -> list[list[int]]:
    """The rows of ``paths`` grouped by folder (a chunk per folder, in order of first appearance).

    The cache is kept per chunk, keyed by :func:`cache_key` of the chunk's own paths, so a run that adds a folder
    (a review export) or a photo to one folder decodes only that folder's photos again.
    """
    groups: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(os.path.dirname(path), []).append(i)
    return list(groups.values())


def decode_photos(
    paths: list[str],
    spec: InputSpec,
    *,
    cache_dir: Path | None,
    workers: int = 0,
    progress: bool = True,
) -> DecodedPixels:
    """Preprocess ``paths`` as the runner does, reusing the cached chunks (one per folder) that match.

    Args:
        spec: gives the size, resize filter and crop (its labels are not used).
        cache_dir: folder for the ``.npy`` chunks (``None``: keep the array in memory only).
        workers: decoding threads (0: one per CPU). Pillow releases the GIL while
            decoding and resizing, so threads scale.

    A photo that cannot be decoded leaves its row black and is listed in
    ``errors`` with the decoder's ``"PATH: reason"``; it never stops the batch.
    """
    start = time.perf_counter()
    shape = (len(paths), spec.height, spec.width, 3)
    key = cache_key(paths, spec)
    if cache_dir is None:
        array, errors = _decode_into(np.zeros(shape, dtype=np.uint8), paths, spec, workers, progress)
        return DecodedPixels(key, list(paths), array, errors, False, time.perf_counter() - start, decoded=len(paths))
    folder = Path(cache_dir) / "pixels" / "chunks"
    folder.mkdir(parents=True, exist_ok=True)
    groups = chunk_of_rows(paths)
    keys = [cache_key([paths[i] for i in rows], spec) for rows in groups]
    chunk_index = np.zeros(len(paths), dtype=np.int64)
    chunk_row = np.zeros(len(paths), dtype=np.int64)
    for c, rows in enumerate(groups):
        chunk_index[rows], chunk_row[rows] = c, np.arange(len(rows))
    missing = [c for c, k in enumerate(keys) if _load_cached(folder / f"{k}.npy", folder / f"{k}.json",
                                                              (len(groups[c]), *shape[1:])) is None]
    todo = [i for c in missing for i in groups[c]]
    errors: dict[str, str] = {}
    if todo:
        with Progress(len(todo), "decode photos", "photo", enabled=progress) as bar:
            for c in missing:
                chunk_paths = [paths[i] for i in groups[c]]
                errors.update(_write_chunk(folder, keys[c], chunk_paths, spec, workers, bar))
    else:
        log.info("decoded photos: reusing %d cached chunk(s) in %s", len(keys), folder)
    chunks = [_load_cached(folder / f"{k}.npy", folder / f"{k}.json", (len(groups[c]), *shape[1:]))
              for c, k in enumerate(keys)]
    if any(chunk is None for chunk in chunks):
        raise OSError(f"--cache-dir {cache_dir}: a decoded chunk vanished while this run read it")
    for chunk in chunks:
        errors.update(chunk[1])
    if len(chunks) == 1:
        array = chunks[0][0]
    else:
        # The rows in run order: a temporary memory map, removed at once (it lives while mapped).
        tmp_path = folder.parent / f".{key}.{os.getpid()}.tmp.npy"
        array = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=shape)
        tmp_path.unlink()
        for c, rows in enumerate(groups):
            array[rows] = chunks[c][0]
    errors = {path: errors[path] for path in paths if path in errors}
    return DecodedPixels(key, list(paths), array, errors, not todo, time.perf_counter() - start, keys, chunk_index,
                         chunk_row, len(todo))


def _decode_into(array: np.ndarray, paths: list[str], spec: InputSpec, workers: int, bar) -> tuple[np.ndarray, dict[str, str]]:
    """Fill ``array`` (``(len(paths), H, W, 3)``) with the decoded photos; ``bar``: a Progress or a bool."""
    errors: dict[str, str] = {}
    own = isinstance(bar, bool)
    progress = Progress(len(paths), "decode photos", "photo", enabled=bar) if own else bar
    with warnings.catch_warnings():
        # Pillow warns about odd EXIF blocks and huge images; the failures that
        # matter raise, and are listed with their reason.
        warnings.simplefilter("ignore")
        try:
            for index, photo in enumerate(decode_each(paths, spec, workers=workers or os.cpu_count() or 1)):
                if photo.ok:
                    array[index] = photo.pixels
                else:
                    errors[paths[index]] = photo.error  # the row stays black
                progress.update(1)
        finally:
            if own:
                progress.close()
    return array, errors


def _write_chunk(folder: Path, key: str, paths: list[str], spec: InputSpec, workers: int, bar) -> dict[str, str]:
    """Decode ``paths`` into the chunk ``folder/key.npy`` (+ ``.json``, written last); returns the errors."""
    shape = (len(paths), spec.height, spec.width, 3)
    tmp_path = folder / f".{key}.{os.getpid()}.tmp.npy"
    try:
        array = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=shape)
        array, errors = _decode_into(array, paths, spec, workers, bar)
        array.flush()
        del array
        os.replace(tmp_path, folder / f"{key}.npy")
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    ordered = {path: errors[path] for path in paths if path in errors}
    write_atomic(folder / f"{key}.json", json.dumps({"format": CACHE_FORMAT, "shape": list(shape), "errors": ordered}).encode())
    return ordered


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
