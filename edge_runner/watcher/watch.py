"""``python -m edge_runner watch --camera SOURCE``: report when a cat or a dog comes and goes.

Reads frames from the same sources as ``--camera``. A video file is processed
frame by frame at the file's own time stamps and the command exits at its end;
a live camera or stream (or a file with ``--realtime``) is read by a thread
that keeps only the newest frame, so the classifier always works on the
present and a slow board drops stale frames instead of falling behind.
Every classified frame goes to a :class:`~edge_runner.watcher.recorder.Recorder`
(smoothing, snapshots, outputs, actions). With ``--looks-like C --looks-like-veto P`` a second classifier is
asked once per visit, as it would arrive, on its best frame so far: a visit it does not back (a raccoon the
model calls a cat) makes no event and is said on stderr.

Exit status: 0 the source ended normally (or Ctrl-C/SIGTERM), 1 the camera
failed, 2 usage or model error; errors are ``edge_runner watch: error: …``
(the conventions of :mod:`edge_runner.common.console`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..common.argtypes import positive_int
from ..common.console import (DEFAULT_CAMERA, EXIT_FAILED, EXIT_OK, WATCH_PROG, Parser, UsageError, parse_args, print_error,
                              print_warning, report_error)
from ..core.companion_flags import add_companion_arguments, companion_from_args
from ..core.loading import add_model_arguments, load_classifier, resolve_model
from .camera import FrameSource, open_camera
from .frames import LatestFrame, classify_frames, file_frames
from .settings import WatchError, add_watch_arguments, build_recorder, settings_from_args, visit_threshold, why_no_events

logger = logging.getLogger(__name__)


@dataclass
class WatchStats:
    """What the loop did: frames read, classified and dropped (stale), wall and CPU seconds."""

    classified: int = 0
    dropped: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    end_reason: str = ""

    @property
    def classified_per_s(self) -> float:
        return self.classified / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        """CPU time over wall time (1.0 = one core busy all the time)."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


def run_watch(
    classifier: Any, source: FrameSource, recorder: Any, *, live: bool, pace_fps: float | None = None,
    threshold: float | None = None, max_frames: int | None = None, stats: WatchStats | None = None,
) -> WatchStats:
    """Classify frames from ``source`` into ``recorder`` until the source ends or ``max_frames``.

    An open visit is closed (a ``left`` event) when the loop ends for any reason,
    including ``KeyboardInterrupt``, which is then re-raised.
    """
    stats = stats if stats is not None else WatchStats()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    reader = LatestFrame(source, pace_fps=pace_fps) if live else None
    frames = reader if reader is not None else file_frames(source)
    try:
        for result in classify_frames(  # a stalled camera still lets a visit end: on_idle ticks the clock
            classifier, frames, max_frames=max_frames, top_k=1, threshold=threshold,
            on_idle=lambda: recorder.tick(time.time()),
        ):
            # The top label before the threshold, as serve --camera does: the tracker applies its own.
            prediction = result.prediction
            recorder.observe(result.item.t, prediction.top_k[0].label if prediction.top_k else prediction.label,
                             prediction.score, result.item.frame)
            stats.classified += 1
    finally:
        if reader is not None:
            reader.stop()
            stats.dropped = reader.dropped
        recorder.finish()
        stats.seconds = time.perf_counter() - wall0
        stats.cpu_seconds = time.process_time() - cpu0
    return stats


# -- command line --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edge_runner watch",
        error_prog=WATCH_PROG,
        description="Watch a camera or a video and report when a label of interest arrives and leaves "
        "(events with snapshots, to the terminal, a file, a command, a webhook and MQTT).",
        epilog="Exit status: 0 the source ended (or Ctrl-C), 1 the camera failed, 2 usage or model error.",
    )
    parser.add_argument(
        "--camera", nargs="?", const=DEFAULT_CAMERA, default=DEFAULT_CAMERA, metavar="SOURCE",
        help="no value or 0 = the default camera (also without --camera), 1 = the second, or a video file / stream URL",
    )
    parser.add_argument("--json", action="store_true", help="print each event as one JSON object per line")
    parser.add_argument(
        "--realtime", action="store_true",
        help="play a video file at its own frame rate like a live camera (newest frame only; drops what the model cannot keep up with)",
    )
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N classified frames")
    parser.add_argument(
        "--deploy-dir", type=Path, metavar="DIR",
        help="watch with DIR's current model (the folder of `serve --deploy-dir DIR`) instead of --model, "
        "and switch to each new one within a few seconds, without a restart",
    )
    add_model_arguments(parser)
    add_watch_arguments(parser)
    add_companion_arguments(parser)
    return parser


def check_companion_flags(args: argparse.Namespace) -> None:
    """``watch`` takes ``--looks-like`` for its veto only: a visit the companion does not back makes no event."""
    if args.looks_like_rescue is not None or args.looks_like_rescue_as is not None:
        raise UsageError("--looks-like-rescue applies to the runner's photos and serve's uploads, not to watch")
    if args.looks_like is not None and args.looks_like_veto is None:
        raise UsageError("watch uses --looks-like only to confirm a visit: add --looks-like-veto P (a visit the "
                         "companion does not back then makes no event)")


