"""``python -m convert export|benchmark|evaluate|gate-device``: argument parsing and exit codes, nothing else.

The conventions are the runner's (:mod:`edge_runner.common.console`): errors are one line
``convert: error: …`` on stderr; exit status 0 success (every variant accepted),
1 a variant was rejected by the accuracy gate or failed its checks, 2 bad arguments
or input (nothing half-written), 130 interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runner.common.argtypes import non_negative_int, positive_int, thread_counts
from edge_runner.common.console import EXIT_FAILED, EXIT_OK, Parser, parse_args, report_error
from edge_runner.common.native_log import quiet_tensorflow_logs

from .device_gate.cli import add_parser as add_gate_device_parser, run as run_gate_device
from .evaluation.cli import add_parser as add_evaluate_parser, run as run_evaluate

quiet_tensorflow_logs()  # before any TensorFlow import (the jobs import it lazily): failures still raise

PROG = "convert"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"python -m {PROG}", error_prog=PROG, description=__doc__.split("\n")[0].strip("`"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="{export,benchmark,evaluate,gate-device}")

    export = commands.add_parser("export", error_prog=PROG,
                                 help="convert a training run into gated .tflite variants with metadata")
    export.add_argument("train_out", type=Path, metavar="TRAIN_OUT", help="output directory of `python -m train`")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the models and reports")
    export.add_argument("--variants", type=str, default="float32,float16,dynamic,int8",
                        help="comma-separated: float32, float16, dynamic, int8, int16x8 (default: %(default)s)")
    export.add_argument("--calibration-data", type=Path, metavar="DIR",
                        help="photos for int8 calibration (default: the training split in TRAIN_OUT/split.json)")
    export.add_argument("--calibration-size", type=positive_int, default=300, metavar="N",
                        help="photos sampled for int8 calibration (default: %(default)s); with fewer available, all of "
                        "them are used (at least 10)")
    export.add_argument("--eval-data", type=Path, metavar="DIR",
                        help="one folder per class to gate on (default: the validation split in TRAIN_OUT/split.json)")
    export.add_argument("--max-accuracy-drop", type=float, default=1.0, metavar="POINTS",
                        help="reject a variant losing more accuracy points than this vs the Keras model (default: %(default)s)")
    export.add_argument("--require-agreement", "--min-agreement", dest="require_agreement", type=float, default=None,
                        metavar="PERCENT",
                        help="also reject a variant whose top-1 agrees with the Keras model on fewer photos (default: "
                             "agreement is reported, not required); --min-agreement is the old name")
    export.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the one-sided McNemar test: a loss above --max-accuracy-drop "
                             "rejects only when p < alpha (default: %(default)s)")
    export.add_argument("--confidence", type=float, default=0.95,
                        help="level of the reported interval of the accuracy change (default: %(default)s)")
    export.add_argument("--diagnose", action="store_true",
                        help="always diagnose int8 layer by layer (default: only when it is rejected or close to the limit)")
    export.add_argument("--diagnose-photos", type=positive_int, default=50, metavar="N",
                        help="calibration photos the diagnosis runs on (default: %(default)s)")
    export.add_argument("--fix", type=str, choices=("auto", "always", "never"), default="auto",
                        help="try fixes (wider calibration, layers kept in float, int16x8) when int8 is rejected "
                             "(auto), even when it passes (always), or never (default: %(default)s)")
    export.add_argument("--seed", type=non_negative_int, default=0, help="seed of the calibration sample (default: %(default)s)")
    export.add_argument("--description", type=str, default="", help="metadata description (default: generated)")
    export.add_argument("--model-version", type=str, default="1.0.0", help="metadata version (default: %(default)s)")
    export.add_argument("--author", type=str, default="edgekit", help="metadata author (default: %(default)s)")
    export.add_argument("--license", type=str, default="Apache-2.0", help="metadata licence (default: %(default)s)")
    export.add_argument("--quiet", action="store_true", help="no progress bars or per-variant lines")

    bench = commands.add_parser("benchmark", error_prog=PROG, help="size, latency and accuracy of .tflite models")
    bench.add_argument("models", type=Path, nargs="+", metavar="MODEL.tflite")
    bench.add_argument("--data", type=Path, metavar="DIR", help="one folder per class, for accuracy and agreement")
    bench.add_argument("--threads", type=thread_counts, default=(1, 2, 4), metavar="N,N",
                       help="thread counts, comma-separated (default: 1,2,4)")
    bench.add_argument("--keras", type=Path, metavar="PATH",
                       help="TRAIN_OUT/model.keras (or TRAIN_OUT): its latency is the baseline, its answers the reference")
    bench.add_argument("--out", type=Path, metavar="DIR", help="where to write benchmark.{md,json,png} (default: the first model's folder)")
    bench.add_argument("--limit", type=positive_int, metavar="N", help="use at most N photos from --data (every class represented)")
    bench.add_argument("--runs", type=positive_int, default=50, metavar="N",
                       help="timed runs per model and thread count (default: %(default)s)")
    bench.add_argument("--warmup", type=non_negative_int, default=5, metavar="N",
                       help="untimed runs first (default: %(default)s)")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    add_evaluate_parser(commands)
    add_gate_device_parser(commands)
    return parser


def run_export(args: argparse.Namespace) -> int:
    from .export import ExportOptions, export
    from .gate.accuracy import Thresholds
    from .tflite.metadata import ModelInfo
    from .quantize import parse_variants

    options = ExportOptions(
        variants=parse_variants(args.variants),
        calibration_data=args.calibration_data,
        calibration_size=args.calibration_size,
        eval_data=args.eval_data,
        thresholds=Thresholds(args.max_accuracy_drop, args.require_agreement, alpha=args.alpha,
                              confidence=args.confidence),
        seed=args.seed,
        diagnose=args.diagnose,
        fix=args.fix,
        diagnose_photos=args.diagnose_photos,
        info=ModelInfo(args.description, args.model_version, args.author, args.license),
    )
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    result = export(args.train_out, args.out, options, log=log, progress=not args.quiet)
    accepted = [v.variant for v in result.variants if v.status == "accepted"]
    refused = [f"{v.variant} ({v.status})" for v in result.variants if v.status != "accepted"]
    print(f"{PROG}: {len(accepted)}/{len(result.variants)} variants accepted"
          + (f"; not accepted: {', '.join(refused)}" if refused else "")
          + f"; report: {Path(args.out) / 'report.md'}")
    remedy = result.remedy
    if remedy is not None and remedy.candidates:
        print(f"{PROG}: int8 fixes: {remedy.reason}" + (f"; ship {remedy.shipped}" if remedy.shipped else ""))
    return EXIT_OK if result.all_accepted else EXIT_FAILED


def run_benchmark(args: argparse.Namespace) -> int:
    from .benchmark.measure import benchmark
    from .benchmark.report import benchmark_markdown, write_benchmark

    result = benchmark(args.models, data=args.data, threads=args.threads, keras_path=args.keras,
                       limit=args.limit, runs=args.runs, warmup=args.warmup, progress=not args.quiet)
    print(benchmark_markdown(result))
    written = write_benchmark(result, args.out or Path(args.models[0]).parent)
    print(f"{PROG}: wrote {', '.join(str(p) for p in written)}")
    return EXIT_OK


# `python -m convert WORD …`: each job is a subparser above and its function here.
SUBCOMMANDS = {"export": run_export, "benchmark": run_benchmark, "evaluate": run_evaluate,
               "gate-device": run_gate_device}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 a variant not accepted, 2 usage or input error)."""
    args = parse_args(build_parser(), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    try:
        return SUBCOMMANDS[args.command](args)
    except (Exception, KeyboardInterrupt) as exc:  # ConvertError and the runner's model errors: 2; bugs re-raised
        return report_error(exc, PROG, interrupted=f"{PROG}: interrupted; every file already written is complete, "
                            "run the same command again to resume")
