"""Decode many photos on a few threads, in order, skipping the ones that cannot be read.

The kit's one photo decoder: the runner's batch classifier, the converter's
calibration and accuracy gate and training's pixel cache all decode through
:func:`decode_photos` (or :func:`decode_photo` for one), so they see the same
pixels (:func:`edge_runner.core.image.preprocess`) and the same skip messages.
Pillow releases the GIL while it decodes and resizes, so threads scale over
cores; at most ``2 * workers`` photos are in flight, so memory stays flat for
any number of photos.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np

from .image import ImageError, ImageSource, describe, preprocess
from .spec import InputSpec

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class DecodedPhoto:
    """One photo's outcome: ``pixels`` or an ``error``, never both.

    Attributes:
        source: the photo as named by the caller (its path).
        pixels: ``uint8`` ``(height, width, 3)`` RGB 0–255 from ``preprocess``, or ``None``.
        error: ``"PATH: reason"`` when it could not be decoded, else ``None``.
    """

    source: str
    pixels: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def usable_cores() -> int:
    """The CPU cores this process may use (taskset/cgroup cpusets respected, unlike ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """Threads when the caller does not say: one per usable core, at most 4 (the runner's batch workers too)."""
    return min(4, usable_cores())


def decode_photo(source: ImageSource, spec: InputSpec, *, draft: bool = True) -> DecodedPhoto:
    """Preprocess one photo for ``spec``; an unreadable one gives a ``DecodedPhoto`` with ``error``, never an exception."""
    name = describe(source)
    try:
        return DecodedPhoto(name, pixels=preprocess(source, spec, draft=draft).array)
    except ImageError as exc:
        return DecodedPhoto(name, error=str(exc))
    except MemoryError:
        return DecodedPhoto(name, error=f"{name}: not enough memory to decode it")


def decode_photos(
    sources: Sequence[ImageSource], spec: InputSpec, *, draft: bool = True, workers: int | None = None
) -> Iterator[DecodedPhoto]:
    """:func:`decode_photo` for each of ``sources`` on ``workers`` threads, yielded in the order of ``sources``.

    Args:
        sources: photo paths (or bytes).
        spec: the model's input contract (size, resize filter, crop).
        draft: let JPEGs much larger than the input decode at reduced size.
        workers: decoding threads (``None``: :func:`default_workers`; ``0``: the calling thread).
    """
    workers = default_workers() if workers is None else workers
    return map_in_order(lambda source: decode_photo(source, spec, draft=draft), sources, workers=workers,
                        name="edge_runner-decode")


def map_in_order(
    function: Callable[[Item], Outcome], items: Sequence[Item], *, workers: int, name: str = "edge_runner-pool"
) -> Iterator[Outcome]:
    """``function(item)`` for each item on ``workers`` threads, yielded in input order.

    At most ``2 * workers`` items are in flight, so a slow consumer or a long list
    holds little memory. With ``workers <= 0`` or a single item everything runs in
    the calling thread (no pool to start). Closing the generator early (Ctrl-C, a
    consumer that stops) cancels the queued work.
    """
    if workers <= 0 or len(items) <= 1:
        for item in items:
            yield function(item)
        return
    from concurrent.futures import ThreadPoolExecutor  # here: one photo (a cold start) does not pay for the import

    ahead = 2 * workers
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        iterator = iter(items)
        try:
            for item in iterator:
                pending.append(pool.submit(function, item))
                if len(pending) >= ahead:
                    break
            while pending:
                future = pending.popleft()
                for next_item in iterator:
                    pending.append(pool.submit(function, next_item))
                    break
                yield future.result()
        finally:
            for future in pending:
                future.cancel()
