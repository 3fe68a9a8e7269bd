"""``convert benchmark``'s outputs: the markdown table, ``benchmark.json`` and ``benchmark.png``.

The measuring is in :mod:`convert.benchmark.measure`; this module only presents its
:class:`~convert.benchmark.measure.BenchmarkResult`, with every ratio taken to the
``float32`` variant.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge_runner.common.files import write_atomic, write_figure, write_json

from .measure import BenchmarkResult, ModelBenchmark

BENCHMARK_MD = "benchmark.md"
BENCHMARK_JSON = "benchmark.json"
BENCHMARK_PNG = "benchmark.png"


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
    try:
        return write_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)


def write_benchmark(result: BenchmarkResult, out_dir: Path) -> list[Path]:
    """Write ``benchmark.md``, ``benchmark.json`` and ``benchmark.png`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    return [
        write_atomic(out_dir / BENCHMARK_MD, ("# Benchmark\n\n" + benchmark_markdown(result)).encode("utf-8")),
        write_json(out_dir / BENCHMARK_JSON, benchmark_json(result)),
        benchmark_chart(result, out_dir / BENCHMARK_PNG),
    ]
