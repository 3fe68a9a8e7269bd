"""``convert benchmark``: size, latency and accuracy of ``.tflite`` variants, with the Keras model as baseline.

Latency is what the runner pays per image: :meth:`edge_runner.model.Classifier.probabilities`
(quantise the input, invoke, dequantise the output) on ai-edge-litert, timed after
warm-up runs, reported as p50/p90 per thread count. The Keras float model's
latency (TensorFlow, ``tf.function``) is measured in the same run as the baseline.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConvertError
from .gate import compare, predict_keras, predict_tflite, score, truth_indices
from .photos import Photo, Warn, decode, labelled_folder, warn_stderr
from .silence import quiet_classifier

BENCHMARK_MD = "benchmark.md"
BENCHMARK_JSON = "benchmark.json"
BENCHMARK_PNG = "benchmark.png"


@dataclass(frozen=True)
class Latency:
    """Per-image latency at one thread count (milliseconds)."""

    threads: int
    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int


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


def parse_threads(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``; ``ConvertError`` naming what is allowed and what was received."""
    try:
        values = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        values = ()
    if not values or any(v < 1 or v > 64 for v in values):
        raise ConvertError(f"`--threads` must be a comma-separated list of integers from 1 to 64, received {text!r}")
    return values


def _latency(times_ms: Sequence[float], threads: int) -> Latency:
    array = np.asarray(times_ms)
    return Latency(threads, round(float(np.percentile(array, 50)), 3), round(float(np.percentile(array, 90)), 3),
                   round(float(array.mean()), 3), len(array))


