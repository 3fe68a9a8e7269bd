"""The comparison's outputs: ``report.json``, ``report.md`` and ``accuracy_latency.png`` (Pareto front marked)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_runner.common.files import write_atomic, write_figure, write_json

from .pareto import Point, fastest_at, pareto_front, recommend

if TYPE_CHECKING:
    from .records import CandidateResult, CompareConfig

REPORT_JSON, REPORT_MD, PLOT = "report.json", "report.md", "accuracy_latency.png"


def cpu_flags() -> list[str]:
    """The CPU's vector-instruction flags that matter for int8 speed (empty where unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return sorted(set(re.findall(r"\b(avx2|avx512_vnni|avx_vnni)\b", text)))


def points_of(results: list[CandidateResult]) -> list[Point]:
    """Finished candidates as points: int8 accuracy against int8 p50 latency at 1 thread."""
    return [
        Point(r.name, r.int8_accuracy, r.latency_ms.get("1", min(r.latency_ms.values())), r.int8_size_bytes / 1e6,
              frozenset(r.wrong), r.photos)
        for r in results if r.status == "done" and r.latency_ms
    ]


def row_of(r: CandidateResult, front: set[str]) -> dict[str, Any]:
    return {
        "name": r.name, **{k: r.candidate[k] for k in ("backbone", "alpha", "image_size", "weights")},
        "status": r.status, "error": r.error, "keras_accuracy": r.keras_accuracy, "float_accuracy": r.float_accuracy,
        "int8_accuracy": r.int8_accuracy, "int8_gate": r.int8_gate, "int8_errors": len(r.wrong), "photos": r.photos,
        "int8_size_mb": round(r.int8_size_bytes / 1e6, 3), "float32_size_mb": round(r.float32_size_bytes / 1e6, 3),
        "latency_p50_ms": r.latency_ms, "latency_p90_ms": r.latency_p90_ms, "train_seconds": r.train_seconds,
        "convert_seconds": r.convert_seconds, "pareto": r.name in front, "reused": r.skipped, "int8_model": r.int8_path,
    }


def build_report(config: CompareConfig, results: list[CandidateResult], seconds: float) -> dict[str, Any]:
    from edge_runner.core.runtime import load_runtime

    points = points_of(results)
    front = pareto_front(points)
    names = {p.name for p in front}
    chosen = recommend(points, max_latency_ms=config.max_latency_ms, max_size_mb=config.max_size_mb)
    target = fastest_at(points, config.target_accuracy)
    runtime = load_runtime()
    return {
        "data": str(Path(config.data).expanduser().resolve()),
        "command": shlex.join([Path(sys.executable).name, "-m", "train", *sys.argv[1:]]) if sys.argv[1:2] == ["compare"] else None,
        "settings": {"epochs": config.epochs, "fine_tune_epochs": config.fine_tune_epochs, "scratch_epochs": config.scratch_epochs,
                     "seed": config.seed, "batch_size": config.batch_size, "calibration_size": config.calibration_size,
                     "threads": list(config.threads), "latency_runs": config.latency_runs, "latency_rounds": config.latency_rounds},
        "candidates": [row_of(r, names) for r in results],
        "pareto_front": [p.name for p in front],
        "recommendation": {"line": chosen.line(), "max_latency_ms": config.max_latency_ms, "max_size_mb": config.max_size_mb,
                           "most_accurate": chosen.best.name if chosen.best else None,
                           "fastest_within_noise": chosen.fastest.name if chosen.fastest else None,
                           "p_value": round(chosen.p_value, 4)},
        "target": {"accuracy": config.target_accuracy, "fastest": target.name if target else None},
        "environment": {"cpus": os.cpu_count(), "cpu_flags": cpu_flags(), "machine": platform.machine(),
                        "runtime": f"{runtime.name} {runtime.version}"},
        "seconds": round(seconds, 1),
        "files": {"plot": PLOT, "markdown": REPORT_MD},
    }


def _ms(row: dict[str, Any], threads: str) -> str:
    value = row["latency_p50_ms"].get(threads)
    return f"{value:.2f}" if value is not None else "–"


