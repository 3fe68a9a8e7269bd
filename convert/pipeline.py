"""The kit's main job: photos → trained model → gated TFLite variants → benchmark → runner.

``python -m convert.pipeline`` (what ``make all`` runs) drives the three packages
through their own command lines, exactly as a user would, and ends with one
summary table. Each stage's output stays in ``--out``; ``models/`` is only
written with ``--install``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge_runner.assets import models_dir
from edge_runner.extras import missing_extra

REPO = Path(__file__).resolve().parent.parent
# A source checkout keeps its runs in <repo>/runs; an installed kit (edgekit-pipeline) in ./runs.
DEFAULT_OUT = (REPO if (REPO / "pyproject.toml").is_file() else Path()) / "runs" / "cats_dogs"
DATA_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
# The archive itself is not checksummed upstream, so the download is verified by
# its content: SHA-256 over `sha256sum` lines of every known photo, sorted by
# path (cat.459 is absent from the reference copy and left out).
DATA_CONTENT_SHA256 = "054a87815e655befbc5be8f8ae12fcddb3edea06bf68adf5153d37d0df92bae8"
DATA_PHOTOS = 2999
SHIPPED_VARIANTS = ("int8", "float16")
MODEL_NAME = "cats_dogs"


class PipelineError(RuntimeError):
    """A stage failed; the message names the stage and what to look at."""


@dataclass(frozen=True)
class PipelineConfig:
    data: Path | None
    weights: str
    out: Path
    image_size: int = 224
    seed: int = 0
    epochs: int | None = None
    fine_tune_epochs: int | None = None
    variants: str = "float32,float16,dynamic,int8"
    install: bool = False
    resume: bool = False
    background: Path | None = None


@dataclass(frozen=True)
class StageTime:
    name: str
    seconds: float


def content_digest(root: Path) -> tuple[str, int]:
    """SHA-256 over ``<sha256>  ./<relative path>`` lines of every ``.jpg`` under ``root``, sorted.

    Equivalent to ``find . -name '*.jpg' | sort | xargs sha256sum | sha256sum``.
    """
    lines = []
    files = sorted(root.rglob("*.jpg"), key=lambda p: "./" + p.relative_to(root).as_posix())
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(root).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(files)


def fetch_data(cache_dir: Path | None = None) -> Path:
    """Download (once, cached by Keras) and verify the public cats_and_dogs_filtered archive.

    Returns the extracted ``cats_and_dogs_filtered`` directory. Raises
    ``PipelineError`` when the content does not match the known photos.
    """
    import keras

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)  # Keras falls back to /tmp/.keras for a missing folder
    archive = keras.utils.get_file(
        "cats_and_dogs_filtered.zip",
        origin=DATA_URL,
        extract=True,
        cache_dir=str(cache_dir) if cache_dir else None,
    )
    archive = Path(archive)
    candidates = [archive / "cats_and_dogs_filtered", archive, archive.parent / "cats_and_dogs_filtered"]
    root = next((c for c in candidates if (c / "train").is_dir() and (c / "validation").is_dir()), None)
    if root is None:
        raise PipelineError(f"data: the archive from {DATA_URL} did not contain train/ and validation/ (looked in {archive})")
    verified = root / ".edgekit-verified"
    if not verified.exists():
        reference = root.parent / "cats_and_dogs_filtered.reference"
        shutil.rmtree(reference, ignore_errors=True)
        reference.mkdir()
        # Compare only the photos the reference copy has (cat.459 is not among them).
        for sub in ("train", "validation"):
            for path in (root / sub).rglob("*.jpg"):
                if path.name != "cat.459.jpg":
                    target = reference / path.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
        digest, count = content_digest(reference)
        shutil.rmtree(reference, ignore_errors=True)
        if digest != DATA_CONTENT_SHA256:
            raise PipelineError(
                f"data: the downloaded photos in {root} do not match the known set "
                f"({count} photos, content sha256 {digest}, expected {DATA_PHOTOS} photos and {DATA_CONTENT_SHA256})"
            )
        verified.write_text(digest + "\n")
    return root


def run_stage(name: str, argv: list[str], *, stdout=None) -> float:
    """Run one stage's command line with live output; returns its duration in seconds."""
    print(f"\n=== {name}: {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=stdout)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise PipelineError(f"{name}: `{' '.join(argv)}` exited with status {result.returncode}; its output is above")
    return elapsed


def runner_accuracy(lines_path: Path, data_dir: Path) -> tuple[float, int, int]:
    """Accuracy of the runner's ``--json`` lines, the true label being the photo's class folder."""
    correct = total = 0
    for line in lines_path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        truth = Path(record["source"]).parent.name
        total += 1
        correct += record["label"] == truth
    if total == 0:
        raise PipelineError(f"runner: classified no photos from {data_dir}")
    return correct / total, correct, total


def run_pipeline(config: PipelineConfig) -> int:
    """Run every stage and print the summary. Returns the exit status (0 all accepted)."""
    python = sys.executable
    out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    times: list[StageTime] = []

    start = time.perf_counter()
    data = config.data.resolve() if config.data else fetch_data()
    if not (data / "train").is_dir() or not (data / "validation").is_dir():
        raise PipelineError(f"data: {data} must contain train/ and validation/ class folders")
    times.append(StageTime("data", time.perf_counter() - start))
    print(f"data: {data}", flush=True)

    train_out, tflite_out, bench_out = out / "train", out / "tflite", out / "benchmark"
    train_cmd = [python, "-m", "train", "--data", str(data), "--out", str(train_out), "--weights", config.weights,
                 "--image-size", str(config.image_size), "--seed", str(config.seed)]
    if config.epochs is not None:
        train_cmd += ["--epochs", str(config.epochs)]
    if config.fine_tune_epochs is not None:
        train_cmd += ["--fine-tune-epochs", str(config.fine_tune_epochs)]
    if config.background is not None:
        background = config.background.resolve()
        if not background.is_dir():
            raise PipelineError(f"--background {config.background}: not a directory of photos")
        train_cmd += ["--background", str(background)]
    # A repeated `make all` starts over; --resume continues an interrupted run instead.
    train_cmd.append("--resume" if config.resume and (train_out / "checkpoints").exists() else "--overwrite")
    times.append(StageTime("train", run_stage("train", train_cmd)))

    export_cmd = [python, "-m", "convert", "export", str(train_out), "--out", str(tflite_out), "--variants", config.variants]
    times.append(StageTime("convert + gate", run_stage("convert", export_cmd)))

    contract = json.loads((train_out / "contract.json").read_text())
    name = contract.get("name") or MODEL_NAME
    models = [tflite_out / f"{name}_{v}.tflite" for v in config.variants.split(",")]
    bench_cmd = [python, "-m", "convert", "benchmark", *map(str, models), "--data", str(data / "validation"),
                 "--keras", str(train_out / "model.keras"), "--out", str(bench_out), "--threads", "1,2"]
    times.append(StageTime("benchmark", run_stage("benchmark", bench_cmd)))

    int8 = tflite_out / f"{name}_int8.tflite"
    lines = out / "runner_validation.jsonl"
    with lines.open("w") as handle:
        runner_cmd = [python, "-m", "edge_runner", "--json", "--model", str(int8), str(data / "validation")]
        times.append(StageTime("runner", run_stage("runner (int8, validation photos)", runner_cmd, stdout=handle)))
    accuracy, correct, total = runner_accuracy(lines, data / "validation")

    false_alarms = None
    held_out = background_validation(train_out)
    if held_out:
        bg_lines = out / "runner_background.jsonl"
        with bg_lines.open("w") as handle:
            runner_cmd = [python, "-m", "edge_runner", "--json", "--model", str(int8), *map(str, held_out)]
            times.append(StageTime("runner (background)", run_stage(
                "runner (int8, held-out background photos)", runner_cmd, stdout=handle)))
        false_alarms = runner_false_alarms(bg_lines)

    if config.install:
        install_models(tflite_out, name)

    print_summary(out, bench_out, train_out, tflite_out, accuracy, correct, total, times, false_alarms)
    return 0


def background_validation(train_out: Path) -> list[Path]:
    """The validation photos of the background class in ``split.json`` (none without a background class)."""
    split = json.loads((train_out / "split.json").read_text())
    label = split.get("background_label")
    return [Path(item["path"]) for item in split["validation"] if label is not None and item["label"] == label]


def runner_false_alarms(lines_path: Path) -> tuple[float, int, int]:
    """Share of the runner's ``--json`` lines (background photos) that say something of interest was seen."""
    records = [json.loads(line) for line in lines_path.read_text().splitlines() if line.strip()]
    if not records:
        raise PipelineError(f"runner: classified no background photos (see {lines_path})")
    alarms = sum(bool(record["detected"]) for record in records)
    return alarms / len(records), alarms, len(records)


def install_models(tflite_out: Path, name: str) -> None:
    """Copy the shipped variants (and their contracts) into ``models/``."""
    target = models_dir()  # <repo>/models in a checkout or editable install
    target.mkdir(exist_ok=True)
    for variant in SHIPPED_VARIANTS:
        for suffix in (".tflite", ".contract.json"):
            source = tflite_out / f"{name}_{variant}{suffix}"
            shutil.copy2(source, target / source.name)
    shutil.copy2(tflite_out / "labels.txt", target / "labels.txt")
    print(f"installed {', '.join(SHIPPED_VARIANTS)} into {target}")


def print_summary(out, bench_out, train_out, tflite_out, accuracy, correct, total, times, false_alarms=None) -> None:
    report = json.loads((tflite_out / "report.json").read_text())
    bench = json.loads((bench_out / "benchmark.json").read_text()) if (bench_out / "benchmark.json").exists() else {}
    train_report = json.loads((train_out / "report.json").read_text())
    print("\n=== summary")
    print(f"Keras float model: validation accuracy {100 * train_report['summary']['val_accuracy']:.2f}%")
    print(f"{'variant':<10} {'accepted':>8} {'accuracy':>9} {'agree':>7} {'size MB':>8} {'p50 ms (1 thr)':>15}")
    latency = {row.get("variant"): row for row in bench.get("models", [])}
    for row in report.get("variants", []):
        bench_row = latency.get(row["variant"], {})
        p50 = bench_row.get("latency_ms", {}).get("1", {}).get("p50")
        print(
            f"{row['variant']:<10} {('yes' if row['accepted'] else 'NO'):>8} {100 * row['accuracy']:>8.2f}% "
            f"{100 * row['agreement']:>6.2f}% {row['size_bytes'] / 1e6:>8.2f} {(f'{p50:.1f}' if p50 else '-'):>15}"
        )
    contract = json.loads((train_out / "contract.json").read_text())
    threshold = contract.get("threshold")
    applied = f", threshold {threshold:g}" if threshold is not None else ""
    print(f"runner (int8, decode → resize → invoke{applied}): {100 * accuracy:.2f}% ({correct}/{total}) on the validation photos")
    if false_alarms is not None:
        rate, alarms, count = false_alarms
        print(f"runner false alarms (held-out {contract.get('background_label')!r} photos given a real label"
              f"{applied}): {100 * rate:.2f}% ({alarms}/{count})")
    print("time: " + ", ".join(f"{t.name} {t.seconds:.0f}s" for t in times) + f"; total {sum(t.seconds for t in times) / 60:.1f} min")
    print(f"files: {out} (train/, tflite/, benchmark/, runner_validation.jsonl"
          + (", runner_background.jsonl)" if false_alarms is not None else ")"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convert.pipeline",
        description="Train, convert, gate, benchmark and run the cats-vs-dogs classifier end to end.",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="a cats_and_dogs_filtered folder (train/ + validation/); default: download the public archive")
    parser.add_argument("--background", type=Path, default=None, metavar="DIR",
                        help="a folder of photos with no cat or dog in them: trained as the background class 'other'")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' (Keras download), 'none', or a local MobileNetV2 no-top .h5 (default: imagenet)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: runs/cats_dogs)")
    parser.add_argument("--image-size", type=int, default=224, choices=(96, 128, 160, 192, 224))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="head epochs (default: the trainer's)")
    parser.add_argument("--fine-tune-epochs", type=int, default=None, help="fine-tuning epochs (default: the trainer's)")
    parser.add_argument("--variants", default="float32,float16,dynamic,int8")
    parser.add_argument("--install", action="store_true", help="copy the int8 and float16 models into models/")
    parser.add_argument("--resume", action="store_true", help="resume an interrupted training run in --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = missing_extra("train")
    if missing:
        print(f"pipeline: error: {missing}", file=sys.stderr)
        return 2
    config = PipelineConfig(
        data=args.data, weights=args.weights, out=args.out, image_size=args.image_size, seed=args.seed,
        epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs, variants=args.variants,
        install=args.install, resume=args.resume, background=args.background,
    )
    try:
        return run_pipeline(config)
    except PipelineError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\npipeline: interrupted; run again with --resume to continue training", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
