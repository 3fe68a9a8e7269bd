"""Turn a stream of per-frame labels into visits: "a cat arrived at 07:42, left at 07:45".

A classifier answers every frame on its own, and a frame or two in a hundred is
wrong (a blurred paw, a shadow). :class:`VisitTracker` smooths that out:

* a label of interest becomes *present* once it has won at least ``k`` of the
  last ``n`` classified frames (so with ``k >= 2`` one wrong frame never opens a visit);
* a present label is *gone* once it has not won any frame for ``hold_s`` seconds
  (so one wrong frame in the middle of a visit never closes it); another label
  can only become present after that, so a cat that the model calls "dog" for a
  few frames stays one visit.

Frames whose label is the contract's background label, ``unknown`` (below the
threshold) or any label that is not of interest count as "nothing". Times are
seconds on the source's clock: the position in a video file, or UNIX time for a
live camera.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np

# Defaults measured in tests/benchmarks/bench_watch.py (see edge_runner/README.md, "Watch a camera"):
# 5 of the last 8 frames at a score of at least 0.8 opens a visit, 2 s without a win closes it.
# A camera shows one scene for hours, so a background the model misreads stays misread frame
# after frame: smoothing alone cannot remove that, a stricter score than a photo's can.
DEFAULT_K = 5
DEFAULT_N = 8
DEFAULT_HOLD_S = 2.0
DEFAULT_MIN_SCORE = 0.8

ARRIVED, LEFT = "arrived", "left"


@dataclass(frozen=True)
class Event:
    """One arrival or departure.

    Attributes:
        event: ``"arrived"`` or ``"left"``.
        label: the label of interest, e.g. ``"cat"``.
        visit: a number shared by a visit's ``arrived`` and ``left`` events (1, 2, …).
        start: when the label was first seen in this visit (seconds; see ``clock``).
        end: when it was last seen (``left`` only; ``None`` for ``arrived``).
        duration_s: ``end - start`` (``left``), else the time seen so far.
        peak_score, mean_score: its best and mean score (0–1) over the frames it won.
        frames: classified frames the label won during the visit (so far).
        clock: ``"unix"`` (live: ``start``/``end`` are UNIX times) or ``"video"``
            (seconds from the start of the file).
        time: when the event was emitted, ISO 8601 with the local UTC offset.
        source: the camera or file it came from.
        snapshot: file name of the visit's best frame in the snapshot folder, or ``None``.
        strip: ``left`` only: file name of thumbnails spread over the visit, or ``None``.
    """

    event: str
    label: str
    visit: int
    start: float
    end: float | None
    duration_s: float
    peak_score: float
    mean_score: float
    frames: int
    clock: str = "unix"
    time: str = ""
    source: str = ""
    snapshot: str | None = None
    strip: str | None = None
    #: the visit's best frame so far (RGB ``uint8``); not part of the JSON.
    frame: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "frame"}
        for key in ("start", "end", "duration_s"):
            if data[key] is not None:
                data[key] = round(data[key], 3)
        data["peak_score"] = round(self.peak_score, 4)
        data["mean_score"] = round(self.mean_score, 4)
        return data

    def describe(self) -> str:
        """A line for a person: ``07:42:13  cat arrived (97%)`` / ``… cat left after 3 min 2 s (12 frames)``."""
        when = format_clock(self.end if self.event == LEFT and self.end is not None else self.start, self.clock)
        if self.event == ARRIVED:
            text = f"{when}  {self.label} arrived ({self.peak_score * 100:.0f}%)"
        else:
            text = (
                f"{when}  {self.label} left after {format_duration(self.duration_s)} "
                f"({self.frames} frames, best {self.peak_score * 100:.0f}%)"
            )
        return text + (f"  [{self.snapshot}]" if self.snapshot else "")


def format_clock(t: float, clock: str) -> str:
    """``HH:MM:SS`` local time for a UNIX time; ``M:SS.s`` into the video for a file position."""
    if clock == "video":
        minutes, seconds = divmod(max(t, 0.0), 60)
        return f"{int(minutes)}:{seconds:04.1f}"
    return time.strftime("%H:%M:%S", time.localtime(t))


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@dataclass
class _Visit:
    label: str
    number: int
    start: float
    last_seen: float
    # A count and a sum, not a list: a visit may last hours at 15 frames a second.
    frames: int = 0
    score_sum: float = 0.0
    best_score: float = -1.0
    best_frame: np.ndarray | None = None
    # A visit its confirm() refused (a second opinion saw no pet): followed like any other, so its frames do not
    # open it again at once, but it makes no event.
    silent: bool = False

    def add(self, t: float, score: float, frame: np.ndarray | None) -> bool:
        """Count one won frame; ``True`` when it is the best so far."""
        self.last_seen = max(self.last_seen, t)
        self.frames += 1
        self.score_sum += score
        if score > self.best_score:
            self.best_score, self.best_frame = score, frame
            return True
        return False


@dataclass(frozen=True)
class _Seen:
    t: float
    label: str | None  # None: nothing of interest in this frame
    score: float
    frame: np.ndarray | None


class VisitTracker:
    """Smooths per-frame labels into ``arrived``/``left`` :class:`Event` objects.

    Args:
        is_interest: ``label -> bool``, e.g. ``InputSpec.is_detection``.
        k, n: a label is present once it won ``k`` of the last ``n`` frames (``2 <= k <= n``).
        hold_s: a present label is gone after this many seconds without a win (> 0).
        min_score: a frame counts for its label only at this score (0–1) or above; below it, as nothing.
        clock: ``"unix"`` or ``"video"`` (copied into every event).
        source: the source's name (copied into every event).
        confirm: ``(label, best frame so far) -> bool``, asked once as a visit would arrive (``None``: never asked);
            ``False`` makes the visit silent: it is followed until it leaves, with no event (``watch --looks-like-veto``).
    """

    def __init__(
        self,
        is_interest: Callable[[str], bool],
        *,
        k: int = DEFAULT_K,
        n: int = DEFAULT_N,
        hold_s: float = DEFAULT_HOLD_S,
        min_score: float = 0.0,
        clock: str = "unix",
        source: str = "",
        confirm: Callable[[str, np.ndarray | None], bool] | None = None,
    ) -> None:
        if not 2 <= k <= n:
            raise ValueError(f"k and n must satisfy 2 <= k <= n (one frame must never make a visit), received k={k}, n={n}")
        if hold_s <= 0:
            raise ValueError(f"hold_s must be > 0, received {hold_s}")
        self.is_interest = is_interest
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be from 0 to 1, received {min_score}")
        self.k, self.n, self.hold_s, self.min_score = k, n, hold_s, min_score
        self.clock, self.source = clock, source
        self.confirm = confirm
        self.silenced = 0  # visits confirm() refused
        self._window: deque[_Seen] = deque(maxlen=n)
        self._visit: _Visit | None = None
        self._numbers = itertools.count(1)
        self.frames = 0

    @property
    def current(self) -> str | None:
        """The label present now, or ``None`` (also during a silent visit)."""
        return self._visit.label if self._visit and not self._visit.silent else None

    @property
    def best_frame(self) -> np.ndarray | None:
        """The open visit's best frame so far (RGB ``uint8``), or ``None``."""
        return self._visit.best_frame if self._visit and not self._visit.silent else None

    def update(self, t: float, label: str, score: float, frame: np.ndarray | None = None) -> list[Event]:
        """Add one classified frame taken at ``t`` (seconds); returns the events it causes (usually none).

        ``frame`` (RGB ``uint8``) is kept by reference only while it may become a visit's best frame.
        """
        self.frames += 1
        counts = self.is_interest(label) and score >= self.min_score
        seen = _Seen(t, label if counts else None, float(score), frame)
        self._window.append(seen)
        events: list[Event] = []
        visit = self._visit
        if visit is not None and seen.label == visit.label:
            visit.add(t, seen.score, None if visit.silent else frame)  # a silent visit keeps no frame
            return events
        if visit is not None:
            if t - visit.last_seen < self.hold_s:
                # Another label winning frames does not end a visit: a cat the model calls "dog"
                # for a few frames is still one visit. It can start once this one is gone.
                return events
            events += self._close(visit)
        winner = self._winner()
        if winner is not None:
            events += self._open(winner)
        return events

    def tick(self, t: float) -> list[Event]:
        """No new frame, but time passed (a stalled camera): closes a visit whose hold time ran out."""
        visit = self._visit
        if visit is not None and t - visit.last_seen >= self.hold_s:
            return self._close(visit)
        return []

    def finish(self) -> list[Event]:
        """The source ended: close an open visit with a ``left`` event at its last sighting."""
        visit = self._visit
        self._window.clear()
        return self._close(visit) if visit is not None else []

    # -- internals -------------------------------------------------------------

    def _winner(self) -> str | None:
        counts: dict[str, int] = {}
        for seen in self._window:
            if seen.label is not None:
                counts[seen.label] = counts.get(seen.label, 0) + 1
        best = max(counts.items(), key=lambda item: item[1], default=None)
        return best[0] if best is not None and best[1] >= self.k else None

    def _open(self, label: str) -> list[Event]:
        won = [seen for seen in self._window if seen.label == label]
        visit = _Visit(label, 0, start=won[0].t, last_seen=won[0].t)
        for seen in won:
            visit.add(seen.t, seen.score, seen.frame)
        self._visit = visit
        if self.confirm is not None and not self.confirm(label, visit.best_frame):
            visit.silent, visit.best_frame = True, None
            self.silenced += 1
            return []
        visit.number = next(self._numbers)
        return [self._event(ARRIVED, visit)]

    def _close(self, visit: _Visit) -> list[Event]:
        self._visit = None
        # Frames of the closed visit must not reopen it at once.
        self._window = deque((s for s in self._window if s.label != visit.label), maxlen=self.n)
        return [] if visit.silent else [self._event(LEFT, visit)]

    def _event(self, kind: str, visit: _Visit) -> Event:
        return Event(
            event=kind,
            label=visit.label,
            visit=visit.number,
            start=visit.start,
            end=visit.last_seen if kind == LEFT else None,
            duration_s=visit.last_seen - visit.start,
            peak_score=visit.best_score,
            mean_score=float(visit.score_sum / visit.frames),
            frames=visit.frames,
            clock=self.clock,
            time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            source=self.source,
            frame=visit.best_frame,
        )
