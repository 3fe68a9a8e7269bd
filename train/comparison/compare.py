"""``python -m train compare``: train, convert and measure several candidate models the same way.

For each candidate (backbone, width, input size, weights) into ``OUT/candidates/NAME/``:
``train.run_training`` with the kit's recipe (decoded photos and backbone
activations shared through the cache) → ``convert.export.export`` with float32
and int8 through the gate → the int8 model's answer on every validation photo
through the runner's path (for the paired noise test) → ``result.json``, written
atomically last. A candidate whose ``result.json`` exists with the same training
options is not trained again. Then the int8 latency of every finished candidate
is measured with ``edge_runner.cli.benchmark.measure_latency`` at each thread count,
interleaved over rounds so background load hits all of them alike, and
``report.md``, ``report.json`` and ``accuracy_latency.png`` are written.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_runner.common.run_layout import RunLayout

from .candidates import Candidate
from .records import CandidateResult, CompareConfig
from ..config import TrainConfig
from ..errors import ConfigError, DataError, TrainError

log = logging.getLogger("train.comparison.compare")

RESULT_FILENAME = "result.json"
VARIANTS = ("float32", "int8")
# Options that do not change what a candidate's training produces.
NOT_IDENTITY = frozenset({"out", "resume", "overwrite", "verbose", "workers", "cache_dir"})


def train_config_for(config: CompareConfig, candidate: Candidate, out: Path) -> TrainConfig:
    """The kit's recipe for one candidate (from scratch: all epochs in the fine-tuning phase)."""
    scratch = candidate.weights == "none"
    return TrainConfig(
        data=str(Path(config.data).expanduser().resolve()), out=str(out), backbone=candidate.backbone,
        alpha=candidate.alpha, image_size=candidate.image_size, weights=str(candidate.weights),
        epochs=config.epochs, fine_tune_epochs=config.scratch_epochs if scratch else config.fine_tune_epochs,
        batch_size=config.batch_size, seed=config.seed, cache_dir=config.cache_dir, workers=config.workers,
        verbose=config.verbose,
    )


def identity(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in NOT_IDENTITY}


def _train(train_config: TrainConfig) -> tuple[float, float, int]:
    """Train (or reuse a finished / resume an interrupted run); returns (Keras accuracy %, seconds, training photos)."""
    from .. import run_training

    out = Path(train_config.out)
    layout = RunLayout(out)
    report = layout.report_json
    if report.is_file() and layout.model.is_file() and layout.config.is_file():
        if not TrainConfig.load(layout.config).differences(train_config):
            data = json.loads(report.read_text(encoding="utf-8"))
            log.info("  training finished earlier: reusing %s", out)
            return data["validation"]["accuracy"] * 100, float(data["elapsed_s"]), int(sum(data["data"]["counts"]["train"].values()))
    resume = layout.state.is_file()
    result = run_training(replace(train_config, resume=resume, overwrite=not resume))
    return result.val_accuracy * 100, result.elapsed_s, result.num_train


def _int8_mistakes(int8_path: Path, split_path: Path) -> tuple[list[str], int]:
    """The validation photos the int8 model gets wrong through the runner's path (decode → Classifier)."""
    from convert.gate.accuracy import predict_tflite, truth_indices
    from convert.photos import decode, split_photos
    from edge_runner.core.model import read_contract

    spec = read_contract(int8_path)
    split = json.loads(split_path.read_text(encoding="utf-8"))
    decoded = decode(split_photos(split["validation"], spec.labels, str(split_path)), spec, draft=True, warn=lambda _m: None)
    predicted = predict_tflite(int8_path, decoded.pixels).argmax(axis=1)
    truth = truth_indices(spec.labels, [p.label for p in decoded.photos])
    return [str(decoded.photos[i].path) for i in np.flatnonzero(predicted != truth)], len(decoded.photos)


