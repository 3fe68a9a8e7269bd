"""``python -m train``: fine-tune a pretrained CNN on a folder of labelled photos.

Thin layer: flags → :class:`train.config.TrainConfig` → :func:`train.run_training`.
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

from .backbones import BACKBONES
from .config import CLASS_WEIGHT_CHOICES, FINE_TUNE_MODES, STRATEGIES, TrainConfig
from .errors import TrainError
from .sources import SOURCE_BY_CHOICES

PROG = "train"
DEFAULTS = TrainConfig(data="", out="")
# `python -m train WORD …` runs the module's main(argv) with the rest of the words.
SUBCOMMANDS = {"explain": "train.explain", "compare": "train.compare_cli"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m train",
        error_prog=PROG,
        description="Fine-tune a pretrained CNN on a folder of labelled photos; writes a Keras model, its input "
        "contract, labels, an evaluation report and plots into --out.",
        epilog="Other jobs: python -m train compare --help (train, convert and measure several candidate models: "
        "accuracy against int8 size and latency); python -m train explain --help (Grad-CAM maps of a trained run "
        "over photos).",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="[NAME=]DIR", action="append",
                      help="photos: DIR/<class>/*.jpg, or DIR/train/<class>/ + DIR/validation/<class>/, "
                      "or a flat folder with --labels-from-filename; repeat for several sources (each is reported "
                      "on its own; NAME names it, default: the folder's name)")
    data.add_argument("--out", required=True, metavar="DIR", help="output directory")
    data.add_argument("--labels-from-filename", action="store_true",
                      help="take labels from file names such as cat.123.jpg (flat folder)")
    data.add_argument("--background", metavar="[NAME=]DIR", action="append", default=None,
                      help="a folder (flat or nested) of photos with nothing of interest in them: trained as the "
                      "background class (not copied), split like the other classes; repeat for several sources")
    data.add_argument("--holdout-source", dest="holdout_sources", metavar="NAME", action="append", default=[],
                      help="never train on this source (a folder's name, or NAME:PREFIX with --source-by prefix); "
                      "its photos are only measured and the report's headline is their figure; repeatable")
    data.add_argument("--source-by", choices=SOURCE_BY_CHOICES, default=DEFAULTS.source_by,
                      help="folder: each --data/--background folder is a source (default); prefix: file-name "
                      "prefixes such as oxford_… split a folder into sources")
    data.add_argument("--balance-sources", action="store_true",
                      help="weight training photos so that every source of a class counts as much as the others")
    data.add_argument("--background-label", metavar="NAME", default=None,
                      help="the class that means 'nothing here' (default: 'other' with --background, else a class "
                      "folder named 'other' or 'background' if there is one)")
    data.add_argument("--max-false-alarm", type=float, default=DEFAULTS.max_false_alarm, metavar="RATE",
                      help="recommended threshold: the lowest whose false-alarm rate on the validation background "
                      "photos is at most RATE (default %(default)s)")
    data.add_argument("--validation-fraction", type=float, default=DEFAULTS.validation_fraction, metavar="F",
                      help="share of each class held out when there is no validation/ folder (default %(default)s)")
    data.add_argument("--class-weights", choices=CLASS_WEIGHT_CHOICES, default=DEFAULTS.class_weights,
                      help="weight classes by inverse frequency: auto = when imbalanced (default)")
    data.add_argument("--imbalance-ratio", type=float, default=DEFAULTS.imbalance_ratio, metavar="R",
                      help="largest/smallest class count from which the training set counts as imbalanced "
                      "(default %(default)s)")
    data.add_argument("--cache-dir", metavar="DIR", default=None,
                      help="where decoded photos and backbone activations are cached "
                      "(default $EDGEKIT_CACHE_DIR or ~/.cache/edgekit)")
    data.add_argument("--workers", type=int, default=DEFAULTS.workers, metavar="N", help="decoding threads (0: one per CPU)")

    model = parser.add_argument_group("model")
    model.add_argument("--backbone", choices=sorted(BACKBONES), default=DEFAULTS.backbone)
    model.add_argument("--alpha", type=float, default=DEFAULTS.alpha, help="width multiplier (default %(default)s)")
    model.add_argument("--image-size", type=int, default=DEFAULTS.image_size, metavar="PX",
                       help="square input side in pixels (default %(default)s)")
    model.add_argument("--weights", default=DEFAULTS.weights, metavar="imagenet|none|PATH",
                       help="imagenet (Keras download, default), none (from scratch) or a local weights file")
    model.add_argument("--dropout", type=float, default=DEFAULTS.dropout, metavar="RATE")
    model.add_argument("--name", default=None, help="model name in the contract (default: from the labels)")

    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=DEFAULTS.epochs, metavar="N", help="head epochs (default %(default)s)")
    fit.add_argument("--fine-tune-epochs", type=int, default=DEFAULTS.fine_tune_epochs, metavar="N",
                     help="fine-tuning epochs, 0 to skip (default %(default)s)")
    fit.add_argument("--fine-tune-layers", type=int, default=DEFAULTS.fine_tune_layers, metavar="N",
                     help="backbone layers trained in phase 2, rounded up to a block boundary (default %(default)s)")
    fit.add_argument("--fine-tune-mode", choices=FINE_TUNE_MODES, default=DEFAULTS.fine_tune_mode,
                     help="cached: train the top layers on cached activations of --augment-views views per photo "
                     "(fast); full: every step through the whole network with fresh augmentation (slow)")
    fit.add_argument("--augment-views", type=int, default=DEFAULTS.augment_views, metavar="N",
                     help="views per training photo in cached mode: itself, its mirror image, then random "
                     "augmentations (default %(default)s)")
    fit.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, metavar="N")
    fit.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, metavar="LR",
                     help="head phase (and from-scratch) Adam learning rate (default %(default)s)")
    fit.add_argument("--fine-tune-learning-rate", type=float, default=DEFAULTS.fine_tune_learning_rate, metavar="LR",
                     help="fine-tuning Adam learning rate (default %(default)s)")
    fit.add_argument("--patience", type=int, default=DEFAULTS.patience, metavar="N",
                     help="early stopping: epochs without a lower validation loss (default %(default)s)")
    fit.add_argument("--seed", type=int, default=DEFAULTS.seed)
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    fit.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    fit.add_argument("--strategy", choices=STRATEGIES, default=DEFAULTS.strategy,
                     help="mirrored: tf.distribute.MirroredStrategy over all GPUs (same code path on a CPU)")
    fit.add_argument("--no-determinism", dest="deterministic", action="store_false",
                     help="skip tf.config.experimental.enable_op_determinism()")
    fit.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        data=args.data,
        out=args.out,
        backbone=args.backbone,
        alpha=args.alpha,
        image_size=args.image_size,
        weights=args.weights,
        epochs=args.epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_layers=args.fine_tune_layers,
        batch_size=args.batch_size,
        seed=args.seed,
        resume=args.resume,
        labels_from_filename=args.labels_from_filename,
        background=args.background,
        background_label=args.background_label,
        holdout_sources=args.holdout_sources,
        source_by=args.source_by,
        balance_sources=args.balance_sources,
        max_false_alarm=args.max_false_alarm,
        validation_fraction=args.validation_fraction,
        learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        dropout=args.dropout,
        patience=args.patience,
        class_weights=args.class_weights,
        imbalance_ratio=args.imbalance_ratio,
        fine_tune_mode=args.fine_tune_mode,
        augment_views=args.augment_views,
        strategy=args.strategy,
        name=args.name,
        cache_dir=args.cache_dir,
        workers=args.workers,
        overwrite=args.overwrite,
        deterministic=args.deterministic,
        verbose=0 if args.quiet else 1,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage or data error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    status = dispatch(argv, SUBCOMMANDS)
    if status is not None:
        return status
    args = parse_args(build_parser(), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    config = config_from_args(args)
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
