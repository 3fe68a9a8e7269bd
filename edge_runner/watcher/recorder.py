"""Where a watcher's events go: snapshots, the terminal, an events file, actions and the web page.

:class:`Recorder` takes classified frames, asks a
:class:`~edge_runner.watcher.visits.VisitTracker` for events, and for each event: saves
(or improves) the visit's snapshot, prints it (JSON or a readable line),
appends it to ``--events FILE``, keeps it in a short in-memory list for the
web page, and hands it to the action workers (command, webhook, MQTT), which
run on their own threads. With a review collector (``--review-dir``, :mod:`edge_runner.review`)
it also hands it every frame and every finished visit (best frame and strip). Everything here that touches the disk survives an
``OSError`` (a full SD card): it is reported and the watcher goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

import numpy as np

from .notify import ActionWorker
from .snapshots import SnapshotStore
from .strip import ThumbnailStrip
from .visits import ARRIVED, LEFT, Event, VisitTracker

logger = logging.getLogger(__name__)

RECENT_EVENTS = 200


class Recorder:
    """Routes a tracker's events to every configured output.

    Args:
        tracker: the smoothing state machine.
        snapshots: where best frames go, or ``None``.
        events_path: JSON-lines file appended to, or ``None``.
        out: where events are printed (``None``: not printed).
        as_json: one JSON object per line instead of a readable line.
        actions: workers that each get every event's dict.
        mqtt: an :class:`~edge_runner.watcher.mqtt.MqttPublisher` (its own network thread), or ``None``.
        strip_frames: with ``snapshots``, also save a strip of this many thumbnails spread over each
            visit (``<snapshot>-strip.jpg``, named in the ``left`` event); 0: none.
        review: a :class:`~edge_runner.review.collector.ReviewCollector` (``--review-dir``), or ``None``;
            ``recorder.review.set_model(sha256, spec)`` names a model swapped in at run time.
    """

    def __init__(
        self, tracker: VisitTracker, *, snapshots: SnapshotStore | None = None, events_path: Path | None = None,
        out: TextIO | None = sys.stdout, as_json: bool = False, actions: Iterable[ActionWorker] = (), mqtt: Any = None,
        strip_frames: int = 0, review: Any = None,
    ) -> None:
        self.tracker = tracker
        self.snapshots = snapshots
        self.events_path = Path(events_path) if events_path is not None else None
        self.out, self.as_json = out, as_json
        self.actions = list(actions)
        self.mqtt = mqtt
        self.recent: deque[dict] = deque(maxlen=RECENT_EVENTS)
        self.emitted = 0
        self.write_failures = 0
        self._lock = threading.Lock()
        self._snapshot_names: dict[int, tuple[str, float]] = {}  # visit -> (name, score saved)
        self.last_label: str | None = None
        self.last_score = 0.0
        self.strip_frames = strip_frames if snapshots is not None else 0
        self._strip: ThumbnailStrip | None = None  # the open visit's thumbnails
        self._strip_image: np.ndarray | None = None  # the last finished visit's strip, for the review queue
        self.review = review

    # -- input ------------------------------------------------------------------------

    def observe(self, t: float, label: str, score: float, frame: np.ndarray | None = None) -> list[Event]:
        """One classified frame at ``t`` seconds; returns the events it caused, already recorded."""
        self.last_label, self.last_score = label, float(score)
        events = self._record(self.tracker.update(t, label, score, frame))
        # The visitor as the tracker counts it (its label at the visit threshold), not the empty scene of the hold time.
        if self._strip is not None and label == self.tracker.current and score >= self.tracker.min_score:
            self._strip.offer(t, frame)
        if self.review is not None:
            self.review.observe(t, label, score, frame, visit_label=self.tracker.current)
        return events

    def switch_model(self, is_interest: Callable[[str], bool], min_score: float, labels: Sequence[str], *,
                     model_sha256: str | None = None, spec: Any = None) -> None:
        """A new model answers from the next frame on: its labels of interest and visit threshold (0–1).

        An open visit goes on (it ends as usual when its label stops winning); MQTT discovery is
        re-published when the labels of interest changed; the review queue's records name the new
        model (``model_sha256`` and its contract ``spec``) from the next frame on.
        """
        self.tracker.is_interest, self.tracker.min_score = is_interest, min_score
        if self.review is not None and model_sha256 is not None:
            self.review.set_model(model_sha256, spec)
        if self.mqtt is not None:
            self.mqtt.set_labels(labels)

    def tick(self, t: float) -> list[Event]:
        return self._record(self.tracker.tick(t))

    def finish(self) -> list[Event]:
        """The source ended: close an open visit."""
        return self._record(self.tracker.finish())

    def close(self) -> None:
        """Let the action workers finish their queues (bounded), then disconnect MQTT."""
        for worker in self.actions:
            worker.close()
        if self.mqtt is not None:
            self.mqtt.close()

    def state(self) -> dict:
        """What the web page shows: the label present now and the recent events (newest first)."""
        with self._lock:
            events = list(self.recent)[::-1]
        return {"present": self.tracker.current, "last_label": self.last_label, "events": events}

    # -- output -----------------------------------------------------------------------

    def _record(self, events: list[Event]) -> list[Event]:
        recorded = []
        for event in events:
            snapshot = self._snapshot(event)
            event = replace(event, snapshot=snapshot, strip=self._thumbnails(event, snapshot))
            data = event.to_dict()
            with self._lock:
                self.recent.append(data)
                self.emitted += 1
            self._print(event, data)
            self._append(data)
            for worker in self.actions:
                worker.submit(data)
            if self.mqtt is not None:
                self.mqtt.publish_event(data)
            if self.review is not None and event.event == LEFT:
                self.review.visit_left(visit=event.visit, label=event.label, start=event.start, peak_score=event.peak_score,
                                       frame=event.frame, strip=self._strip_image)
            self._strip_image = None
            recorded.append(event)
        return recorded

    def _snapshot(self, event: Event) -> str | None:
        """Save the visit's best frame: at arrival, and again at departure if a better frame came."""
        if self.snapshots is None or event.frame is None:
            saved = self._snapshot_names.get(event.visit)
            return saved[0] if saved else None
        name, saved_score = self._snapshot_names.get(event.visit, (None, -1.0))
        if name is None:
            name = self.snapshots.make_name(event.label, event.visit)
        if event.peak_score > saved_score or self.snapshots.path_for(name) is None:
            if self.snapshots.save(name, event.frame) is None:
                return None  # not written (full disk …): already logged; the watcher goes on
            saved_score = event.peak_score
        self._snapshot_names[event.visit] = (name, saved_score)
        if event.event != ARRIVED:
            self._snapshot_names.pop(event.visit, None)
        return name

    def _thumbnails(self, event: Event, snapshot: str | None) -> str | None:
        """Start the visit's strip at ``arrived``; save it at ``left`` beside ``snapshot`` (returns its file name)."""
        if not self.strip_frames:
            return None
        if event.event == ARRIVED:
            self._strip = ThumbnailStrip(self.strip_frames)
            self._strip.offer(event.start, event.frame)
            return None
        strip, self._strip = self._strip, None
        image = strip.image() if strip is not None and event.event == LEFT else None
        self._strip_image = image
        if image is None:
            return None  # a visit too short for two thumbnails
        if snapshot is not None:
            name = snapshot.removesuffix(".jpg") + "-strip.jpg"
        else:
            name = self.snapshots.make_name(event.label, event.visit, suffix="-strip")
        return self.snapshots.save(name, image)

    def _print(self, event: Event, data: dict) -> None:
        if self.out is None:
            return
        try:
            print(json.dumps(data) if self.as_json else event.describe(), file=self.out, flush=True)
        except BrokenPipeError:
            self.out = None  # the reader went away; events still go everywhere else

    def _append(self, data: dict) -> None:
        if self.events_path is None:
            return
        line = (json.dumps(data) + "\n").encode("utf-8")
        try:
            # One write() per line on an O_APPEND descriptor: a line is never interleaved or half-kept
            # by another appender; a full disk raises here and the line is reported lost.
            fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_END) - written)
                    raise OSError(28, "No space left on device")
            finally:
                os.close(fd)
        except OSError as exc:
            self.write_failures += 1
            logger.warning("--events %s: event not written (%s); the watcher goes on", self.events_path, exc.strerror or exc)