def render_markdown(report: dict[str, Any]) -> str:
    threads = [str(t) for t in report["settings"]["threads"]]
    fastest = min((r["latency_p50_ms"].get("1", 0) for r in report["candidates"] if r["status"] == "done" and r["latency_p50_ms"]),
                  default=0.0)
    lines = [
        "# Model comparison", "",
        f"Photos: `{report['data']}`. Each candidate trained with the kit's recipe (head {report['settings']['epochs']} epochs, "
        f"fine-tuning {report['settings']['fine_tune_epochs']}, from scratch {report['settings']['scratch_epochs']}; early stopping; "
        f"seed {report['settings']['seed']}), converted through the gate, int8 scored on the validation photos through the runner. "
        f"Latency: int8 p50 with the runner's `Classifier`, median of {report['settings']['latency_rounds']} interleaved rounds of "
        f"{report['settings']['latency_runs']} calls; {report['environment']['cpus']} CPUs, flags "
        f"{', '.join(report['environment']['cpu_flags']) or 'none'}, {report['environment']['runtime']}.", "",
        "| candidate | weights | Keras % | float32 % | int8 % | int8 gate | int8 MB | "
        + " | ".join(f"p50 ms ({t} thr)" for t in threads) + " | × fastest | train s | Pareto |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | " + " | ".join("---:" for _ in threads) + " | ---: | ---: | --- |",
    ]
    for r in report["candidates"]:
        weights = Path(str(r["weights"])).name if r["weights"] not in ("imagenet", "none") else r["weights"]
        if r["status"] != "done":
            lines.append(f"| {r['name']} | {weights} | failed: {r['error']} |" + " |" * (8 + len(threads)))
            continue
        ratio = f"{r['latency_p50_ms']['1'] / fastest:.2f}" if fastest and "1" in r["latency_p50_ms"] else "–"
        lines.append(
            f"| {r['name']} | {weights} | {r['keras_accuracy']:.2f} | {r['float_accuracy']:.2f} | {r['int8_accuracy']:.2f} | "
            f"{r['int8_gate']} | {r['int8_size_mb']:.2f} | " + " | ".join(_ms(r, t) for t in threads)
            + f" | {ratio} | {r['train_seconds']:.0f} | {'**yes**' if r['pareto'] else ''} |"
        )
    target = report["target"]
    lines += [
        "", f"Pareto front (int8 accuracy against 1-thread latency): {', '.join(report['pareto_front']) or 'none'}.", "",
        f"Fastest with ≥ {target['accuracy']:g}% int8 accuracy: {target['fastest'] or 'none'}.", "",
        report["recommendation"]["line"], "",
        "Within noise: an exact McNemar test on the validation photos that one model gets right and the other wrong "
        "does not find the model worse than the most accurate one at the 5% level.", "",
        f"![accuracy against latency]({PLOT})", "",
    ]
    if report.get("command"):
        lines += ["Command:", "", "```", report["command"], "```", ""]
    return "\n".join(lines)


def plot_accuracy_latency(report: dict[str, Any], path: Path) -> Path:
    """int8 accuracy (%) against int8 p50 latency at 1 thread (ms, log scale); the Pareto front as a line."""

    from matplotlib.figure import Figure

    rows = [r for r in report["candidates"] if r["status"] == "done" and r["latency_p50_ms"]]
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for rank, r in enumerate(sorted(rows, key=lambda r: r["latency_p50_ms"].get("1", 0))):
        x, y = r["latency_p50_ms"].get("1"), r["int8_accuracy"]
        axes.scatter([x], [y], s=30 + 60 * r["int8_size_mb"], color="tab:red" if r["pareto"] else "tab:gray",
                     edgecolor="black", zorder=3)
        axes.annotate(f"{r['name']}\n{r['int8_size_mb']:.2f} MB", (x, y), textcoords="offset points",
                      xytext=(6, -14) if rank % 2 else (6, 4), fontsize=8)  # alternate: neighbours do not overlap
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["latency_p50_ms"]["1"])
    if front:
        axes.step([r["latency_p50_ms"]["1"] for r in front], [r["int8_accuracy"] for r in front], where="post",
                  color="tab:red", label="Pareto front", zorder=2)
        axes.legend(loc="lower right")
    axes.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _pos: f"{value:.3g}")  # 2, 5, 10 ms rather than 10^0
    axes.xaxis.set_major_formatter(plain)
    axes.xaxis.set_minor_formatter(plain)
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_xlabel("int8 latency, p50 at 1 thread (ms, log scale)")
    axes.set_ylabel("int8 validation accuracy (%)")
    axes.set_title("Accuracy against latency (marker area ~ int8 file size)")
    axes.grid(True, which="both", alpha=0.3)
    return write_figure(figure, path, dpi=110, bbox_inches="tight")


def write_reports(config: CompareConfig, results: list[CandidateResult], seconds: float) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plot into ``config.out``; returns the report."""
    out = Path(config.out)
    report = build_report(config, results, seconds)
    plot_accuracy_latency(report, out / PLOT)
    write_json(out / REPORT_JSON, report)
    write_atomic(out / REPORT_MD, render_markdown(report).encode("utf-8"))
    return report
