"""``convert benchmark``: size, latency and accuracy of ``.tflite`` variants, with the Keras model as baseline.

Latency is what the runner pays per image: :meth:`edge_runner.core.model.Classifier.probabilities`
(quantise the input, invoke, dequantise the output) on ai-edge-litert, timed after
warm-up runs, reported as p50/p90 per thread count. The Keras float model's
latency (TensorFlow, ``tf.function``) is measured in the same run as the baseline.
The timing itself is :mod:`edge_runner.common.timing`'s; the table, JSON and chart are
written by :mod:`convert.benchmark.report`.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edge_runner.core.model import Classifier
from edge_runner.common.native_log import LITERT_NOISE, filtered_stderr, import_quietly
from edge_runner.common.run_layout import RunLayout
from edge_runner.common.timing import Latency, time_interleaved

from ..errors import ConvertError
from ..gate.accuracy import compare, predict_keras, predict_tflite, score, truth_indices
from ..photos import Photo, Warn, decode, labelled_folder, warn_stderr

# Figures in benchmark.json are rounded to the microsecond.
DIGITS = 3


@dataclass
class ModelBenchmark:
    """One model's measurements.

    Attributes:
        name: file name (or ``"Keras float"``).
        variant: ``float32``/``float16``/``dynamic``/``int8``/… or ``keras``.
        size_bytes: file size.
        latencies: one per thread count measured.
        accuracy: percent correct on the photos (None without ``--data``).
        agreement: percent of photos with the reference's top-1 (None without a reference).
    """

    name: str
    path: str
    variant: str
    size_bytes: int
    latencies: list[Latency] = field(default_factory=list)
    accuracy: float | None = None
    agreement: float | None = None

    def latency(self, threads: int) -> Latency | None:
        return next((lat for lat in self.latencies if lat.threads == threads), None)


@dataclass
class BenchmarkResult:
    """The benchmark table's content.

    Attributes:
        models: the ``.tflite`` files, in the order given.
        keras: the Keras float baseline (None without ``--keras``).
        reference: what ``agreement`` is measured against.
        photos: photos used for accuracy (0 without ``--data``).
        threads: thread counts measured.
        environment: machine and library versions.
    """

    models: list[ModelBenchmark]
    keras: ModelBenchmark | None
    reference: str | None
    data: str | None
    photos: int
    threads: tuple[int, ...]
    runs: int
    environment: dict[str, str]


def _limited(photos: list[Photo], limit: int | None) -> list[Photo]:
    """At most ``limit`` photos, taken round-robin across classes so every class is represented."""
    if limit is None or limit >= len(photos):
        return photos
    by_class: dict[str, list[Photo]] = {}
    for photo in photos:
        by_class.setdefault(str(photo.label), []).append(photo)
    chosen: list[Photo] = []
    queues = [list(v) for _, v in sorted(by_class.items())]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def _load_keras(path: Path, threads: int) -> tuple[Any, int | None]:
    """Load a ``.keras`` model (or a training dir's ``model.keras``) with TensorFlow limited to ``threads``."""
    tf = import_quietly("tensorflow")

    used: int | None = threads
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process: its default stays
        used = None
    import keras

    if path.is_dir():
        path = RunLayout(path).model
    if not path.is_file():
        raise ConvertError(f"--keras: {path} not found (give TRAIN_OUT/model.keras or TRAIN_OUT)")
    try:
        return keras.saving.load_model(path, compile=False), used
    except Exception as exc:
        raise ConvertError(f"--keras: cannot load {path} ({type(exc).__name__}: {exc})") from None


def benchmark(models: Sequence[str | Path], *, data: Path | None = None, threads: Sequence[int] = (1, 2, 4),
              keras_path: Path | None = None, limit: int | None = None, runs: int = 50, warmup: int = 5,
              warn: Warn = warn_stderr, progress: bool = True) -> BenchmarkResult:
    """Measure every model; see the module docstring. Raises ``ConvertError`` / ``ModelError`` on bad input."""
    from tqdm import tqdm

    if not models:
        raise ConvertError("benchmark: give at least one MODEL.tflite")
    if runs < 1 or warmup < 0:
        raise ConvertError(f"`--runs` must be >= 1 and `--warmup` >= 0, received {runs} and {warmup}")
    with filtered_stderr(LITERT_NOISE):  # the first interpreter's XNNPACK INFO line
        classifiers = [Classifier(path, num_threads=1) for path in models]
    spec = classifiers[0].spec
    for c in classifiers[1:]:
        if (c.spec.labels, c.spec.height, c.spec.width) != (spec.labels, spec.height, spec.width):
            raise ConvertError(f"{c.path}: its contract differs from {classifiers[0].path}'s (labels or input size); "
                               "benchmark variants of one model together")
    photos: list[Photo] = []
    pixels = np.zeros((0, spec.height, spec.width, 3), np.uint8)
    if data is not None:
        photos = _limited(labelled_folder(Path(data), spec.labels, "--data"), limit)
        decoded = decode(photos, spec, warn=warn, progress="photos" if progress else None)
        if not decoded.photos:
            raise ConvertError(f"--data: none of the {len(photos)} photos in {data} could be read")
        photos, pixels = list(decoded.photos), decoded.pixels
    # Timing input: a real photo when there is one (activations, hence some kernels'
    # work, depend on content), else a fixed random image.
    sample = pixels[0] if len(pixels) else np.random.default_rng(0).integers(0, 256, (spec.height, spec.width, 3)).astype(np.uint8)

    keras_model = None
    keras_threads: int | None = None
    keras_call: Callable[[], Any] | None = None
    keras_entry = None
    if keras_path is not None:
        keras_model, keras_threads = _load_keras(Path(keras_path), min(threads))
        tf = sys.modules["tensorflow"]
        function = tf.function(lambda x: keras_model(x, training=False))
        batch = tf.constant(sample[np.newaxis].astype(np.float32))
        keras_call = lambda: function(batch).numpy()  # noqa: E731
        path = Path(keras_path)
        path = RunLayout(path).model if path.is_dir() else path
        keras_entry = ModelBenchmark("Keras float", str(path), "keras", path.stat().st_size)

    results = [ModelBenchmark(c.path.name, str(c.path), c.variant, c.size_bytes) for c in classifiers]
    steps = len(threads) * runs + (runs if keras_call is not None else 0) + (len(models) if len(pixels) else 0)
    bar = tqdm(total=steps, desc="benchmark", unit="round", disable=None if progress else True)
    for count in threads:
        bar.set_postfix_str(f"{count} thread{'s' if count > 1 else ''}")
        with filtered_stderr(LITERT_NOISE):
            timed = [Classifier(c.path, num_threads=count) for c in classifiers]
        calls: list[Callable[[], Any]] = [lambda t=t: t.probabilities(sample) for t in timed]
        times = time_interleaved(calls, runs, warmup, on_round=bar.update)
        for entry, measured in zip(results, times):
            entry.latencies.append(Latency.from_times(measured, count, digits=DIGITS))
    if keras_call is not None:
        # Timed on its own, after the .tflite models: TensorFlow's thread pools keep
        # spinning for a while after each call and would slow whatever ran next.
        bar.set_postfix_str("Keras")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs`")  # see gate.predict_keras
            (measured,) = time_interleaved([keras_call], runs, warmup, on_round=bar.update)
        keras_entry.latencies.append(Latency.from_times(measured, keras_threads or 0, digits=DIGITS))

    reference_probs = None
    reference_name = None
    if keras_model is not None and len(pixels):
        reference_probs = predict_keras(keras_model, pixels)
        reference_name = "Keras float model"
        keras_entry.accuracy = score(reference_probs, truth_indices(spec.labels, [p.label for p in photos]), spec.labels).accuracy
        keras_entry.agreement = 100.0

    if len(pixels):
        truth = truth_indices(spec.labels, [p.label for p in photos])
        all_probs = []
        for entry in results:
            bar.set_postfix_str(f"accuracy {entry.name}")
            probs = predict_tflite(entry.path, pixels, num_threads=min(max(threads), os.cpu_count() or 1))
            all_probs.append(probs)
            entry.accuracy = score(probs, truth, spec.labels).accuracy
            bar.update()
        if reference_probs is None:
            float32 = next((i for i, e in enumerate(results) if e.variant == "float32"), None)
            if float32 is not None:
                reference_probs, reference_name = all_probs[float32], f"{results[float32].name}"
        if reference_probs is not None:
            for entry, probs in zip(results, all_probs):
                entry.agreement = compare(reference_probs, probs).agreement
    bar.close()

    import importlib.metadata as md

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    environment = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.system()}",
        "python": platform.python_version(),
        "runtime": f"{classifiers[0].runtime.name} {classifiers[0].runtime.version}",
        "tensorflow": version("tensorflow") if keras_model is not None else "not used",
        "keras_threads": str(keras_threads) if keras_model is not None and keras_threads else "TensorFlow default",
    }
    return BenchmarkResult(results, keras_entry, reference_name, str(data) if data else None, len(pixels),
                           tuple(threads), runs, environment)
