"""``python -m edge_runner review list|export``: the review queue from a terminal.

    python -m edge_runner review list --review-dir DIR [--json] [--limit N]
    python -m edge_runner review export --review-dir DIR --out OUT [--json]

``list`` prints the records newest first (time, kind, the model's answer and score, the review) and a
summary line; with ``--json`` one JSON object per record, then ``{"summary": …}``. ``export`` writes the
reviewed frames in the folder layout ``train`` reads (:mod:`edge_runner.review.export`). Exit status: 0 done,
2 usage error (a missing queue, an ``--out`` that is not an earlier export); errors are one
``edge_runner review: error: …`` line (:mod:`edge_runner.common.console`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ..common.argtypes import positive_int
from ..common.console import EXIT_OK, EXIT_USAGE, PROG, Parser, parse_args, print_error, report_error
from .export import export_folder
from .queue import ReviewQueue

REVIEW_PROG = f"{PROG} review"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edge_runner review", error_prog=REVIEW_PROG,
        description="List the review queue that `watch --review-dir` / `serve --camera --review-dir` fill, "
        "or export its reviewed frames as class folders for `python -m train`.",
        epilog="Exit status: 0 done, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{list,export}", required=True)
    listing = commands.add_parser("list", error_prog=REVIEW_PROG, help="the records, newest first, and how many are reviewed")
    listing.add_argument("--review-dir", type=Path, required=True, metavar="DIR", help="the queue's folder")
    listing.add_argument("--json", action="store_true", help="one JSON object per record, then a summary object")
    listing.add_argument("--limit", type=positive_int, default=None, metavar="N", help="show the newest N records only")
    export = commands.add_parser("export", error_prog=REVIEW_PROG, help="write the reviewed frames as OUT/<label>/<group>--<id>.jpg + manifest.json")
    export.add_argument("--review-dir", type=Path, required=True, metavar="DIR", help="the queue's folder")
    export.add_argument("--out", type=Path, required=True, metavar="OUT",
                        help="a new folder, or an earlier export to replace (atomically)")
    export.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    if not args.review_dir.is_dir():
        print_error(REVIEW_PROG, f"--review-dir {args.review_dir}: no such folder (the watcher creates it with --review-dir)")
        return EXIT_USAGE
    try:
        queue = ReviewQueue(args.review_dir, create=False)
        if args.command == "list":
            _list(queue, args.json, args.limit)
        else:
            result = export_folder(queue, args.out)
            print(json.dumps(asdict(result)) if args.json else result.describe(), flush=True)
    except Exception as exc:  # ReviewError/ExportError carry exit status 2
        return report_error(exc, REVIEW_PROG)
    return EXIT_OK


def _list(queue: ReviewQueue, as_json: bool, limit: int | None) -> None:
    records = queue.records()[:limit]
    summary = queue.summary()
    if as_json:
        for record in records:
            print(json.dumps(record))
        print(json.dumps({"summary": summary}), flush=True)
        return
    for r in records:
        review = r["review"]["label"] if r["review"] else "-"
        print(f"{r['id']}  {r['time']}  {r['kind']:<5}  {r['model_label']} {r['model_score'] * 100:.0f}%  review: {review}"
              f"  [{r['group']}]")
    print(f"{summary['total']} frames, {summary['reviewed']} reviewed, {summary['pending']} to review"
          + (f" ({', '.join(f'{k} {v}' for k, v in summary['by_label'].items())})" if summary["by_label"] else ""),
          file=sys.stderr, flush=True)
