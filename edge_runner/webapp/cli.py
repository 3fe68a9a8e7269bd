"""``python -m edge_runner webapp --out DIR``: write the browser app and a model into a self-contained folder.

    python -m edge_runner webapp --out phone-app/                       # the shipped model
    python -m edge_runner webapp --out phone-app/ --model my.tflite --force

The folder (the app, LiteRT.js and its WebAssembly, the ``.tflite`` and its ``model.json``) works from any static web
host or a mobile app's WebView; the camera and offline use need it served over https:// (or from localhost).
Exit status: 0 written, 2 usage or model error (a missing or invalid model, an unbuilt app, a bad ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..common.console import EXIT_OK, PROG, Parser, UsageError, parse_args, report_error
from ..core.loading import MODEL_ENV, SHIPPED_MODEL_NAME, load_classifier, resolve_model
from . import BUILD_MANIFEST, MODEL_CONFIG, build_files, built_dir, export_app, folder_size

WEBAPP_PROG = f"{PROG} webapp"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edge_runner webapp",
        error_prog=WEBAPP_PROG,
        description="Write the browser app (the model runs in the page: LiteRT.js, WebAssembly) and a model "
        "into a folder that any static web host or a mobile app's WebView can serve.",
        epilog="`python -m edge_runner serve` hosts the same app at /app/. The camera and offline use need https:// "
        "(or localhost).",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write (created if missing)")
    parser.add_argument(
        "--model", metavar="MODEL.tflite",
        help=f"the .tflite model (default: ${MODEL_ENV}, else the shipped {SHIPPED_MODEL_NAME})",
    )
    parser.add_argument("--force", action="store_true", help="write into a folder that is not empty (its files are replaced)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the folder; return the exit status (0 written, 2 usage or model error)."""
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    try:
        model = resolve_model(args.model)
        # Loaded as the runner loads it: a model the runner would refuse is refused here, in its words.
        classifier = load_classifier(model, None, None, False, prog=WEBAPP_PROG)
        source = built_dir()
        reserved = {*build_files(source), BUILD_MANIFEST, MODEL_CONFIG}
        if model.name in reserved:
            raise UsageError(f"--model: the file name {model.name!r} is one of the app's own files; rename the model")
        written = export_app(model, classifier.spec, args.out, force=args.force)
    except Exception as exc:  # usage, app and model errors carry their exit status (common.console.report_error)
        return report_error(exc, WEBAPP_PROG, parser=parser)
    print(
        f"{WEBAPP_PROG}: wrote {len(written)} files ({folder_size(written) / 1e6:.1f} MB) into {args.out}: "
        f"open index.html from any static web host (https:// for the camera and offline use)"
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
