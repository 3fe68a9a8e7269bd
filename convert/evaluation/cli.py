"""``python -m convert evaluate MODEL --data DIR [--background DIR] …``: its flags and its run, nothing else.

Measures a ``.tflite`` (through the runner's ``Classifier``) or a training run folder
(``model.keras``) on labelled folders, e.g. a user's own camera photos: accuracy,
per-class recall and precision, per source, false alarms per threshold, what the wrong
answers were, and the most confident mistakes as a contact sheet. Exit status 0 done
(unreadable photos are skipped with a warning line each), 2 bad arguments or input
(one line ``convert: error: …``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_runner.common.argtypes import RUNTIME_CHOICES, non_negative_int, positive_int, probability
from edge_runner.common.console import EXIT_OK

from .sources import source_argument

PROG = "convert"


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``python -m convert``'s subparsers."""
    parser = commands.add_parser(
        "evaluate", error_prog=PROG,
        help="measure a model (.tflite or training run) on labelled folders: recall, false alarms, mistakes")
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="a .tflite file (run as the runner runs it) or a training run folder (its model.keras)")
    parser.add_argument("--data", type=source_argument, action="append", default=[], metavar="[NAME=]DIR",
                        help="one folder per class named like the model's labels (or train/validation folders "
                             "holding them); repeat for several sources (default name: the folder's)")
    parser.add_argument("--background", type=source_argument, action="append", default=[], metavar="[NAME=]DIR",
                        help="photos of nothing of interest (flat or nested), labelled as the model's background "
                             "label; repeatable")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write evaluation.json, evaluation.md and mistakes.png there")
    parser.add_argument("--threshold", type=probability, default=None, metavar="T",
                        help="answer `unknown` below this score (default: the model's recommended threshold, else 0)")
    parser.add_argument("--mistakes", type=non_negative_int, default=24, metavar="N",
                        help="most confident mistakes drawn in mistakes.png (default: %(default)s)")
    parser.add_argument("--runtime", choices=RUNTIME_CHOICES, default=None,
                        help="use exactly this TFLite runtime (default: the first importable, in this order)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="interpreter threads for a .tflite; a Keras run ignores it (default: the runtime's choice)")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object on the last line")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Collect the photos, score them, print the tables (and the JSON line), write the files."""
    from ..errors import ConvertError
    from .report import summary_lines, write_evaluation
    from .scoring import evaluate, load_model
    from .sources import check_background, collect, make_sources

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConvertError(f"--out: {args.out} is a file; give a folder (created when missing)")
    sources = make_sources(args.data, args.background)
    model = load_model(args.model, threads=args.threads, runtime=args.runtime)
    check_background(sources, model.spec)
    photos = collect(sources, model.spec)
    evaluation = evaluate(model, sources, photos, threshold=args.threshold, progress=not args.quiet)
    data = evaluation.to_dict()
    print("\n".join(summary_lines(data)), flush=True)
    if args.out is not None:
        written = write_evaluation(evaluation, args.out, data, worst=args.mistakes)
        print(f"{PROG}: wrote {', '.join(str(p) for p in written)}")
    if args.json:
        print(json.dumps(data))
    return EXIT_OK
