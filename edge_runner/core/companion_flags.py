"""The flags that ask for a ``--looks-like`` companion (the runner, ``serve`` and ``watch``): ``--looks-like
MODEL|NAME``, its labels and floor, the veto (``--looks-like-veto*``) and the rescue (``--looks-like-rescue*``).

:func:`looks_like_options` checks that they go together before anything is downloaded, then resolves a known name
(:mod:`edge_runner.core.catalog`) to its files in the cache and its named ranges (``pets``, ``other-animals``) to
output indices; :func:`companion_from_args` loads the companion (:mod:`edge_runner.core.companion_loader`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.argtypes import probability
from .catalog import IMAGENET, KNOWN, KnownCompanion, fetch, known, named_ranges
from .companion import DEFAULT_FLOOR, Companion
from .companion_loader import load_companion

if TYPE_CHECKING:
    from .runtime import Runtime


def add_companion_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add ``--looks-like MODEL``, ``--looks-like-labels FILE``, ``--looks-like-floor P``, the veto's and the rescue's
    flags (runner, ``serve`` and ``watch``, which takes only the veto)."""
    group = parser.add_argument_group("what a background answer looks like (a companion classifier)")
    group.add_argument(
        "--looks-like", metavar="MODEL.tflite|NAME", default=None,
        help="on answers that are not a detection (the background label or 'unknown'), also run this image "
        "classifier and name its best labels: JSON 'looks_like', text 'looks like: raccoon 71%%'. A name instead of "
        f"a file is downloaded once into the cache: {', '.join(KNOWN)} ({IMAGENET.summary})",
    )
    group.add_argument(
        "--looks-like-labels", metavar="FILE", default=None,
        help="its labels, one per output line (default: its contract's, else a .txt embedded in it, else "
        "NAME.txt, NAME_labels.txt, labels.txt or the only *labels*.txt beside it)",
    )
    group.add_argument(
        "--looks-like-floor", type=probability, default=DEFAULT_FLOOR, metavar="P",
        help="name a label only when the companion gives it at least P (0-1; default: %(default)s)",
    )
    group.add_argument(
        "--looks-like-veto", type=probability, default=None, metavar="P",
        help="also run it on detections, and answer 'nothing recognised' (JSON 'vetoed') when its probability on "
        "--looks-like-veto-classes is below P (0-1; default: no veto: detections never run it)",
    )
    group.add_argument(
        "--looks-like-veto-classes", type=output_ranges, default=None, metavar="RANGES",
        help="its outputs that mean 'something of interest' for the veto, e.g. 152-269,282-286 (the ImageNet "
        "model's dog breeds and domestic cats), or a named range of a --looks-like NAME (default for "
        f"{IMAGENET.name}: pets): {named_ranges(IMAGENET)}",
    )
    group.add_argument(
        "--looks-like-veto-only-for", type=output_ranges, default=None, metavar="RANGES",
        help="veto only when its best guess outside --looks-like-veto-classes is one of these outputs, e.g. "
        "1-151,270-281,287-398 or other-animals (the ImageNet model's other animals: a cat it calls a box stays a "
        "cat), other-animals,face-wear (and masks, sunglasses, make-up, wigs: a face close-up; default: whatever "
        "it guesses)",
    )
    group.add_argument(
        "--looks-like-rescue", type=probability, default=None, metavar="P",
        help="an answer that is not a detection becomes one (JSON 'rescued', score = the companion's probability) "
        "when the companion's probabilities on one label's outputs (--looks-like-rescue-as) add up to P or more "
        "(0-1; default: off)",
    )
    group.add_argument(
        "--looks-like-rescue-as", type=label_outputs, action="append", default=None, metavar="LABEL=RANGES",
        help="which companion outputs mean one of the model's labels, once per label, e.g. dogs=152-269 (default for "
        f"{IMAGENET.name}: " + " ".join(f"{label}={label}" for label in IMAGENET.rescue_as) + ", its domestic cats "
        "and dog breeds)",
    )
    return group


def label_outputs(text: str) -> tuple[str, tuple[int, ...] | str]:
    """An argparse ``type=``: ``"dogs=152-269"`` → ``("dogs", (152, ..., 269))`` (a named range stays a string)."""
    label, equals, ranges = text.partition("=")
    if not equals or not label.strip():
        raise argparse.ArgumentTypeError(f"must be LABEL=RANGES such as dogs=152-269, received {text!r}")
    return label.strip(), output_ranges(ranges)


def output_ranges(text: str) -> tuple[int, ...] | str:
    """An argparse ``type=``: ``"152-269,282-286"`` → the output indices, sorted, each once. Text with names such
    as ``"other-animals,face-wear"`` (a known companion's named ranges, resolved by :func:`looks_like_options`) stays
    a string."""
    parts = [part.strip().lower() for part in text.split(",") if part.strip()]
    if any(part.replace("-", "").isalpha() for part in parts):
        return ",".join(parts)
    indices: set[int] = set()
    try:
        for part in parts:
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
            if first < 0 or last < first:
                raise ValueError(part)
            indices.update(range(first, last + 1))
    except ValueError:
        indices = set()
    if not indices:
        raise argparse.ArgumentTypeError(f"must be output indices and ranges such as 152-269,282-286 (or a known "
                                         f"companion's named ranges), received {text!r}")
    return tuple(sorted(indices))


