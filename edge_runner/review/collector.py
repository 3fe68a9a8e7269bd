"""Which frames a user is asked about: the collector policy that fills the review queue.

The watcher's :class:`~edge_runner.watcher.recorder.Recorder` hands every classified frame to
:meth:`ReviewCollector.observe` and every finished visit to :meth:`ReviewCollector.visit_left`.
Three kinds of frames go in:

* ``visit`` (and ``strip``): each visit's best frame, and its thumbnail strip when the watcher made
  one; frames of one visit share the group ``visit-<unix start>-<n>``.
* ``close``: outside a visit, a frame whose top label is a label of interest with a score within
  ``close_margin`` of the visit threshold (the "almost a visit" frames): at most ``close_per_hour``
  in any hour, at least ``min_gap_s`` apart, so one dusk does not fill the queue with one picture.
* ``quiet``: outside a visit, a frame where nothing was seen: ``quiet_per_hour`` an hour (one per
  ``3600 / quiet_per_hour`` seconds), so the user can also confirm what "nothing" looks like.

Close and quiet frames share one group per 10-minute window (``t-YYYYmmdd-HHMM``). Rates run on the
source's clock (video position for a file, UNIX time for a camera); records carry wall-clock times.
``model_sha256`` is the model in force: :meth:`set_model` changes it (a model swapped at run time).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import numpy as np

from .queue import ReviewQueue
from .record import encode_jpeg, visit_group, window_group

logger = logging.getLogger(__name__)

DEFAULT_CLOSE_PER_HOUR = 12
DEFAULT_QUIET_PER_HOUR = 4
DEFAULT_CLOSE_MARGIN = 0.15
CLOSE_MIN_GAP_S = 60.0


class ReviewCollector:
    """Decides which frames go into ``queue`` and writes them.

    Args:
        queue: where records go.
        spec: the model's contract (labels, background label, ``is_detection``).
        threshold: the visit threshold (0-1): a frame counts for a visit at this score or above.
        model_sha256: hex SHA-256 of the model in force (``Classifier.sha256``).
        clock: ``"unix"`` (times are UNIX times) or ``"video"`` (seconds into a file).
        close_per_hour, quiet_per_hour: rates (0: none of that kind).
        close_margin: how close (0-1) to ``threshold`` a score must be to be "close".
        min_gap_s: the least time between two close frames.
    """

    def __init__(
        self, queue: ReviewQueue, spec: Any, *, threshold: float, model_sha256: str = "", clock: str = "unix",
        close_per_hour: int = DEFAULT_CLOSE_PER_HOUR, quiet_per_hour: int = DEFAULT_QUIET_PER_HOUR,
        close_margin: float = DEFAULT_CLOSE_MARGIN, min_gap_s: float = CLOSE_MIN_GAP_S,
    ) -> None:
        if close_per_hour < 0 or quiet_per_hour < 0:
            raise ValueError(f"rates must be >= 0, received {close_per_hour} close and {quiet_per_hour} quiet per hour")
        if not 0.0 <= close_margin <= 1.0:
            raise ValueError(f"--review-close-margin must be from 0 to 1, received {close_margin}")
        self.queue = queue
        self.threshold = threshold
        self.clock = clock
        self.close_per_hour, self.quiet_per_hour = close_per_hour, quiet_per_hour
        self.close_margin, self.min_gap_s = close_margin, min_gap_s
        self.set_model(model_sha256, spec)
        self._offset: float | None = None  # wall time minus source time
        self._close_times: deque[float] = deque()
        self._next_quiet: float | None = None
        self._visit_best = (-1.0, "")  # the open visit's best score and the model that gave it
        self.added: dict[str, int] = {"visit": 0, "strip": 0, "close": 0, "quiet": 0}

    def set_model(self, model_sha256: str, spec: Any) -> None:
        """The model now in force (its hash and contract) for the frames classified from now on."""
        self.model_sha256, self.spec = str(model_sha256), spec

    def unix(self, t: float) -> float:
        """A source time as UNIX time (a video position is counted from when the collector saw its first frame)."""
        if self._offset is None:
            self._offset = 0.0 if self.clock == "unix" else time.time() - t
        return t + self._offset

    # -- the frame stream -----------------------------------------------------------------

    def observe(self, t: float, label: str, score: float, frame: np.ndarray | None, *, visit_label: str | None = None) -> str | None:
        """One classified frame (top label before any threshold, its score 0-1, RGB ``uint8``) at source time ``t``.

        ``visit_label``: the label of the visit open after this frame, or ``None``. Returns the kind of
        record made ("close", "quiet") or ``None``.
        """
        unix_t = self.unix(t)
        if visit_label is not None:
            if label == visit_label and score > self._visit_best[0]:
                self._visit_best = (float(score), self.model_sha256)
            return None
        if frame is None:
            return None
        interest = self.spec.is_detection(label)
        if interest and abs(score - self.threshold) <= self.close_margin:
            return self._close(t, unix_t, label, score, frame)
        if (not interest or score < self.threshold - self.close_margin) and self.quiet_per_hour:
            if self._next_quiet is None or t >= self._next_quiet:
                self._next_quiet = t + 3600.0 / self.quiet_per_hour
                return self._add("quiet", frame, unix_t, window_group(unix_t), label, score)
        return None

    def _close(self, t: float, unix_t: float, label: str, score: float, frame: np.ndarray) -> str | None:
        times = self._close_times
        while times and t - times[0] >= 3600.0:
            times.popleft()
        if len(times) >= self.close_per_hour or (times and t - times[-1] < self.min_gap_s):
            return None
        times.append(t)
        return self._add("close", frame, unix_t, window_group(unix_t), label, score)

    def visit_left(self, *, visit: int, label: str, start: float, peak_score: float, frame: np.ndarray | None,
                   strip: np.ndarray | None = None) -> list[dict]:
        """A visit ended: its best frame (and strip) go in, grouped together; returns the records made."""
        score, sha = self._visit_best
        self._visit_best = (-1.0, "")
        group = visit_group(self.unix(start), visit)
        made = []
        for kind, image in (("visit", frame), ("strip", strip)):
            if image is not None:
                record = self._add(kind, image, time.time(), group, label, peak_score, sha or None, record=True)
                if record is not None:
                    made.append(record)
        return made

    def _add(self, kind: str, frame: np.ndarray, unix_t: float, group: str, label: str, score: float,
             sha: str | None = None, record: bool = False):
        try:
            jpeg = encode_jpeg(frame)
        except (ValueError, TypeError, OSError) as exc:
            logger.warning("review: %s frame not encoded (%s)", kind, exc)
            return None
        made = self.queue.add(
            kind, jpeg, unix_t, group=group, model_label=label, model_score=score, model_sha256=sha or self.model_sha256,
            labels=tuple(self.spec.labels), background_label=self.spec.background_label,
        )
        if made is not None:
            self.added[kind] += 1
        return made if record else (kind if made is not None else None)
