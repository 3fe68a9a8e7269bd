"""``python -m edgekit``: the main job's configuration, its stages and its command line.

Each stage is the package's own command line run as a subprocess, exactly as a
user would run it; every file name after a stage is read from what that stage
wrote (export's ``report.json`` names its ``.tflite`` files), never re-derived.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from edge_runner.common.run_layout import RunLayout
from edge_runner.core.assets import models_dir
from edge_runner.common.console import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, UsageError, parse_args,
                                 print_error)
from edge_runner.common.argtypes import non_negative_int, positive_int
from edge_runner.core.spec import LABELS_FILENAME, contract_path_for
from train.config import DEFAULT_SEED, SOURCE_BY_CHOICES

from .dataset import fetch_data
from .errors import PipelineError
from .summary import (StageTime, Summary, background_validation, format_summary, held_out_photos, read_json,
                      runner_accuracy, runner_by_source, runner_false_alarms, variant_rows)

PROG = "edgekit"  # the error lines' prefix: `edgekit: error: …`
REPO = Path(__file__).resolve().parent.parent
# A source checkout keeps its runs in <repo>/runs; an installed kit (edgekit-pipeline) in ./runs.
DEFAULT_OUT = (REPO if (REPO / "pyproject.toml").is_file() else Path()) / "runs" / "cats_dogs"
DEFAULT_VARIANTS = "float32,float16,dynamic,int8"
RUNNER_VARIANT = "int8"  # the runner stage classifies with it
SHIPPED_VARIANTS = ("int8", "float16")  # what --install copies into models/
IMAGE_SIZES = (96, 128, 160, 192, 224)
TEACHERS = ("imagenet", "none")
# The rescue head's limit (python -m train --rescue-limit): measured on three folds in train/README.md.
RESCUE_LIMIT = 0.5


@dataclass(frozen=True)
class PipelineConfig:
    """The main job's settings (the command line's flags).

    Attributes:
        data: ``train/`` + ``validation/`` class folders, or None to download the public archive.
        weights: ``"imagenet"``, ``"none"`` or a local MobileNetV2 no-top ``.h5``.
        out: the run's directory (``train/``, ``tflite/``, ``benchmark/`` and the runner's lines go there).
        image_size: the square input side in pixels (one of ``IMAGE_SIZES``).
        epochs, fine_tune_epochs: None → the trainer's defaults.
        variants: comma-separated export variants; must include ``int8`` (and ``float16`` with ``install``).
        install: copy the shipped variants into ``models/``; resume: continue an interrupted training run.
        background: folders of photos with nothing of interest, trained as the background class ``other``.
        more_data: more folders of class folders (``cats/``, ``dogs/``), each a source.
        holdout: sources never trained on; the runner measures the int8 model on them.
        source_by: ``"folder"`` or ``"prefix"`` (see ``train.data.sources``).
        teacher: ``"imagenet"``: with a background class, the rescue head (``python -m train --teacher imagenet
            --rescue-limit 0.5``, train/README.md); ``"none"``: without it.
    """

    data: Path | None
    weights: str
    out: Path
    image_size: int = 224
    seed: int = DEFAULT_SEED
    epochs: int | None = None
    fine_tune_epochs: int | None = None
    variants: str = DEFAULT_VARIANTS
    install: bool = False
    resume: bool = False
    background: tuple[Path, ...] = ()
    more_data: tuple[Path, ...] = ()
    holdout: tuple[str, ...] = ()
    source_by: str = "folder"
    teacher: str = "imagenet"


def check_config(config: PipelineConfig) -> None:
    """``UsageError`` naming the flag when an argument cannot work (before any stage runs)."""
    variants = [v.strip() for v in config.variants.split(",")]
    needed = {variant: "--install ships it" for variant in (SHIPPED_VARIANTS if config.install else ())}
    needed[RUNNER_VARIANT] = "the runner stage runs it"
    missing = [f"{variant} ({why})" for variant, why in needed.items() if variant not in variants]
    if missing:
        raise UsageError(f"--variants must include {' and '.join(missing)}, received {config.variants!r}")
    for flag, folders in (("--background", config.background), ("--more-data", config.more_data)):
        for folder in folders:
            if not folder.is_dir():
                raise UsageError(f"{flag} {folder}: not a directory of photos")
    if config.data is not None and not ((config.data / "train").is_dir() and (config.data / "validation").is_dir()):
        raise UsageError(f"--data {config.data}: must contain train/ and validation/ class folders")


def shown(argv: list[str], limit: int = 12) -> str:
    """The command line as printed: a runner stage given hundreds of photos shows the first ones and a count."""
    words = argv if len(argv) <= limit else [*argv[:limit], f"… ({len(argv) - limit} more)"]
    return " ".join(words)


def run_stage(name: str, argv: list[str], *, stdout: IO[str] | None = None) -> float:
    """Run one stage's command line with live output; returns its seconds, ``PipelineError`` when it exits non-zero."""
    print(f"\n=== {name}: {shown(argv)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=stdout)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise PipelineError(f"{name}: `{shown(argv)}` exited with status {result.returncode}; its output is above")
    return elapsed


def train_command(config: PipelineConfig, data: Path, train_out: Path) -> list[str]:
    argv = [sys.executable, "-m", "train", "--data", str(data), "--out", str(train_out), "--weights", config.weights,
            "--image-size", str(config.image_size), "--seed", str(config.seed)]
    if config.epochs is not None:
        argv += ["--epochs", str(config.epochs)]
    if config.fine_tune_epochs is not None:
        argv += ["--fine-tune-epochs", str(config.fine_tune_epochs)]
    for folder in config.more_data:
        argv += ["--data", str(folder.resolve())]
    for folder in config.background:
        argv += ["--background", str(folder.resolve())]
    for source in config.holdout:
        argv += ["--holdout-source", source]
    if config.source_by != "folder":
        argv += ["--source-by", config.source_by]
    if config.teacher != "none" and config.background:  # the rescue needs a background class to rescue from
        argv += ["--teacher", config.teacher, "--rescue-limit", str(RESCUE_LIMIT)]
    # A repeated `make all` starts over; --resume continues an interrupted run instead.
    argv.append("--resume" if config.resume and RunLayout(train_out).checkpoints.exists() else "--overwrite")
    return argv


def exported_models(report: dict, report_path: Path) -> dict[str, Path]:
    """``{variant: .tflite path}`` of the files export wrote, as its ``report.json`` lists them."""
    models = {row["variant"]: Path(row["path"]) for row in report.get("variants", []) if row.get("path")}
    if RUNNER_VARIANT not in models:
        raise PipelineError(f"convert: {report_path} lists no {RUNNER_VARIANT} model (variants: {sorted(models)})")
    return models


def export_models(train_out: Path, tflite_out: Path, variants: str, times: list[StageTime]) -> tuple[dict, dict[str, Path]]:
    """``python -m convert export``: export's ``report.json`` and ``{variant: .tflite path}`` of the files it wrote."""
    from convert.results import REPORT_JSON

    argv = [sys.executable, "-m", "convert", "export", str(train_out), "--out", str(tflite_out), "--variants", variants]
    times.append(StageTime("convert + gate", run_stage("convert", argv)))
    report_path = tflite_out / REPORT_JSON
    report = read_json(report_path, "convert")
    return report, exported_models(report, report_path)


def benchmark_models(models: dict[str, Path], data: Path, keras_model: Path, bench_out: Path,
                     times: list[StageTime]) -> dict:
    """``python -m convert benchmark`` on the exported files (1 and 2 threads); its ``benchmark.json``."""
    from convert.benchmark.report import BENCHMARK_JSON

    argv = [sys.executable, "-m", "convert", "benchmark", *map(str, models.values()), "--data", str(data),
            "--keras", str(keras_model), "--out", str(bench_out), "--threads", "1,2"]
    times.append(StageTime("benchmark", run_stage("benchmark", argv)))
    return read_json(bench_out / BENCHMARK_JSON, "benchmark")


def run_runner(title: str, model: Path, inputs: list[Path], lines: Path, times: list[StageTime], name: str) -> Path:
    """``python -m edge_runner --json --model MODEL INPUTS…`` with its JSON lines written to ``lines`` (returned)."""
    with lines.open("w", encoding="utf-8") as handle:
        argv = [sys.executable, "-m", "edge_runner", "--json", "--model", str(model), *map(str, inputs)]
        times.append(StageTime(name, run_stage(title, argv, stdout=handle)))
    return lines


def run_pipeline(config: PipelineConfig) -> Summary:
    """Run every stage (data, train, export + gate, benchmark, runner) and return the summary's figures.

    Raises ``UsageError`` for arguments that cannot work and ``PipelineError`` when a stage fails.
    """
    check_config(config)
    out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    times: list[StageTime] = []

    start = time.perf_counter()
    data = config.data.resolve() if config.data else fetch_data()
    times.append(StageTime("data", time.perf_counter() - start))
    print(f"data: {data}", flush=True)

    train_out, tflite_out, bench_out = out / "train", out / "tflite", out / "benchmark"
    times.append(StageTime("train", run_stage("train", train_command(config, data, train_out))))
    export_report, models = export_models(train_out, tflite_out, config.variants, times)
    run = RunLayout(train_out)
    benchmark = benchmark_models(models, data / "validation", run.model, bench_out, times)

    int8 = models[RUNNER_VARIANT]
    lines = run_runner(f"runner ({RUNNER_VARIANT}, validation photos)", int8, [data / "validation"],
                       out / "runner_validation.jsonl", times, "runner")
    files = ["train/", "tflite/", "benchmark/", lines.name]
    runner = runner_accuracy(lines, data / "validation")

    false_alarms = None
    held_out = background_validation(read_json(run.split, "train"))
    if held_out:
        bg_lines = run_runner(f"runner ({RUNNER_VARIANT}, held-out background photos)", int8, held_out,
                              out / "runner_background.jsonl", times, "runner (background)")
        files.append(bg_lines.name)
        false_alarms = runner_false_alarms(bg_lines)

    held_out = ()
    entries = held_out_photos(read_json(run.split, "train"))
    if entries:
        held_lines = run_runner(f"runner ({RUNNER_VARIANT}, held-out sources)", int8, [Path(e["path"]) for e in entries],
                                out / "runner_held_out.jsonl", times, "runner (held out)")
        files.append(held_lines.name)
        held_out = runner_by_source(held_lines, entries, read_json(run.contract, "train").get("background_label"))

    if config.install:
        install_models(models, tflite_out / LABELS_FILENAME)

    contract = read_json(run.contract, "train")
    return Summary(
        out=out, files=tuple(files),
        keras_accuracy=read_json(run.report_json, "train")["summary"]["val_accuracy"],
        variants=variant_rows(export_report, benchmark), runner=runner, false_alarms=false_alarms,
        threshold=contract.get("threshold"), background_label=contract.get("background_label"), times=tuple(times),
        held_out=held_out,
    )


def install_models(models: dict[str, Path], labels: Path, target: Path | None = None) -> list[Path]:
    """Copy the shipped variants' ``.tflite`` files, their contracts and ``labels`` into ``models/`` (or ``target``)."""
    target = models_dir() if target is None else target  # <repo>/models in a checkout or editable install
    target.mkdir(exist_ok=True)
    copied = []
    for variant in SHIPPED_VARIANTS:
        for source in (models[variant], contract_path_for(models[variant])):
            copied.append(Path(shutil.copy2(source, target / source.name)))
    copied.append(Path(shutil.copy2(labels, target / labels.name)))
    print(f"installed {', '.join(SHIPPED_VARIANTS)} into {target}")
    return copied


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edgekit", error_prog=PROG,
        description="The kit's main job: train, convert, gate, benchmark and run the cats-vs-dogs classifier end "
        "to end, with one summary table.",
    )
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="a cats_and_dogs_filtered folder (train/ + validation/); default: download the public archive")
    parser.add_argument("--more-data", type=Path, action="append", default=[], metavar="DIR",
                        help="more pet photos from another source (DIR/cats/, DIR/dogs/); repeatable")
    parser.add_argument("--background", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of photos with no cat or dog in them: trained as the background class 'other'; "
                        "repeatable, each a source")
    parser.add_argument("--holdout-source", dest="holdout", action="append", default=[], metavar="NAME",
                        help="a source never trained on: the int8 model is measured on it (see python -m train --help)")
    parser.add_argument("--source-by", choices=SOURCE_BY_CHOICES, default="folder",
                        help="folder: each folder is a source; prefix: file-name prefixes (oxford_…) split them")
    parser.add_argument("--weights", type=str, default="imagenet", metavar="imagenet|none|PATH",
                        help="'imagenet' (Keras download), 'none', or a local MobileNetV2 no-top .h5 (default: imagenet)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="output directory (default: runs/cats_dogs)")
    parser.add_argument("--image-size", type=int, default=224, choices=IMAGE_SIZES)
    parser.add_argument("--seed", type=non_negative_int, default=DEFAULT_SEED,
                        help="training seed (default %(default)s, the default of python -m train too)")
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N", help="head epochs (default: the trainer's)")
    parser.add_argument("--fine-tune-epochs", type=non_negative_int, default=None, metavar="N",
                        help="fine-tuning epochs (default: the trainer's; 0: none)")
    parser.add_argument("--variants", type=str, default=DEFAULT_VARIANTS,
                        help=f"export variants, comma-separated; int8 is required (default: {DEFAULT_VARIANTS})")
    parser.add_argument("--teacher", choices=TEACHERS, default="imagenet",
                        help="with --background: imagenet (default) builds the rescue head into the model (the ImageNet "
                        "classifier downloaded once, or from $EDGEKIT_MIRROR); none: without it")
    parser.add_argument("--install", action="store_true", help="copy the int8 and float16 models into models/")
    parser.add_argument("--resume", action="store_true", help="resume an interrupted training run in --out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv, needs_extra="train", prog=PROG)
    if isinstance(args, int):
        return args
    config = PipelineConfig(
        data=args.data, weights=args.weights, out=args.out, image_size=args.image_size, seed=args.seed,
        epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs, variants=args.variants,
        install=args.install, resume=args.resume, background=tuple(args.background), more_data=tuple(args.more_data),
        holdout=tuple(args.holdout), source_by=args.source_by, teacher=args.teacher,
    )
    try:
        summary = run_pipeline(config)
    except UsageError as exc:
        print_error(PROG, str(exc))
        return EXIT_USAGE
    except PipelineError as exc:
        print_error(PROG, str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; run again with --resume to continue training", file=sys.stderr)
        return EXIT_INTERRUPTED
    print("\n" + format_summary(summary))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
