"""``python -m train``: fine-tune a pretrained CNN on a folder of labelled photos.

Thin layer: flags (generated from :class:`train.config.TrainConfig`'s fields) → ``TrainConfig`` →
:func:`train.run_training`.
``python -m train explain …`` and ``python -m train compare …`` are the other jobs
(``SUBCOMMANDS``); with no such word first, the command trains one model, so
``python -m train --data …`` stays as it always was.

The conventions are the runner's (:mod:`edge_runner.common.console`): errors are one line
``train: error: …`` on stderr; exit status 2 for bad arguments or unusable data,
130 for Ctrl-C (the checkpoints let ``--resume`` continue).
"""

from __future__ import annotations

import argparse
import logging
import sys

from edge_runner.common.console import EXIT_INTERRUPTED, EXIT_OK, Parser, dispatch, parse_args, report_error
from edge_runner.common.native_log import quiet_tensorflow_logs

from .config import TrainConfig
from .errors import TrainError
from .options import add_arguments, from_arguments

PROG = "train"
# `python -m train WORD …` runs the module's main(argv) with the rest of the words.
SUBCOMMANDS = {"explain": "train.explanations.explain", "compare": "train.comparison.compare_cli"}


def build_parser(retrain: bool = False) -> argparse.ArgumentParser:
    """The flags, generated from :class:`train.config.TrainConfig`'s fields (group, flag, help, choices)."""
    parser = Parser(
        prog="python -m train",
        error_prog=PROG,
        description="Fine-tune a pretrained CNN on a folder of labelled photos; writes a Keras model, its input "
        "contract, labels, an evaluation report and plots into --out.",
        epilog="Other jobs: python -m train compare --help (train, convert and measure several candidate models: "
        "accuracy against int8 size and latency); python -m train explain --help (Grad-CAM maps of a trained run "
        "over photos).",
    )
    add_arguments(parser, TrainConfig)
    if retrain:  # --init-from RUN: RUN's --data are the default
        next(a for a in parser._actions if a.dest == "data").required = False  # noqa: SLF001
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The configuration the parsed flags describe (not yet validated)."""
    return from_arguments(TrainConfig, args)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage or data error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    status = dispatch(argv, SUBCOMMANDS)
    if status is not None:
        return status
    retrain = any(word == "--init-from" or word.startswith("--init-from=") for word in argv)
    args = parse_args(build_parser(retrain), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    if args.data is None:  # --init-from RUN without --data: RUN's folders only
        args.data = []
    config = config_from_args(args)
    if config.init_from:
        from .retrain import given_fields, inherit

        try:
            config = inherit(config, given_fields(build_parser(True), argv))
        except TrainError as exc:
            return report_error(exc, PROG)
    # TensorFlow's C++ log lines are not for users (see edge_runner.common.native_log); failures still raise.
    quiet_tensorflow_logs()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from .progress import configure_logging

    handler = configure_logging(config.verbose)
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        from .training import run_training

        with logging_redirect_tqdm(loggers=[logging.getLogger("train")]):
            result = run_training(config)
    except TrainError as exc:
        return report_error(exc, PROG)
    except KeyboardInterrupt:
        print(
            f"\n{PROG}: interrupted: finished epochs are checkpointed in {args.out}/checkpoints; "
            "run the same command with --resume to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        logging.getLogger("train").removeHandler(handler)
    print(result.summary_line())
    return EXIT_OK
