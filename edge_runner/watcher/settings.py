"""The watcher's options, shared by ``watch`` and ``serve --camera``, and the recorder they build.

:func:`add_watch_arguments` adds the smoothing, snapshot, events-file and
action flags to a parser; :func:`settings_from_args` checks them into a
:class:`WatchSettings`; :func:`build_recorder` turns that into a
:class:`~edge_runner.watcher.recorder.Recorder` for a model's contract.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..common.argtypes import non_negative_int, positive_float, positive_int, probability
from ..common.console import EXIT_USAGE, print_warning
from ..core.model import threshold_in_force
from ..review.options import ReviewSettings, add_review_arguments, build_collector, review_settings_from_args
from ..review.record import ReviewError
from .notify import COMMAND_TIMEOUT_S, WEBHOOK_RETRIES, WEBHOOK_TIMEOUT_S, ActionWorker, CommandAction, WebhookAction
from .snapshots import DEFAULT_MAX_FILES, DEFAULT_MAX_MB, SnapshotError, SnapshotStore
from .strip import DEFAULT_STRIP_FRAMES
from .visits import DEFAULT_HOLD_S, DEFAULT_K, DEFAULT_MIN_SCORE, DEFAULT_N, VisitTracker


class WatchError(ValueError):
    """Watcher options that cannot work together, or an output that cannot be opened."""

    exit_status = EXIT_USAGE
    show_usage = True


@dataclass(frozen=True)
class WatchSettings:
    """Everything the watcher is told besides the camera and the model (see :func:`add_watch_arguments`)."""

    window: int = DEFAULT_N
    min_wins: int = DEFAULT_K
    hold_s: float = DEFAULT_HOLD_S
    threshold: float | None = None  # None: see visit_threshold()
    snapshots: Path | None = None
    snapshot_max_files: int = DEFAULT_MAX_FILES
    snapshot_max_mb: float = DEFAULT_MAX_MB
    strip_frames: int = DEFAULT_STRIP_FRAMES
    events: Path | None = None
    on_event: str | None = None
    on_event_timeout: float = COMMAND_TIMEOUT_S
    webhook: str | None = None
    webhook_timeout: float = WEBHOOK_TIMEOUT_S
    webhook_retries: int = WEBHOOK_RETRIES
    mqtt: str | None = None
    mqtt_prefix: str | None = None
    ha_discovery_prefix: str | None = "homeassistant"
    review: ReviewSettings | None = None  # --review-dir and its limits (edge_runner.review.options)


class _DeprecatedSpelling(argparse.Action):
    """Store the value; when given as ``--threshold`` (the old spelling) also print a ``PROG: warning:`` line.

    In the runner ``--threshold`` is "below this, unknown"; in ``watch``/``serve`` it was the
    per-frame visit floor, now ``--visit-threshold``, so one flag keeps one meaning.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string == "--threshold":
            print_warning(getattr(parser, "error_prog", parser.prog),
                          "--threshold is deprecated here: use --visit-threshold (same meaning)")
        setattr(namespace, self.dest, values)


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the watcher's flags (smoothing, snapshots, events file, actions) to ``parser``."""
    smooth = parser.add_argument_group(
        "smoothing (a visit starts after K wins at a score of at least T in the last N frames, ends after HOLD s without one)"
    )
    smooth.add_argument("--window", type=positive_int, default=DEFAULT_N, metavar="N", help="frames looked at (default: %(default)s)")
    smooth.add_argument(
        "--min-wins", type=positive_int, default=DEFAULT_K, metavar="K",
        help="frames of the window a label must win to be present, 2..N (default: %(default)s)",
    )
    smooth.add_argument(
        "--hold", type=positive_float, default=DEFAULT_HOLD_S, metavar="SECONDS",
        help="a present label is gone after this long without winning a frame (default: %(default)s)",
    )
    smooth.add_argument(
        "--visit-threshold", "--threshold", dest="visit_threshold", type=probability, default=None, metavar="T",
        action=_DeprecatedSpelling,
        help=f"a frame counts for its label only at this score or above (default: the model's contract threshold "
        f"or {DEFAULT_MIN_SCORE:g}, whichever is higher: a camera sees one scene for hours). "
        "--threshold is the old spelling, accepted with a warning until the next release",
    )
    out = parser.add_argument_group("events and snapshots")
    out.add_argument("--events", type=Path, metavar="FILE", help="append every event to FILE as one JSON object per line")
    out.add_argument("--snapshots", type=Path, metavar="DIR", help="save the best frame of each visit as a JPEG in DIR")
    out.add_argument(
        "--snapshot-max-files", type=positive_int, default=DEFAULT_MAX_FILES, metavar="N",
        help="keep at most N snapshots, removing the oldest (default: %(default)s)",
    )
    out.add_argument(
        "--snapshot-max-mb", type=positive_float, default=DEFAULT_MAX_MB, metavar="MB",
        help="keep at most MB megabytes of snapshots, removing the oldest (default: %(default)s)",
    )
    out.add_argument(
        "--strip-frames", type=non_negative_int, default=DEFAULT_STRIP_FRAMES, metavar="N",
        help="with --snapshots, also save N thumbnails spread over each visit as one JPEG (0: none; default: %(default)s)",
    )
    act = parser.add_argument_group("actions (each on its own thread: never slows the camera)")
    act.add_argument(
        "--on-event", metavar="CMD",
        help="run CMD for every event: the event JSON on stdin and as EDGEKIT_EVENT_* environment variables",
    )
    act.add_argument("--on-event-timeout", type=positive_float, default=COMMAND_TIMEOUT_S, metavar="SECONDS",
                     help="kill the command after this long (default: %(default)s)")
    act.add_argument("--webhook", metavar="URL", help="POST every event as JSON to URL")
    act.add_argument("--webhook-timeout", type=positive_float, default=WEBHOOK_TIMEOUT_S, metavar="SECONDS",
                     help="timeout of one POST (default: %(default)s)")
    act.add_argument("--webhook-retries", type=non_negative_int, default=WEBHOOK_RETRIES, metavar="N",
                     help="retries after a failed POST, waiting 1, 2, 4 … s (default: %(default)s)")
    act.add_argument(
        "--mqtt", metavar="HOST[:PORT]",
        help="publish events and the current state to this MQTT broker (port 1883 by default; "
        "user and password from $EDGEKIT_MQTT_USERNAME / $EDGEKIT_MQTT_PASSWORD)",
    )
    act.add_argument("--mqtt-prefix", metavar="TOPIC", help="topic prefix (default: edgekit/<hostname>)")
    act.add_argument(
        "--ha-discovery-prefix", default="homeassistant", metavar="TOPIC",
        help="Home Assistant MQTT discovery prefix (default: %(default)s)",
    )
    act.add_argument("--no-ha-discovery", action="store_true", help="publish no Home Assistant discovery configs")
    add_review_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> WatchSettings:
    """Check the flags' combinations; raises ``WatchError`` naming the flag."""
    if not 2 <= args.min_wins <= args.window:
        raise WatchError(
            f"--min-wins must be from 2 to --window ({args.window}) so that one wrong frame never makes a visit, "
            f"received {args.min_wins}"
        )
    if args.webhook is not None and not args.webhook.startswith(("http://", "https://")):
        raise WatchError(f"--webhook must be an http:// or https:// URL, received {args.webhook!r}")
    if args.mqtt is not None:
        from .mqtt import MqttError, parse_address

        try:
            parse_address(args.mqtt)
        except MqttError as exc:
            raise WatchError(str(exc)) from None
    if args.strip_frames == 1:
        raise WatchError("--strip-frames must be 0 (no strip) or at least 2, received 1")
    if args.events is not None and args.events.is_dir():
        raise WatchError(f"--events {args.events}: is a directory; give a file to append to")
    return WatchSettings(
        window=args.window, min_wins=args.min_wins, hold_s=args.hold, threshold=args.visit_threshold, snapshots=args.snapshots,
        snapshot_max_files=args.snapshot_max_files, snapshot_max_mb=args.snapshot_max_mb, strip_frames=args.strip_frames, events=args.events,
        on_event=args.on_event, on_event_timeout=args.on_event_timeout, webhook=args.webhook,
        webhook_timeout=args.webhook_timeout, webhook_retries=args.webhook_retries, mqtt=args.mqtt,
        mqtt_prefix=args.mqtt_prefix, ha_discovery_prefix=None if args.no_ha_discovery else args.ha_discovery_prefix,
        review=review_settings_from_args(args),
    )


