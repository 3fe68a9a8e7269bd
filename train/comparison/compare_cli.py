"""``python -m train compare``: flags → :class:`train.comparison.compare.CompareConfig` → :func:`train.comparison.compare.run_comparison`.

Exit status (the runner's conventions, :mod:`edge_runner.common.console`): 0 every candidate
measured, 1 some failed (the others are in the report), 2 bad arguments or data
(one line ``train compare: error: …``), 130 Ctrl-C (run the same command again:
finished candidates are kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edge_runner.common.argtypes import non_negative_int, positive_float, positive_int, thread_counts
from edge_runner.common.console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, parse_args, print_error
from edge_runner.common.native_log import quiet_tensorflow_logs

from .candidates import parse_candidates, resolve_weights
from ..config import TrainConfig
from ..errors import TrainError

PROG = "train compare"
DEFAULT_CANDIDATES = ("mobilenet_v2:0.35:96,mobilenet_v2:0.35:128,mobilenet_v2:0.35:160,mobilenet_v2:0.35:224,"
                      "mobilenet_v2:1.0:128,mobilenet_v2:1.0:224,baseline:128")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        error_prog=PROG,
        description="Train, convert (float32 + int8 through the gate) and measure several candidate models on the same "
        "photos: validation accuracy, int8 size and latency, training time; writes report.md, report.json and a plot of "
        "accuracy against latency with the Pareto front, and recommends one for a latency/size budget.",
        epilog="Candidates: BACKBONE:ALPHA:SIZE[:WEIGHTS] (e.g. mobilenet_v2:0.35:96) or BACKBONE:SIZE[:WEIGHTS] for "
        "one-width backbones (baseline:128 is a small CNN trained from scratch), comma-separated, or a JSON file "
        "with a list of {backbone, alpha, image_size, weights}. Finished candidates are not trained again.",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="photos, in any layout python -m train reads")
    parser.add_argument("--out", required=True, metavar="DIR", help="the comparison's folder (candidates/, report, plot)")
    parser.add_argument("--candidates", default=DEFAULT_CANDIDATES, metavar="LIST|FILE.json",
                        help="the models to compare (default: %(default)s)")
    parser.add_argument("--weights", action="append", default=None, metavar="imagenet|ALPHA=PATH|FILE|DIR",
                        help="ImageNet weights per width for candidates without their own: imagenet (Keras' download), "
                        "ALPHA=PATH, a file under Keras' name (mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
                        "<alpha>_<size>_no_top.h5) or a directory of such files; repeatable (default imagenet)")
    parser.add_argument("--epochs", type=non_negative_int, default=TrainConfig.epochs, metavar="N", help="head epochs (default %(default)s)")
    parser.add_argument("--fine-tune-epochs", type=non_negative_int, default=TrainConfig.fine_tune_epochs, metavar="N", help="fine-tuning epochs (default %(default)s)")
    parser.add_argument("--scratch-epochs", type=positive_int, default=20, metavar="N",
                        help="epochs for candidates trained from scratch (default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=TrainConfig.seed, help="training seed (default %(default)s, as make all)")
    parser.add_argument("--batch-size", type=positive_int, default=TrainConfig.batch_size, metavar="N")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="decoded photos and activations cache (default $EDGEKIT_CACHE_DIR or ~/.cache/edgekit)")
    parser.add_argument("--calibration-size", type=positive_int, default=300, metavar="N", help="int8 calibration photos (default %(default)s)")
    parser.add_argument("--threads", type=thread_counts, default=(1, 4), metavar="N,N", help="latency thread counts (default 1,4)")
    parser.add_argument("--latency-runs", type=positive_int, default=100, metavar="N", help="timed calls per measurement (default %(default)s)")
    parser.add_argument("--latency-rounds", type=positive_int, default=3, metavar="N",
                        help="interleaved rounds over all candidates; the median is reported (default %(default)s)")
    parser.add_argument("--max-latency-ms", type=positive_float, default=None, metavar="MS",
                        help="budget for the recommendation: int8 p50 latency at 1 thread")
    parser.add_argument("--max-size-mb", type=positive_float, default=None, metavar="MB", help="budget: int8 file size")
    parser.add_argument("--target-accuracy", type=float, default=98.0, metavar="PCT",
                        help="the report names the fastest candidate with at least this int8 accuracy (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="redo candidates measured earlier with other options")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 all measured, 1 some failed, 2 usage or data error)."""
    args = parse_args(build_parser(), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    quiet_tensorflow_logs()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from ..progress import configure_logging
    from .compare import CompareConfig, run_comparison

    handler = configure_logging(1)
    try:
        candidates = resolve_weights(parse_candidates(args.candidates), args.weights or ["imagenet"])
        config = CompareConfig(
            data=args.data, out=args.out, candidates=tuple(candidates), epochs=args.epochs,
            fine_tune_epochs=args.fine_tune_epochs, scratch_epochs=args.scratch_epochs, seed=args.seed,
            batch_size=args.batch_size, cache_dir=args.cache_dir, calibration_size=args.calibration_size,
            threads=args.threads, latency_runs=args.latency_runs, latency_rounds=args.latency_rounds,
            max_latency_ms=args.max_latency_ms, max_size_mb=args.max_size_mb, target_accuracy=args.target_accuracy,
            overwrite=args.overwrite, verbose=0 if args.quiet else 1,
        )
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.getLogger("train")]):
            results, report = run_comparison(config)
    except TrainError as exc:
        print_error(PROG, str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted: finished candidates are kept in {args.out}/candidates; run the same command again to go on",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        logging.getLogger("train").removeHandler(handler)
    print(f"{report['recommendation']['line']}\nreport: {os.path.join(args.out, 'report.md')}")
    return EXIT_FAILED if any(r.status != "done" for r in results) else EXIT_OK
