"""The web server's live camera view: one capture loop shared by every viewer.

A background thread reads frames from a :class:`~edge_runner.watcher.camera.FrameSource`,
classifies each one, draws the label, score and frame rate on it with Pillow,
encodes it as JPEG and publishes it. Viewers (the MJPEG stream, snapshots, the
JSON state) only ever read the latest published frame, so ten phones watching
cost one camera, one inference per frame and one JPEG encode per frame.

The loop runs while somebody is watching: after ``idle_after_s`` seconds
without a viewer it closes the camera (freeing it and its LED) and sleeps until
the next one arrives. When the source ends (a video file) or drops out it is
reopened, so a file loops and an unplugged USB camera is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from ..core.companion import LooksLike, Throttle, looks_like_dict
from ..core.model import Classifier, LabelScore, nothing_message
from ..watcher.camera import CameraError, FrameSource
from ..watcher.frames import FpsMeter
from .overlay import annotate, encode_jpeg, message_card

logger = logging.getLogger(__name__)

FPS_WINDOW = 15
# Consecutive ``None`` frames before the source is closed and reopened: one is a
# dropped frame, several in a row are the end of a file or a camera gone away.
MAX_MISSES = 3
RETRY_AFTER_S = 2.0


@dataclass(frozen=True)
class LiveFrame:
    """One published frame.

    Attributes:
        seq: increases by one per published frame (viewers wait for a newer one).
        jpeg: the annotated frame, JPEG bytes; ``b""`` for a frame classified while nobody was watching.
        label, score: the top prediction (score 0–1); ``""`` and 0.0 on an error frame.
        top_k: the best labels with their scores.
        fps: frames per second over the last ``FPS_WINDOW`` frames (capture to publish).
        latency_ms: interpreter time for this frame.
        error: why no camera frame is shown (then ``jpeg`` is a message card), else ``None``.
        detected: whether something of interest was seen (``Prediction.detected``).
        looks_like: what a frame that is not a detection looks like to the ``--looks-like`` companion, or ``None``.
    """

    seq: int
    jpeg: bytes
    label: str
    score: float
    top_k: tuple[LabelScore, ...]
    fps: float
    latency_ms: float
    captured_at: float
    error: str | None = None
    detected: bool = False
    looks_like: LooksLike | None = None


class LiveView:
    """The shared capture loop.

    Args:
        open_source: opens the camera (e.g. ``lambda: open_camera("0")``); called
            again to reopen after the source ends or fails. Raises ``CameraError``.
        classifier: a classifier used by this loop only.
        top_k: labels kept per frame.
        max_fps: upper bound on frames processed per second (a video file would
            otherwise be read as fast as the CPU allows, starving uploads).
        idle_after_s: close the source after this long without a viewer.
        max_width: published frames are scaled down to this width.
    """

    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        classifier: Classifier,
        *,
        top_k: int = 3,
        max_fps: float = 15.0,
        idle_after_s: float = 10.0,
        max_width: int = 640,
        jpeg_quality: int = 80,
        source_name: str = "camera",
        on_frame: Callable[[float, np.ndarray, object], None] | None = None,
    ) -> None:
        if max_fps <= 0:
            raise ValueError(f"max_fps must be > 0, received {max_fps!r}")
        self._open_source = open_source
        self.classifier = classifier
        self.top_k = top_k
        self.max_fps = max_fps
        self.idle_after_s = idle_after_s
        self.max_width = max_width
        self.jpeg_quality = jpeg_quality
        self.source_name = source_name
        # ``on_frame(unix_time, rgb_frame, prediction)`` for every classified frame (the
        # watcher's recorder); with it the loop runs even without a viewer.
        self.on_frame = on_frame
        # The ``--looks-like`` companion, named at most once a second on background frames (set by the service).
        self.looks: Throttle | None = None
        self._cond = threading.Condition()
        self._frame: LiveFrame | None = None
        self._seq = 0
        self._last_demand = float("-inf")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: FrameSource | None = None
        self.frames_processed = 0
        self.reopen_count = 0
        self.running = False  # True while the source is open and frames flow

    # -- viewer side ---------------------------------------------------------

    def touch(self) -> None:
        """Say that somebody is watching: starts (or keeps) the loop running."""
        self._last_demand = time.monotonic()
        self._wake.set()

    def wait_frame(self, after_seq: int = 0, timeout: float = 5.0) -> LiveFrame | None:
        """The latest frame once its ``seq`` is greater than ``after_seq``; ``None`` on timeout or stop."""
        self.touch()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stopping.is_set():
                frame = self._frame
                if frame is not None and frame.seq > after_seq and frame.jpeg:  # b"": classified with nobody watching
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))
        return None

    def latest(self) -> LiveFrame | None:
        return self._frame

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def status(self) -> dict:
        """The JSON state: source, whether frames flow, the last label/score/fps and any error."""
        frame = self._frame
        return {
            "source": self.source_name,
            "model_sha256": self.classifier.sha256,  # the model classifying the frames (it changes on a deploy)
            "running": self.running,
            "frames": self.frames_processed,
            "seq": frame.seq if frame else 0,
            "label": frame.label if frame and not frame.error else None,
            "detected": frame.detected if frame and not frame.error else None,
            # Words for a "nothing here" answer of a model with a background label, else null.
            "nothing": nothing_message(frame.label, self.classifier.spec) if frame and not frame.error else None,
            "looks_like": looks_like_dict(frame.looks_like) if frame else None,  # the companion's answer, else null
            "score": round(frame.score, 6) if frame and not frame.error else None,
            "top_k": [{"label": item.label, "score": round(item.score, 6)} for item in frame.top_k] if frame else [],
            "fps": round(frame.fps, 2) if frame else 0.0,
            "latency_ms": round(frame.latency_ms, 3) if frame else None,
            "error": frame.error if frame else None,
            "age_s": round(time.time() - frame.captured_at, 3) if frame else None,
        }

    # -- loop side -----------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="edgekit-live-view", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop and every viewer to stop, without waiting (safe in a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, close the source and release every waiting viewer."""
        self.request_stop()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Stuck in a driver's read(): closing the capture under it could crash
                # the native library; the daemon thread dies with the process instead.
                logger.warning("live view: %s did not stop within %.0f s", self.source_name, timeout)
                return
        self._close_source()

    def _publish(self, **fields) -> LiveFrame:
        with self._cond:
            self._seq += 1
            frame = LiveFrame(seq=self._seq, captured_at=time.time(), **fields)
            self._frame = frame
            self._cond.notify_all()
        return frame

    def _publish_error(self, message: str) -> None:
        logger.warning("live view: %s", message)
        card = encode_jpeg(message_card(message), self.jpeg_quality)
        self._publish(jpeg=card, label="", score=0.0, top_k=(), fps=0.0, latency_ms=0.0, error=message)

    def _close_source(self) -> None:
        source, self._source = self._source, None
        self.running = False
        if source is not None:
            try:
                source.close()
            except Exception:  # closing a broken camera must not kill the loop
                logger.exception("live view: closing %s failed", self.source_name)

    def _wanted(self) -> bool:
        if self.on_frame is not None:
            return True
        return time.monotonic() - self._last_demand < self.idle_after_s

    def _run(self) -> None:
        meter = FpsMeter(FPS_WINDOW)
        misses = 0
        since_open = 0
        period = 1.0 / self.max_fps
        next_due = 0.0
        while not self._stopping.is_set():
            if not self._wanted():
                if self._source is not None:
                    logger.info("live view: no viewer for %.0f s, closing %s", self.idle_after_s, self.source_name)
                    self._close_source()
                meter.reset()
                self._wake.clear()
                self._wake.wait(1.0)
                continue
            try:
                if self._source is None:
                    self._source = self._open_source()
                    self.source_name = getattr(self._source, "name", self.source_name)
                    self.running = True
                    misses = since_open = 0
                    meter.reset()
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._stopping.wait(delay)
                next_due = time.monotonic() + period
                frame = self._source.read()
                if frame is None:
                    misses += 1
                    if misses >= MAX_MISSES:
                        reason = getattr(self._source, "end_reason", None) or "no frame"
                        is_file = bool(getattr(self._source, "is_file", False))
                        self._close_source()
                        self.reopen_count += 1
                        # A file that played is looped at once; a camera, or a file that
                        # gave nothing, is reported and retried later.
                        if not is_file or since_open == 0:
                            self._publish_error(f"{self.source_name}: {reason}; retrying")
                            self._stopping.wait(RETRY_AFTER_S)
                    continue
                misses = 0
                since_open += 1
                self._process(frame, meter)
            except CameraError as exc:
                self._close_source()
                self._publish_error(f"{exc}; retrying every {RETRY_AFTER_S:.0f} s")
                self._stopping.wait(RETRY_AFTER_S)
            except Exception as exc:  # one bad frame or driver hiccup never ends the live view
                logger.exception("live view: frame failed")
                self._close_source()
                self._publish_error(f"{self.source_name}: {type(exc).__name__}: {exc}")
                self._stopping.wait(RETRY_AFTER_S)
        self._close_source()

    def _process(self, frame: np.ndarray, meter: FpsMeter) -> None:
        prediction = self.classifier.classify_image(frame, top_k=self.top_k)
        if self.on_frame is not None:
            try:
                self.on_frame(time.time(), frame, prediction)
            except Exception:  # the recorder must never stop the live view
                logger.exception("live view: recording the frame failed")
        fps = meter.tick(time.monotonic())
        text = f"{prediction.label} {prediction.score * 100:.1f}%  ·  {fps:.1f} fps"
        looks = self.looks.frame(frame, prediction.detected) if self.looks is not None else None
        message = nothing_message(prediction.label, self.classifier.spec)
        if message is not None:
            text = f"{message}{f' — looks like: {looks.label}' if looks else ''}  ·  {text}"
        # Only a viewer needs the annotated JPEG; the watcher alone (no page open) keeps just the answer.
        viewed = time.monotonic() - self._last_demand < self.idle_after_s
        jpeg = encode_jpeg(annotate(frame, text, max_width=self.max_width), self.jpeg_quality) if viewed else b""
        self.frames_processed += 1
        self._publish(
            jpeg=jpeg,
            label=prediction.label,
            score=prediction.score,
            top_k=prediction.top_k,
            fps=fps,
            latency_ms=prediction.latency_ms,
            detected=prediction.detected,
            looks_like=looks,
        )