def visit_threshold(settings: WatchSettings, spec: Any) -> float:
    """The score (0–1) a frame's label needs to count for a visit: ``--visit-threshold``, else the stricter of
    the contract's threshold and :data:`~edge_runner.watcher.visits.DEFAULT_MIN_SCORE` (the kit's one rule,
    :func:`edge_runner.core.model.threshold_in_force`)."""
    return threshold_in_force(spec, settings.threshold, floor=DEFAULT_MIN_SCORE)[0]


def why_no_events(settings: WatchSettings, spec: Any, model_name: str) -> str | None:
    """Why this model cannot produce visits with these settings, or ``None`` when it can.

    A visit needs frames that can mean "nothing here": a background label in the contract,
    or a threshold below which a frame is ``unknown`` (the contract's or ``--visit-threshold``).
    Without either, every frame would be a visit. ``watch`` refuses such a model; ``serve
    --camera`` serves it without events. Both ask here, so the two always agree.
    """
    if spec.background_label is not None or settings.threshold is not None or spec.threshold is not None:
        return None
    return (
        f"{model_name}: its contract names no background label (a class meaning 'nothing here') "
        "and no threshold, so every frame would be a visit; use a model trained with a background class "
        "or give --visit-threshold"
    )


def build_recorder(
    settings: WatchSettings, spec: Any, *, source_name: str, clock: str = "unix", out: TextIO | None = None,
    as_json: bool = False, model_sha256: str = "",
):
    """A :class:`~edge_runner.watcher.recorder.Recorder` for a model with contract ``spec``; raises ``WatchError``.

    ``model_sha256`` (``Classifier.sha256``) names the model in the review queue's records (``--review-dir``).
    """
    from .recorder import Recorder

    try:
        tracker = VisitTracker(
            spec.is_detection, k=settings.min_wins, n=settings.window, hold_s=settings.hold_s,
            min_score=visit_threshold(settings, spec), clock=clock, source=source_name,
        )
        snapshots = None
        if settings.snapshots is not None:
            snapshots = SnapshotStore(
                settings.snapshots, max_files=settings.snapshot_max_files,
                max_bytes=int(settings.snapshot_max_mb * 1024 * 1024),
            )
        actions = []
        if settings.on_event:
            actions.append(ActionWorker(f"--on-event {settings.on_event}", CommandAction(settings.on_event, settings.on_event_timeout)))
        if settings.webhook:
            webhook = WebhookAction(settings.webhook, timeout=settings.webhook_timeout, retries=settings.webhook_retries)
            # Named by host only: a webhook's path often holds its secret id, which must not reach the logs.
            actions.append(ActionWorker(f"--webhook {urlsplit(settings.webhook).hostname}", webhook))
        review = None
        if settings.review is not None:
            review = build_collector(settings.review, spec, threshold=tracker.min_score, model_sha256=model_sha256, clock=clock)
    except (ValueError, SnapshotError, ReviewError) as exc:
        raise WatchError(str(exc)) from None
    mqtt = None
    if settings.mqtt:
        from .mqtt import MqttError, MqttPublisher, parse_address

        host, port = parse_address(settings.mqtt)
        try:
            mqtt = MqttPublisher(
                host, port, spec.interest_labels, prefix=settings.mqtt_prefix, discovery_prefix=settings.ha_discovery_prefix,
            )
        except MqttError as exc:
            raise WatchError(str(exc)) from None
    return Recorder(
        tracker, snapshots=snapshots, events_path=settings.events, out=out, as_json=as_json, actions=actions, mqtt=mqtt,
        strip_frames=settings.strip_frames, review=review,
    )