def run_candidate(config: CompareConfig, candidate: Candidate) -> CandidateResult:
    """Train, convert and score one candidate into ``OUT/candidates/NAME/``; reuse it when already finished.

    Raises:
        TrainError, ConvertError, OSError: the candidate failed (the caller records it and goes on).
        ConfigError: an earlier result used other options and ``overwrite`` is off.
    """
    from convert.export import ExportOptions, export

    folder = Path(config.out) / "candidates" / candidate.name
    train_config = train_config_for(config, candidate, folder / "train")
    result_path = folder / RESULT_FILENAME
    if result_path.is_file():
        done = CandidateResult.load(result_path)
        if done.train_config == identity(train_config):
            log.info("%s: finished earlier, not trained again (%s)", candidate.name, result_path)
            done.skipped = True
            return done
        if not config.overwrite:
            changed = sorted(k for k, v in identity(train_config).items() if done.train_config.get(k) != v)
            raise ConfigError(f"{result_path}: {candidate.name} was measured with other options ({', '.join(changed)}); "
                              "pass --overwrite to redo it or choose another --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log.info("%s: training (%s weights)", candidate.name, Path(str(candidate.weights)).name)
    keras_accuracy, train_seconds, num_train = _train(train_config)
    started = time.perf_counter()
    options = ExportOptions(variants=VARIANTS, calibration_size=max(10, min(config.calibration_size, num_train)), seed=config.seed)
    exported = export(folder / "train", folder / "tflite", options, log=lambda m: log.info("  %s", m),
                      warn=lambda m: log.warning("  convert: %s", m), progress=config.verbose >= 1)
    variants = {v.variant: v for v in exported.variants}
    failed = [f"{name}: {v.error}" for name, v in variants.items() if v.status == "failed"]
    if failed:
        raise TrainError(f"{candidate.name}: conversion failed ({'; '.join(failed)})")
    int8 = variants["int8"]
    wrong, photos = _int8_mistakes(Path(int8.path), RunLayout(folder / "train").split)
    int8_accuracy = 100.0 * (photos - len(wrong)) / photos
    if abs(int8_accuracy - int8.scores.accuracy) > 1e-6:
        log.warning("  %s: int8 accuracy %.2f%% through the runner but %.2f%% in the gate", candidate.name,
                    int8_accuracy, int8.scores.accuracy)
    result = CandidateResult(
        name=candidate.name, candidate=candidate.to_dict(), keras_accuracy=round(keras_accuracy, 4),
        float_accuracy=round(variants["float32"].scores.accuracy, 4), int8_accuracy=round(int8_accuracy, 4),
        int8_gate=int8.status, int8_size_bytes=int8.size_bytes, float32_size_bytes=variants["float32"].size_bytes,
        int8_path=str(Path(int8.path).resolve()), train_seconds=round(train_seconds, 2),
        convert_seconds=round(time.perf_counter() - started, 2), photos=photos, wrong=sorted(wrong),
        train_config=identity(train_config),
    )
    result.save(result_path)
    log.info("%s: Keras %.2f%%, float32 %.2f%%, int8 %.2f%% (%s), int8 %.2f MB, trained in %.0f s", candidate.name,
             result.keras_accuracy, result.float_accuracy, result.int8_accuracy, result.int8_gate,
             result.int8_size_bytes / 1e6, result.train_seconds)
    return result


def measure_latencies(results: list[CandidateResult], threads: tuple[int, ...], runs: int, rounds: int) -> None:
    """Fill ``latency_ms`` / ``latency_p90_ms`` of finished candidates: medians over ``rounds`` interleaved rounds.

    Each measurement is ``edge_runner.cli.benchmark.measure_latency`` on one validation
    photo preprocessed with the model's contract (the runner's path).
    """
    from edge_runner.cli.benchmark import measure_latency
    from edge_runner.core.image import preprocess
    from edge_runner.core.model import read_contract

    done = [r for r in results if r.status == "done"]
    pixels = {}
    for r in done:
        spec = read_contract(r.int8_path)
        split = json.loads(RunLayout(Path(r.int8_path).parent.parent / "train").split.read_text(encoding="utf-8"))
        pixels[r.name] = preprocess(split["validation"][0]["path"], spec).array
    p50: dict[tuple[str, int], list[float]] = {}
    p90: dict[tuple[str, int], list[float]] = {}
    for _ in range(max(1, rounds)):
        for r in done:
            for t in threads:
                stats = measure_latency(r.int8_path, pixels[r.name], t, runs=runs)
                p50.setdefault((r.name, t), []).append(stats.p50_ms)
                p90.setdefault((r.name, t), []).append(stats.p90_ms)
    for r in done:
        r.latency_ms = {str(t): round(float(np.median(p50[(r.name, t)])), 3) for t in threads}
        r.latency_p90_ms = {str(t): round(float(np.median(p90[(r.name, t)])), 3) for t in threads}


def check_previous(config: CompareConfig) -> None:
    """Refuse (before any work) finished candidates measured with other training options, unless ``overwrite``."""
    if config.overwrite:
        return
    problems = []
    for candidate in config.candidates:
        path = Path(config.out) / "candidates" / candidate.name / RESULT_FILENAME
        if path.is_file():
            wanted = identity(train_config_for(config, candidate, path.parent / "train"))
            done = CandidateResult.load(path).train_config
            changed = sorted(k for k, v in wanted.items() if done.get(k) != v)
            if changed:
                problems.append(f"{candidate.name} ({', '.join(changed)})")
    if problems:
        raise ConfigError(f"--out {config.out}: already holds candidates measured with other options: {'; '.join(problems)}; "
                          "use the same options, pass --overwrite to redo them, or choose another --out")


def run_comparison(config: CompareConfig) -> tuple[list[CandidateResult], dict[str, Any]]:
    """Every candidate (a failed one is recorded and the rest go on), then latencies and the report.

    Returns the results in candidate order and the report (as written to ``report.json``).
    """
    from .compare_report import write_reports

    if not Path(config.data).expanduser().is_dir():
        raise DataError(f"--data {config.data}: not a directory of photos")
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {config.out}: exists and is not a directory")
    check_previous(config)
    out.mkdir(parents=True, exist_ok=True)
    import keras  # after the checks above: a wrong flag is reported without waiting for TensorFlow

    started = time.perf_counter()
    results = []
    for index, candidate in enumerate(config.candidates, start=1):
        log.info("[%d/%d] %s", index, len(config.candidates), candidate.name)
        try:
            results.append(run_candidate(config, candidate))
        except DataError:
            raise  # the same photos for every candidate: no point going on
        except (TrainError, OSError, ValueError) as exc:  # ConvertError is a ValueError; ConfigError a TrainError
            message = " ".join(str(exc).split())
            log.error("%s: failed: %s", candidate.name, message)
            results.append(CandidateResult(candidate.name, candidate.to_dict(), status="failed", error=message))
        finally:
            keras.backend.clear_session()
            gc.collect()
    log.info("measuring int8 latency at %s thread(s), %d rounds of %d runs", list(config.threads), config.latency_rounds,
             config.latency_runs)
    measure_latencies(results, config.threads, config.latency_runs, config.latency_rounds)
    report = write_reports(config, results, time.perf_counter() - started)
    return results, report