def second_opinion(companion: Any) -> Callable[[str, np.ndarray | None], bool]:
    """A :class:`~edge_runner.watcher.visits.VisitTracker` ``confirm``: the companion runs once on the best frame of
    a visit about to arrive, and a visit its veto turns down is said on stderr and makes no event."""

    def confirm(label: str, frame: np.ndarray | None) -> bool:
        if frame is None:
            return True
        probabilities = companion.probabilities(frame)
        if not companion.vetoes(probabilities):
            return True
        looks = companion.name(probabilities)
        print(f"{WATCH_PROG}: a {label} visit is not reported: the companion gives its classes "
              f"{companion.veto.mass(probabilities) * 100:.0f}%" + (f" (looks like: {looks.text()})" if looks else ""),
              file=sys.stderr, flush=True)
        return False

    return confirm


def _model_path(args: argparse.Namespace) -> Path:
    """``--deploy-dir``'s current model when it has one (said on stderr), else ``--model`` (or its defaults)."""
    if args.deploy_dir is not None:
        from ..core.slot import DeployDir

        entry, warnings = DeployDir(args.deploy_dir, create=False).startup()
        for line in warnings:
            print_warning(WATCH_PROG, line)
        if entry is not None:
            print(f"watching with the deployed model {args.deploy_dir / entry.file} (sha256 {entry.sha256})", file=sys.stderr)
            return args.deploy_dir / entry.file
    return resolve_model(args.model)


def main(argv: Sequence[str] | None = None) -> int:
    """``watch``'s entry point; returns the exit status."""
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    with _log_to_stderr():
        return _main(parser, args)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        classifier = load_classifier(_model_path(args), args.threads, args.runtime, args.verbose, prog=WATCH_PROG)
        spec = classifier.spec
        reason = why_no_events(settings, spec, classifier.path.name)
        if reason is not None:
            raise UsageError(reason)
        check_companion_flags(args)
        companion = companion_from_args(args, runtime=classifier.runtime, threads=args.threads)
        source = open_camera(args.camera, size=spec.size)
    except Exception as exc:  # usage, watcher, camera and model errors carry their exit status
        return report_error(exc, WATCH_PROG, parser=parser)
    is_file = bool(getattr(source, "is_file", False))
    live = args.realtime or not is_file
    pace = (getattr(source, "frame_rate", lambda: None)() or 30.0) if (is_file and args.realtime) else None
    try:
        recorder = build_recorder(
            settings, spec, source_name=source.name, clock="unix" if live else "video", out=sys.stdout, as_json=args.json,
            model_sha256=classifier.sha256,
        )
    except WatchError as exc:
        source.close()
        return report_error(exc, WATCH_PROG)
    if companion is not None:
        recorder.tracker.confirm = second_opinion(companion)
    if args.verbose:
        print(f"watching {source.name} ({'live, newest frame' if live else 'every frame of the file'}); "
              f"interest: {', '.join(spec.interest_labels)}; a visit needs {settings.min_wins} of {settings.window} frames "
              f"at a score of at least {visit_threshold(settings, spec):g}", file=sys.stderr)
    model = classifier
    if args.deploy_dir is not None:  # follow the model serve --deploy-dir switches to (edge_runner.watcher.follow)
        from ..core.slot import DeployDir
        from .follow import FollowedModel

        model = FollowedModel(DeployDir(args.deploy_dir, create=False), classifier, settings, recorder).start()
    stats = WatchStats()
    status = EXIT_OK
    previous = _terminate_as_interrupt()
    try:
        with source:
            run_watch(model, source, recorder, live=live, pace_fps=pace, threshold=visit_threshold(settings, spec),
                      max_frames=args.max_frames, stats=stats)
        reason = getattr(source, "end_reason", None) or ""
        if args.max_frames is not None and stats.classified >= args.max_frames:
            stats.end_reason = f"--max-frames {args.max_frames}"
        elif is_file and stats.classified:
            stats.end_reason = reason or "end of video"
        else:
            print_error(WATCH_PROG, f"{source.name}: {reason or 'no more frames'}")
            status = EXIT_FAILED
    except KeyboardInterrupt:
        stats.end_reason = "interrupted"
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if model is not classifier:
            model.stop()
        recorder.close()
    print(
        f"{source.name}: {stats.classified} frames classified in {stats.seconds:.1f} s ({stats.classified_per_s:.1f}/s, "
        f"{stats.dropped} stale dropped, CPU {stats.cpu_share * 100:.0f}% of one core), {recorder.emitted} events"
        + (f", {recorder.tracker.silenced} visits vetoed" if companion is not None else "")
        + (f" ({stats.end_reason})" if stats.end_reason else ""),
        file=sys.stderr, flush=True,
    )
    return status


class _LowerLevel(logging.Formatter):
    """``edge_runner watch: warning: …`` like the rest of the watcher's messages."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{WATCH_PROG}: {record.levelname.lower()}: {record.getMessage()}"


@contextlib.contextmanager
def _log_to_stderr():
    """The package's warnings (a full disk, a dead broker) as ``edge_runner watch: warning: …`` lines on stderr."""
    package = logging.getLogger("edge_runner")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowerLevel())
    package.addHandler(handler)
    saved = package.level
    if package.getEffectiveLevel() > logging.WARNING or package.level == logging.NOTSET:
        package.setLevel(logging.WARNING)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(saved)


def _terminate_as_interrupt():
    """SIGTERM (systemd stop) ends the loop like Ctrl-C, so an open visit still gets its ``left``."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, on_term)
