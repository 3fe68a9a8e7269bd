"""``python -m convert gate-device NEW_RUN --device DEVICE.tflite --reviewed EXPORT [--out DIR]``: flags and run.

Exit status 0 accepted, 1 refused (the report says why), 2 bad arguments or input (one line
``convert: error: …``), 130 interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runner.common.console import EXIT_FAILED, EXIT_OK

MIN_FIXED = 0.8  # convert.device_gate.gate.MIN_FIXED (said there why); literal here so --help imports no model code

PROG = "convert"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, received {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, received {text!r}")
    return value


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``gate-device`` subcommand to ``python -m convert``'s subparsers."""
    parser = commands.add_parser(
        "gate-device", error_prog=PROG,
        help="a retrained run's int8 model against the model on the device: old validation photos and reviewed frames")
    parser.add_argument("new_run", type=Path, metavar="NEW_RUN", help="the retrained run (python -m train --init-from …)")
    parser.add_argument("--device", type=Path, required=True, metavar="MODEL.tflite", help="the model on the device")
    parser.add_argument("--reviewed", type=Path, required=True, metavar="EXPORT",
                        help="the review export (manifest.json) the retrain learned from")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="where the int8 model and report.{md,json}, fixed.png, broke.png go (default: NEW_RUN/gate-device)")
    parser.add_argument("--new-model", type=Path, metavar="MODEL.tflite",
                        help="gate this .tflite instead of exporting NEW_RUN's int8 model")
    parser.add_argument("--min-fixed", type=_fraction, default=MIN_FIXED, metavar="F",
                        help="share of the reviewed frames the device got wrong that the new model must get right "
                             "(default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the paired McNemar test on the old validation photos "
                             "(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or conversion lines")
    return parser


def run(args: argparse.Namespace) -> int:
    from .gate import gate_device
    from .report import write_gate

    out = args.out or Path(args.new_run) / "gate-device"
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    gate = gate_device(args.new_run, args.device, args.reviewed, out, min_fixed=args.min_fixed, alpha=args.alpha,
                       new_model=args.new_model, log=log, progress=not args.quiet)
    write_gate(gate, out)
    p = gate.paired
    fixed = "no reviewed frame was wrong" if not gate.device_wrong else f"fixed {gate.fixed}/{gate.device_wrong}"
    print(f"{PROG}: gate-device {'accepted' if gate.accepted else 'refused'}: old validation {p.lost} lost, "
          f"{p.gained} gained (p {p.p_value:.3g}); reviewed {fixed}, "
          f"{sum(f.broke for f in gate.part('reviewed'))} broke; report: {out / 'report.md'}")
    for reason in gate.reasons:
        print(f"{PROG}: refused: {reason}")
    return EXIT_OK if gate.accepted else EXIT_FAILED