def time_interleaved(calls: Sequence[Callable[[], Any]], runs: int, warmup: int,
                     on_round: Callable[[], None] | None = None) -> list[list[float]]:
    """Milliseconds per call for each of ``calls``, ``runs`` times each.

    The calls take turns (round ``r`` starts at call ``r mod n``), so a change in
    machine load while the benchmark runs hits every model alike and the ratios
    between them stay fair.
    """
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    for round_index in range(runs):
        for k in range(len(calls)):
            i = (round_index + k) % len(calls)
            start = time.perf_counter()
            calls[i]()
            times[i].append((time.perf_counter() - start) * 1000.0)
        if on_round:
            on_round()
    return times


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
    from .silence import import_tensorflow

    tf = import_tensorflow()

    used: int | None = threads
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process: its default stays
        used = None
    import keras

    if path.is_dir():
        path = path / "model.keras"
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
    classifiers = [quiet_classifier(path, num_threads=1) for path in models]
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
        path = path / "model.keras" if path.is_dir() else path
        keras_entry = ModelBenchmark("Keras float", str(path), "keras", path.stat().st_size)

    results = [ModelBenchmark(c.path.name, str(c.path), c.variant, c.size_bytes) for c in classifiers]
    steps = len(threads) * runs + (runs if keras_call is not None else 0) + (len(models) if len(pixels) else 0)
    bar = tqdm(total=steps, desc="benchmark", unit="round", disable=None if progress else True)
    for count in threads:
        bar.set_postfix_str(f"{count} thread{'s' if count > 1 else ''}")
        timed = [quiet_classifier(c.path, num_threads=count) for c in classifiers]
        calls: list[Callable[[], Any]] = [lambda t=t: t.probabilities(sample) for t in timed]
        times = time_interleaved(calls, runs, warmup, on_round=bar.update)
        for entry, measured in zip(results, times):
            entry.latencies.append(_latency(measured, count))
    if keras_call is not None:
        # Timed on its own, after the .tflite models: TensorFlow's thread pools keep
        # spinning for a while after each call and would slow whatever ran next.
        bar.set_postfix_str("Keras")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs`")  # see gate.predict_keras
            (measured,) = time_interleaved([keras_call], runs, warmup, on_round=bar.update)
        keras_entry.latencies.append(_latency(measured, keras_threads or 0))

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


def _float32(result: BenchmarkResult) -> ModelBenchmark | None:
    return next((m for m in result.models if m.variant == "float32"), None)


def benchmark_markdown(result: BenchmarkResult) -> str:
    """The table (sizes, p50/p90 per thread count, ratios to float32, accuracy, agreement) as markdown."""
    base = _float32(result)
    head = ["Model", "Variant", "Size (MB)", "Size vs float32"]
    for t in result.threads:
        head += [f"p50 ms ({t}t)", f"p90 ms ({t}t)"]
    head += [f"p50 vs float32 ({min(result.threads)}t)", "Accuracy", "Agreement"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    rows = list(result.models) + ([result.keras] if result.keras else [])
    first = min(result.threads)
    for m in rows:
        cells = [m.name, m.variant, f"{m.size_bytes / 1e6:.2f}",
                 f"{m.size_bytes / base.size_bytes:.2f}×" if base and m.variant != "keras" else "—"]
        for t in result.threads:
            lat = m.latency(t) if m.variant != "keras" else (m.latencies[0] if t == first else None)
            cells += [f"{lat.p50_ms:.2f}", f"{lat.p90_ms:.2f}"] if lat else ["—", "—"]
        mine = m.latency(first) if m.variant != "keras" else m.latencies[0]
        theirs = base.latency(first) if base else None
        cells.append(f"{mine.p50_ms / theirs.p50_ms:.2f}×" if mine and theirs else "—")
        cells.append(f"{m.accuracy:.2f}%" if m.accuracy is not None else "—")
        cells.append(f"{m.agreement:.2f}%" if m.agreement is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Latency: `Classifier.probabilities` (quantise, invoke, dequantise) on {result.environment['runtime']}, "
        f"{result.runs} timed runs after warm-up, batch 1, one fixed {'photo' if result.photos else 'random image'}.",
    ]
    if result.keras:
        notes.append(f"Keras float baseline: TensorFlow `tf.function`, intra-op threads {result.environment['keras_threads']}, "
                     f"measured in the same run (shown in the {first}-thread columns).")
    if result.photos:
        notes.append(f"Accuracy on {result.photos} photos from `{result.data}`; agreement = same top-1 as the "
                     f"{result.reference or '(no reference)'}.")
    notes.append(f"Machine: {result.environment['machine']}; Python {result.environment['python']}.")
    return "\n".join(lines + notes) + "\n"


def benchmark_json(result: BenchmarkResult) -> dict[str, Any]:
    """The result as JSON; each model also gets ``latency_ms`` = ``{"<threads>": {"p50", "p90", "mean"}}``."""
    data = asdict(result)
    for entry in data["models"] + ([data["keras"]] if data["keras"] else []):
        entry["latency_ms"] = {str(lat["threads"]): {"p50": lat["p50_ms"], "p90": lat["p90_ms"], "mean": lat["mean_ms"]}
                               for lat in entry["latencies"]}
    base = _float32(result)
    if base:
        for entry, model in zip(data["models"], result.models):
            entry["size_vs_float32"] = round(model.size_bytes / base.size_bytes, 4)
            entry["p50_vs_float32"] = {
                str(t): round(model.latency(t).p50_ms / base.latency(t).p50_ms, 4)
                for t in result.threads if model.latency(t) and base.latency(t)
            }
    return data


def benchmark_chart(result: BenchmarkResult, path: Path) -> Path:
    """A PNG: p50 latency per model and thread count (Keras as a dashed baseline), and file sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge_runner.spec import write_atomic

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    names = [m.name.removesuffix(".tflite") for m in result.models]
    width = 0.8 / max(1, len(result.threads))
    positions = np.arange(len(names))
    for i, t in enumerate(result.threads):
        values = [(m.latency(t).p50_ms if m.latency(t) else 0.0) for m in result.models]
        bars = left.bar(positions + i * width, values, width, label=f"{t} thread{'s' if t > 1 else ''}")
        left.bar_label(bars, fmt="%.1f", fontsize=7)
    if result.keras:
        left.axhline(result.keras.latencies[0].p50_ms, color="grey", linestyle="--",
                     label=f"Keras float ({result.environment['keras_threads']} threads)")
    left.set_xticks(positions + width * (len(result.threads) - 1) / 2, names, rotation=15, fontsize=8)
    left.set_ylabel("p50 latency per image (ms)")
    left.set_title(f"Latency ({result.environment['runtime']})")
    left.legend(fontsize=8)
    sizes = [m.size_bytes / 1e6 for m in result.models]
    bars = right.bar(names, sizes, color="tab:green")
    right.bar_label(bars, fmt="%.2f", fontsize=7)
    right.set_ylabel("file size (MB)")
    right.set_title("Size")
    right.tick_params(axis="x", rotation=15, labelsize=8)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())


def write_benchmark(result: BenchmarkResult, out_dir: Path) -> list[Path]:
    """Write ``benchmark.md``, ``benchmark.json`` and ``benchmark.png`` into ``out_dir`` (atomically)."""
    from edge_runner.spec import write_atomic

    out_dir = Path(out_dir)
    return [
        write_atomic(out_dir / BENCHMARK_MD, ("# Benchmark\n\n" + benchmark_markdown(result)).encode("utf-8")),
        write_atomic(out_dir / BENCHMARK_JSON, (json.dumps(benchmark_json(result), indent=2) + "\n").encode("utf-8")),
        benchmark_chart(result, out_dir / BENCHMARK_PNG),
    ]