def looks_like_options(args: argparse.Namespace) -> dict:
    """``{"looks_like", "looks_like_labels", "looks_like_floor", "looks_like_veto*", "looks_like_rescue*"}`` from the
    flags (``serve``'s options take them as they are): a known name (``imagenet``) becomes its files in the cache,
    downloaded if need be, and its named ranges become output indices (``--looks-like-rescue`` without
    ``--looks-like-rescue-as`` takes its default labels, :attr:`~edge_runner.core.catalog.KnownCompanion.rescue_as`).

    Raises ``UsageError`` for flags that do not go together (``--looks-like-floor`` without ``--looks-like``, a
    named range without a known companion), ``CompanionError`` when a download fails (after the flags are checked).
    """
    from ..common.console import UsageError

    rescue, rescue_as = args.looks_like_rescue, args.looks_like_rescue_as
    if args.looks_like is None and (args.looks_like_labels is not None or args.looks_like_floor != DEFAULT_FLOOR
                                    or args.looks_like_veto is not None or args.looks_like_veto_classes is not None
                                    or args.looks_like_veto_only_for is not None or rescue is not None
                                    or rescue_as is not None):
        raise UsageError("--looks-like-labels, --looks-like-floor, --looks-like-veto* and --looks-like-rescue* only "
                         "apply with --looks-like MODEL.tflite")
    model, labels, classes = args.looks_like, args.looks_like_labels, args.looks_like_veto_classes
    companion = known(model) if model is not None and not Path(model).exists() else None
    if companion is not None and args.looks_like_veto is not None and classes is None:
        classes = "pets"
    if (args.looks_like_veto is None) != (classes is None):
        raise UsageError("--looks-like-veto P and --looks-like-veto-classes RANGES go together")
    if args.looks_like_veto_only_for is not None and args.looks_like_veto is None:
        raise UsageError("--looks-like-veto-only-for RANGES only applies with --looks-like-veto P")
    if rescue_as is not None and rescue is None:
        raise UsageError("--looks-like-rescue-as LABEL=RANGES only applies with --looks-like-rescue P")
    if rescue is not None and rescue_as is None:
        if companion is None:
            raise UsageError("--looks-like-rescue P needs --looks-like-rescue-as LABEL=RANGES (which companion outputs "
                             "mean each of the model's labels, e.g. dogs=152-269)")
        rescue_as = [(label, label) for label in companion.rescue_as]
    classes = _named(classes, "--looks-like-veto-classes", companion, model)
    only_for = _named(args.looks_like_veto_only_for, "--looks-like-veto-only-for", companion, model)
    rescue_as = tuple((label, _named(ranges, "--looks-like-rescue-as", companion, model))
                      for label, ranges in rescue_as or ())
    if companion is not None:  # the flags are right: only now download what the cache lacks
        fetched = fetch(companion)
        model, labels = fetched.model, labels if labels is not None else fetched.labels
    return {
        "looks_like": Path(model) if model is not None else None,
        "looks_like_labels": Path(labels) if labels is not None else None,
        "looks_like_floor": args.looks_like_floor,
        "looks_like_veto": args.looks_like_veto,
        "looks_like_veto_classes": classes,
        "looks_like_veto_only_for": only_for,
        "looks_like_rescue": rescue,
        "looks_like_rescue_as": rescue_as,
    }


def _named(ranges: tuple[int, ...] | str | None, flag: str, companion: KnownCompanion | None,
           looks_like: str | None) -> tuple[int, ...] | None:
    """Output indices for ``ranges``: as they are, or with a known companion's named ranges (``pets``) resolved."""
    from ..common.console import UsageError

    if not isinstance(ranges, str):
        return ranges
    if companion is None:
        raise UsageError(f"{flag} {ranges}: a named range needs a known companion ({', '.join(KNOWN)}), "
                         f"received --looks-like {looks_like}")
    unknown = [part for part in ranges.split(",") if part.replace("-", "").isalpha() and part not in companion.ranges]
    if unknown:
        raise UsageError(f"{flag} {unknown[0]}: --looks-like {companion.name} names {named_ranges(companion)}")
    return output_ranges(",".join(companion.ranges.get(part, part) for part in ranges.split(",")))


def companion_from_args(args: argparse.Namespace, *, runtime: Runtime | None = None, threads: int | None = None,
                        pool_size: int = 1, main_labels: tuple[str, ...] | None = None) -> Companion | None:
    """The companion ``--looks-like`` asks for (loaded, LiteRT's start-up line kept quiet), or ``None``.

    ``main_labels``: the main model's labels of interest, which a rescue may answer.
    """
    options = looks_like_options(args)
    if options["looks_like"] is None:
        return None
    from .loading import quiet_native_info

    with quiet_native_info():
        return load_companion(options["looks_like"], options["looks_like_labels"], floor=options["looks_like_floor"],
                              runtime=runtime, threads=threads, pool_size=pool_size, veto=options["looks_like_veto"],
                              veto_classes=options["looks_like_veto_classes"],
                              veto_only_for=options["looks_like_veto_only_for"], rescue=options["looks_like_rescue"],
                              rescue_as=options["looks_like_rescue_as"], main_labels=main_labels)
