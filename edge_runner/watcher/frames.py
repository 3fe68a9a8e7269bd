"""The one frame loop: frames in, classified frames out, for ``--camera``, ``watch`` and the web page's live view.

Frames come from a :class:`~edge_runner.watcher.camera.FrameSource` in one of three ways:
:func:`read_frames` (every frame as it is read, stamped with the wall clock),
:func:`file_frames` (every frame of a video file at its own time stamps) or
:class:`LatestFrame` (a reader thread that keeps only the newest frame, so a slow board
drops stale frames instead of falling behind). :func:`classify_frames` classifies them one
by one (``Classifier.classify_image``) and keeps the totals; :class:`FpsMeter` is the one
frames-per-second formula (the live view uses it too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .camera import FrameSource

logger = logging.getLogger(__name__)

FPS_WINDOW = 10


class FpsMeter:
    """Frames per second over the last ``window`` frames (capture to result)."""

    def __init__(self, window: int = FPS_WINDOW, start: float | None = None) -> None:
        self._stamps: deque[float] = deque([] if start is None else [start], maxlen=window + 1)

    def tick(self, now: float | None = None) -> float:
        """Record a frame done at ``now`` (``time.perf_counter()`` by default); return the rate so far."""
        self._stamps.append(time.perf_counter() if now is None else now)
        first, last = self._stamps[0], self._stamps[-1]
        return (len(self._stamps) - 1) / (last - first) if last > first else 0.0

    def reset(self) -> None:
        self._stamps.clear()


@dataclass(frozen=True)
class TimedFrame:
    """A frame and when it was taken: seconds into a video file, or UNIX time for a live source.

    ``frame`` is RGB ``uint8`` ``(H, W, 3)``.
    """

    t: float
    frame: np.ndarray


@dataclass(frozen=True)
class FrameResult:
    """One classified frame.

    Attributes:
        frame: 1-based frame number.
        prediction: the model's ``Prediction`` for it.
        fps: frames per second over the last (up to) ``FPS_WINDOW`` frames, capture to result.
        item: the frame itself and its time stamp.
    """

    frame: int
    prediction: Any
    fps: float
    item: TimedFrame | None = None


@dataclass
class StreamStats:
    """Running totals of a frame loop; ``mean_fps`` covers the whole run.

    ``labels`` counts frames per answered label (including the background label and ``"unknown"``).
    """

    frames: int = 0
    seconds: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)

    @property
    def mean_fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def read_frames(source: FrameSource) -> Iterator[TimedFrame]:
    """Every frame of ``source`` as it is read, stamped with UNIX time, until ``read()`` returns ``None``."""
    while (frame := source.read()) is not None:
        yield TimedFrame(time.time(), frame)


def file_frames(source: FrameSource) -> Iterator[TimedFrame]:
    """Every frame of a video file with its own time stamp (``CAP_PROP_POS_MSEC``).

    When the container has no time stamps, frames are spaced by its frame rate (or 1/30 s).
    """
    period = 1.0 / (getattr(source, "frame_rate", lambda: None)() or 30.0)
    last = None
    while (frame := source.read()) is not None:
        stamp = getattr(source, "position_s", lambda: None)()
        t = stamp if stamp is not None and (last is None or stamp > last) else (0.0 if last is None else last + period)
        last = t
        yield TimedFrame(t, frame)


class LatestFrame:
    """Reads ``source`` on a thread and keeps only the newest frame (older unread ones are dropped).

    ``pace_fps``: read no faster than this (a video file played as if it were a live camera).
    Iterating yields the newest frame, or ``None`` after ``timeout`` s without one (a stalled
    camera), until the source ends.
    """

    def __init__(self, source: FrameSource, *, pace_fps: float | None = None, timeout: float = 1.0) -> None:
        self.source = source
        self.pace_fps = pace_fps
        self.timeout = timeout
        self.read_count = 0
        self.dropped = 0
        self.ended = False
        self._latest: TimedFrame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-watch-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.pace_fps:
                    delay = next_due - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    next_due = max(next_due + 1.0 / self.pace_fps, time.monotonic() - 1.0)
                frame = self.source.read()
                if frame is None:
                    return
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1  # never classified: a newer frame replaced it
                    self._latest = TimedFrame(time.time(), frame)
                    self.read_count += 1
                    self._cond.notify_all()
        except Exception as exc:  # a driver error ends the stream like a drop-out
            logger.warning("%s: reading failed (%s)", getattr(self.source, "name", "camera"), exc)
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def get(self, timeout: float = 1.0) -> TimedFrame | None:
        """The newest unread frame; waits up to ``timeout`` s; ``None`` on timeout or at the end (see ``ended``)."""
        with self._cond:
            if self._latest is None and not self.ended:
                self._cond.wait(timeout)
            item, self._latest = self._latest, None
            return item

    def __iter__(self) -> Iterator[TimedFrame | None]:
        while True:
            item = self.get(self.timeout)
            if item is None and self.ended:
                return
            yield item

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def classify_frames(
    classifier: Any,
    frames: FrameSource | Iterable[TimedFrame | None],
    *,
    max_frames: int | None = None,
    top_k: int = 3,
    threshold: float | None = None,
    stats: StreamStats | None = None,
    on_idle: Callable[[], None] | None = None,
) -> Iterator[FrameResult]:
    """Classify frames until they end or ``max_frames`` were classified.

    ``classifier`` is an :class:`edge_runner.core.model.Classifier`; ``frames`` a
    ``FrameSource`` (read with :func:`read_frames`) or any iterable of :class:`TimedFrame`,
    where ``None`` means "no frame yet" and calls ``on_idle()``. ``stats`` (if given) is
    updated after every frame, so a caller interrupted by Ctrl-C still has the totals.
    """
    stats = stats if stats is not None else StreamStats()
    if max_frames is not None and stats.frames >= max_frames:
        return
    items = read_frames(frames) if hasattr(frames, "read") else frames
    start = time.perf_counter()
    meter = FpsMeter(start=start)
    for item in items:
        if item is None:
            if on_idle is not None:
                on_idle()
            continue
        prediction = classifier.classify_image(item.frame, top_k=top_k, threshold=threshold)
        now = time.perf_counter()
        stats.frames += 1
        stats.seconds = now - start
        stats.labels[prediction.label] += 1
        yield FrameResult(stats.frames, prediction, meter.tick(now), item)
        if max_frames is not None and stats.frames >= max_frames:
            return
