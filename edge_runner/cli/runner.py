"""``python -m edge_runner``: classify photos, a camera or a video with a TFLite model.

    python -m edge_runner photo.jpg more/ '*.png' --model M.tflite [--json] [--top-k K] [--threshold T]
    python -m edge_runner --camera [SOURCE] [--max-frames N]
    python -m edge_runner --benchmark
    python -m edge_runner serve ...          (the web page and JSON API: see edge_runner.web.server)
    python -m edge_runner watch --camera SOURCE ...   (arrival/departure events: see edge_runner.watcher.watch)
    python -m edge_runner webapp --out DIR ...        (the model in a browser: see edge_runner.webapp)
    python -m edge_runner deploy MODEL --url URL      (send a model to a running serve: see edge_runner.cli.deploy)
    python -m edge_runner review list|export --review-dir DIR ...   (the review queue: see edge_runner.review.cli)

Exit status: 0 all inputs classified, 1 some inputs (or the camera) failed,
2 usage or model error. Errors are one line on stderr,
``edge_runner: error: PATH: reason``; a bad photo never stops a batch. These
conventions are shared with ``serve`` and ``watch`` (:mod:`edge_runner.common.console`);
the model is found and loaded by :mod:`edge_runner.core.loading`. ``serve`` and
``watch`` are chosen by the first word (:func:`edge_runner.common.console.dispatch`), not by argparse
subparsers, so that ``python -m edge_runner photo.jpg`` needs no subcommand.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

from ..common.argtypes import non_negative_int, positive_int, probability
from ..common.console import (DEFAULT_CAMERA, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PROG, Parser, UsageError, dispatch,
                              parse_args, print_error, report_error)
from ..core.decoder import default_workers, usable_cores
from ..core.loading import add_model_arguments, load_classifier, quiet_native_info, resolve_model
from ..core.companion_flags import add_companion_arguments, companion_from_args
from ..core.model import threshold_in_force
from .output import format_label_counts, format_prediction

if TYPE_CHECKING:
    from ..core.companion import Companion
    from ..core.model import Classifier

# The subcommands: the first word of the command line, and the module whose main(argv) runs it.
SUBCOMMANDS = {"serve": "edge_runner.web.server", "watch": "edge_runner.watcher.watch", "webapp": "edge_runner.webapp.cli",
               "deploy": "edge_runner.cli.deploy",
               "review": "edge_runner.review.cli"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edge_runner",
        description="Classify photos, a camera or a video with a TFLite image classifier (no TensorFlow needed). "
        "Use `python -m edge_runner serve --help` for the web page and JSON API, `python -m edge_runner watch --help` for arrival/departure events, "
        "`python -m edge_runner webapp --help` for the app that runs the model in a browser, "
        "`python -m edge_runner deploy --help` to send a model to a running serve.",
        epilog="Exit status: 0 all good, 1 some inputs failed, 2 usage or model error.",
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="image files, directories (searched recursively) and glob patterns (quote them: '*.jpg', 'photos/**/*.png')",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object per input (or frame) instead of text")
    output.add_argument(
        "--top-k", type=positive_int, default=None, metavar="K",
        help="keep the K best labels (JSON `top_k`; text output then lists them too); default 3 in JSON, 1 in text",
    )
    output.add_argument(
        "--threshold", type=probability, default=None, metavar="T",
        help="below this top score (0-1) the label is 'unknown' (default: the model's recommended threshold from its contract, else 0)",
    )
    output.add_argument(
        "--explain", metavar="DIR", default=None,
        help="also write DIR/<photo>.explain.png: an occlusion map of what the answer depended on "
        "(7x7 grid: 50 inferences per photo; JSON gets its path as 'explanation')",
    )
    add_model_arguments(parser).add_argument(
        "--workers", type=non_negative_int, default=default_workers(), metavar="N",
        help="photos decoded and classified in parallel, each worker with its own interpreter "
        "(default: CPU cores, at most 4: %(default)s here; 1 = one at a time; 0 = one per CPU, as in train)",
    )
    add_companion_arguments(parser)
    camera = parser.add_argument_group("camera")
    camera.add_argument(
        "--camera", nargs="?", const=DEFAULT_CAMERA, default=None, metavar="SOURCE",
        help="classify live frames: no value or 0 = the default camera, 1 = the second, "
        "or a video file / stream URL (picamera2 is used on a Raspberry Pi when installed)",
    )
    camera.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--benchmark", action="store_true",
        help="measure the model: latency p50/p90/p99 at 1, 2 and 4 threads, cold start and peak memory "
        "(uses the first INPUT as the photo if given)",
    )
    return parser


# -- modes ------------------------------------------------------------------


def _print_error(message: str) -> None:
    print_error(PROG, message)


def run_files(
    classifier: Classifier, inputs: Sequence[str], *, as_json: bool, top_k: int | None, threshold: float | None,
    workers: int, out: TextIO, explain: str | None = None, companion: Companion | None = None,
) -> int:
    """Classify files/directories/globs, print one line per input; return the exit status.

    With a ``companion``, photos that are not a detection also get what they look like (JSON ``"looks_like"``:
    an object or ``null``; present on every line, so a script can rely on it).
    """
    from PIL.Image import DecompressionBombWarning

    from ..core.companion import looks_like_dict
    from .batch import classify_paths, collect_inputs

    collected = collect_inputs(inputs)
    for error in collected.errors:
        _print_error(error)
    failed = len(collected.errors)
    dumps = None
    if as_json:
        import json

        dumps = json.dumps
    k = top_k if top_k is not None else (3 if as_json else 1)
    done = 0
    writer = None
    if explain is not None:
        from ..explain.explanation import open_writer

        try:
            writer = open_writer(explain, classifier)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    with warnings.catch_warnings():
        # Pillow warns about images between its pixel limit and twice it; preprocessing
        # refuses them with a one-line error, so the warning would only repeat it.
        warnings.simplefilter("ignore", DecompressionBombWarning)
        try:
            for result in classify_paths(classifier, collected.paths, top_k=k, threshold=threshold, workers=workers,
                                         companion=companion):
                if result.error is not None:
                    failed += 1
                    _print_error(result.error)
                    continue
                record = result.prediction.to_dict(result.source)
                if companion is not None:
                    record["looks_like"] = looks_like_dict(result.looks_like)
                    if companion.veto is not None:
                        record["vetoed"] = result.vetoed
                    if companion.rescue is not None:
                        record["rescued"] = result.rescued
                if writer is not None:
                    explained, error = writer.try_write(result.source)
                    if error:
                        failed += 1
                        _print_error(error)
                    record["explanation"] = explained
                if dumps is not None:
                    print(dumps(record), file=out, flush=True)
                else:
                    line = format_prediction(result.source, result.prediction, top_k, classifier.spec, threshold,
                                             result.looks_like, result.vetoed, result.rescued)
                    if record.get("explanation"):
                        line += f"  {record['explanation']}"
                    print(line, file=out, flush=True)
                done += 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted after {done} of {len(collected.paths)} inputs", file=sys.stderr)
            return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


def run_camera(
    classifier: Classifier, source: str | None, *, as_json: bool, top_k: int | None, threshold: float | None,
    max_frames: int | None, verbose: bool, out: TextIO, companion: Companion | None = None,
) -> int:
    """Classify frames until the stream ends, ``max_frames``, or Ctrl-C; print a summary; return the exit status.

    A ``companion`` names a background scene at most once a second (:class:`~edge_runner.core.companion.Throttle`).
    """
    from ..core.companion import Throttle, looks_like_dict

    from ..watcher.camera import CameraError, open_camera
    from ..watcher.frames import StreamStats, classify_frames

    spec = classifier.spec
    try:
        camera = open_camera(source, size=spec.size)
    except CameraError as exc:
        _print_error(str(exc))
        return EXIT_FAILED
    dumps = None
    if as_json:
        import json

        dumps = json.dumps
    k = top_k if top_k is not None else (3 if as_json else 1)
    stats = StreamStats()
    throttle = Throttle(companion) if companion is not None else None
    status, ending = EXIT_OK, None
    if verbose:
        print(f"camera: {camera.name}", file=sys.stderr)
    try:
        with camera:
            for item in classify_frames(classifier, camera, max_frames=max_frames, top_k=k, threshold=threshold, stats=stats):
                looks = throttle.frame(item.item.frame, item.prediction.detected) if throttle is not None else None
                if dumps is not None:
                    record = item.prediction.to_dict(camera.name)
                    record.update(frame=item.frame, fps=round(item.fps, 2))
                    if throttle is not None:
                        record["looks_like"] = looks_like_dict(looks)
                    print(dumps(record), file=out, flush=True)
                else:
                    line = format_prediction(f"frame {item.frame}", item.prediction, top_k, spec, threshold, looks)
                    print(f"{line}  {item.fps:.1f} fps", file=out, flush=True)
            if max_frames is not None and stats.frames >= max_frames:
                ending = f"--max-frames {max_frames}"
            else:
                reason = getattr(camera, "end_reason", None) or "no more frames"
                if getattr(camera, "is_file", False) and stats.frames > 0:
                    ending = reason  # the normal end of a video file
                else:
                    _print_error(f"{camera.name}: {reason}")
                    status = EXIT_FAILED
    except KeyboardInterrupt:
        ending = "interrupted"
    except CameraError as exc:
        _print_error(str(exc))
        status = EXIT_FAILED
    summary = f"{camera.name}: {stats.frames} frames in {stats.seconds:.1f} s, mean {stats.mean_fps:.1f} FPS"
    print(f"{summary}{f' ({ending})' if ending else ''}", file=sys.stderr, flush=True)
    if spec.background_label is not None and stats.frames:
        print(f"{camera.name}: {format_label_counts(stats.labels, spec)}", file=sys.stderr, flush=True)
    return status


def run_benchmark_mode(model: Path, inputs: Sequence[str], out: TextIO) -> int:
    from .batch import collect_inputs
    from .benchmark import format_report, run_benchmark

    image = None
    if inputs:
        collected = collect_inputs(inputs)
        for error in collected.errors:
            _print_error(error)
        if not collected.paths:
            return EXIT_FAILED
        image = collected.paths[0]
    with quiet_native_info():
        report = run_benchmark(model, image=image)
    print(format_report(report), file=out, flush=True)
    return EXIT_OK


# -- entry point ---------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 some inputs failed, 2 usage or model error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    status = dispatch(argv, SUBCOMMANDS)
    if status is not None:
        return status
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    try:
        return _run(args, sys.stdout)
    except (Exception, KeyboardInterrupt) as exc:  # known errors carry their exit status; others are re-raised
        return report_error(exc, PROG, parser=parser)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.camera is not None and (args.inputs or args.benchmark):
        raise UsageError("--camera takes no INPUT files and cannot be combined with --benchmark")
    if args.camera is None and not args.inputs and not args.benchmark:
        raise UsageError("nothing to do: give image files, directories or globs, --camera, or --benchmark")
    if args.max_frames is not None and args.camera is None:
        raise UsageError("--max-frames only applies with --camera")
    if args.explain is not None and (args.camera is not None or args.benchmark):
        raise UsageError("--explain only applies to INPUT files, not to --camera or --benchmark")
    model = resolve_model(args.model)
    if args.benchmark:
        return run_benchmark_mode(model, args.inputs, out)
    classifier = load_classifier(model, args.threads, args.runtime, args.verbose)
    workers = args.workers or usable_cores()  # 0: one per CPU, as train's --workers 0
    companion = companion_from_args(args, runtime=classifier.runtime, threads=args.threads, pool_size=workers,
                                    main_labels=classifier.spec.interest_labels)
    if companion is not None and args.verbose:
        about = companion.describe()
        print(f"looks like: {companion.path} ({about['labels']} labels from {about['labels_from']}, input "
              f"{about['input'][1]}x{about['input'][0]}, named at >= {companion.floor:g})", file=sys.stderr)
    if args.verbose:
        value, origin = threshold_in_force(classifier.spec, args.threshold)
        print(f"threshold: {value:g} (from {origin})", file=sys.stderr)
        background = classifier.spec.background_label
        if background is not None:
            print(f"background label: {background} (answered as 'nothing recognised')", file=sys.stderr)
    if args.camera is not None:
        return run_camera(
            classifier, args.camera, as_json=args.json, top_k=args.top_k, threshold=args.threshold,
            max_frames=args.max_frames, verbose=args.verbose, out=out, companion=companion,
        )
    if args.verbose:
        print(f"workers: {workers}", file=sys.stderr)
    return run_files(
        classifier, args.inputs, as_json=args.json, top_k=args.top_k, threshold=args.threshold,
        workers=workers, out=out, explain=args.explain, companion=companion,
    )
