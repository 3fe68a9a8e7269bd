"""The review queue's flags, shared by ``watch`` and ``serve`` (``--review-dir`` …), and the objects they build.

``watch --review-dir DIR`` and ``serve --camera --review-dir DIR`` fill the queue
(:func:`build_collector`); ``serve --review-dir DIR`` without a camera only reviews it
(:func:`open_queue`), e.g. a queue that a separate ``watch`` service fills.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.argtypes import non_negative_int, positive_float, positive_int, probability
from .collector import DEFAULT_CLOSE_MARGIN, DEFAULT_CLOSE_PER_HOUR, DEFAULT_QUIET_PER_HOUR, ReviewCollector
from .queue import DEFAULT_MAX_FILES, DEFAULT_MAX_MB, ReviewQueue


@dataclass(frozen=True)
class ReviewSettings:
    """``--review-dir`` and its limits and rates (see :func:`add_review_arguments`)."""

    directory: Path
    max_files: int = DEFAULT_MAX_FILES
    max_mb: float = DEFAULT_MAX_MB
    close_per_hour: int = DEFAULT_CLOSE_PER_HOUR
    quiet_per_hour: int = DEFAULT_QUIET_PER_HOUR
    close_margin: float = DEFAULT_CLOSE_MARGIN


def add_review_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("review queue (frames to label on the /review page, then export for train)")
    group.add_argument(
        "--review-dir", type=Path, metavar="DIR",
        help="keep frames to review in DIR: each visit's best frame (and strip), frames close to the visit threshold, "
        "a few quiet frames an hour",
    )
    group.add_argument("--review-max-files", type=positive_int, default=DEFAULT_MAX_FILES, metavar="N",
                       help="keep at most N frames, removing the oldest (default: %(default)s)")
    group.add_argument("--review-max-mb", type=positive_float, default=DEFAULT_MAX_MB, metavar="MB",
                       help="keep at most MB megabytes of frames, removing the oldest (default: %(default)s)")
    group.add_argument("--review-close-per-hour", type=non_negative_int, default=DEFAULT_CLOSE_PER_HOUR, metavar="N",
                       help="at most N frames an hour whose score was close to the visit threshold (default: %(default)s)")
    group.add_argument("--review-close-margin", type=probability, default=DEFAULT_CLOSE_MARGIN, metavar="M",
                       help="'close' means within M of the visit threshold (default: %(default)s)")
    group.add_argument("--review-quiet-per-hour", type=non_negative_int, default=DEFAULT_QUIET_PER_HOUR, metavar="N",
                       help="N frames an hour where nothing was seen (default: %(default)s)")


def review_settings_from_args(args: argparse.Namespace) -> ReviewSettings | None:
    if getattr(args, "review_dir", None) is None:
        return None
    return ReviewSettings(args.review_dir, args.review_max_files, args.review_max_mb, args.review_close_per_hour,
                          args.review_quiet_per_hour, args.review_close_margin)


def open_queue(settings: ReviewSettings, *, create: bool = True) -> ReviewQueue:
    """The queue of ``settings``; raises :class:`~edge_runner.review.record.ReviewError` (exit 2) naming ``--review-dir``."""
    return ReviewQueue(settings.directory, max_files=settings.max_files, max_bytes=int(settings.max_mb * 1024 * 1024),
                       create=create)


def build_collector(settings: ReviewSettings, spec: Any, *, threshold: float, model_sha256: str, clock: str = "unix",
                    queue: ReviewQueue | None = None) -> ReviewCollector:
    """The collector that fills the queue of ``settings`` for a model (contract ``spec``, hash ``model_sha256``)."""
    return ReviewCollector(
        queue if queue is not None else open_queue(settings), spec, threshold=threshold, model_sha256=model_sha256,
        clock=clock, close_per_hour=settings.close_per_hour, quiet_per_hour=settings.quiet_per_hour,
        close_margin=settings.close_margin,
    )
