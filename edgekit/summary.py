"""The main job's summary: what each stage wrote, read back into one small table.

Everything here is read from the files the stages wrote (the training report,
export's ``report.json``, ``benchmark.json`` and the runner's ``--json`` lines),
so the table shows what the tools measured, never a figure of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError


@dataclass(frozen=True)
class Share:
    """``hits`` of ``total`` (``total`` ≥ 1); ``fraction`` in 0–1."""

    hits: int
    total: int

    @property
    def fraction(self) -> float:
        return self.hits / self.total


@dataclass(frozen=True)
class SourceShare:
    """The runner on one held-out source: right labels of a class, or false alarms on background photos.

    Attributes:
        source: the source's name (``train.data.sources``); label: the true class of these photos.
        background: whether they are background photos (``share`` counts false alarms) or not (right labels).
    """

    source: str
    label: str
    background: bool
    share: Share


@dataclass(frozen=True)
class StageTime:
    name: str
    seconds: float


@dataclass(frozen=True)
class VariantRow:
    """One exported variant as export's ``report.json`` and the benchmark measured it.

    Attributes:
        variant: its name (``int8``, …); path: the file export wrote.
        accepted: passed the gate; accuracy, agreement: fractions 0–1 on the validation photos.
        size_bytes: the file's size; p50_ms: median latency at 1 thread (None when not benchmarked).
    """

    variant: str
    path: Path
    accepted: bool
    accuracy: float
    agreement: float
    size_bytes: int
    p50_ms: float | None


@dataclass(frozen=True)
class Summary:
    """The main job's result: the figures of the summary table and where the files are.

    Attributes:
        out: the run's directory; files: what it holds (relative names), for the last line.
        keras_accuracy: the Keras float model's validation accuracy (0–1, from the training report).
        variants: one row per exported variant, in export's order.
        runner: the runner's right labels (int8 model) on the validation photos.
        false_alarms: held-out background photos the runner called something of interest (None without a background class).
        threshold, background_label: from the training contract (None when absent).
        times: each stage's wall time.
        held_out: the runner on each held-out source, by class (empty without ``--holdout-source``).
    """

    out: Path
    files: tuple[str, ...]
    keras_accuracy: float
    variants: tuple[VariantRow, ...]
    runner: Share
    false_alarms: Share | None
    threshold: float | None
    background_label: str | None
    times: tuple[StageTime, ...]
    held_out: tuple[SourceShare, ...] = ()


def read_json(path: Path, stage: str) -> dict:
    """A stage's JSON output; ``PipelineError`` naming the stage and the file when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{stage}: cannot read {path} ({exc})") from None


def runner_accuracy(lines_path: Path, data_dir: Path) -> Share:
    """Right labels among the runner's ``--json`` lines, the true label being the photo's class folder."""
    correct = total = 0
    for line in lines_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        truth = Path(record["source"]).parent.name
        total += 1
        correct += record["label"] == truth
    if total == 0:
        raise PipelineError(f"runner: classified no photos from {data_dir}")
    return Share(correct, total)


def background_validation(split: dict) -> list[Path]:
    """The validation photos of the background class in a parsed ``split.json`` (none without a background class)."""
    label = split.get("background_label")
    return [Path(item["path"]) for item in split["validation"] if label is not None and item["label"] == label]


def held_out_photos(split: dict) -> list[dict]:
    """The held-out photos of a parsed ``split.json`` (``{"path", "label", "source"}``; none without holdout)."""
    return list(split.get("holdout", []))


def runner_by_source(lines_path: Path, entries: list[dict], background_label: str | None) -> tuple[SourceShare, ...]:
    """Per source and class of ``entries``: the runner's right labels, or false alarms for background photos."""
    answers = {}
    for line in lines_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            answers[str(Path(record["source"]).resolve())] = record
    groups: dict[tuple[str, str], list[bool]] = {}
    for entry in entries:
        record = answers.get(str(Path(entry["path"]).resolve()))
        if record is None:
            continue  # unreadable: the runner printed its error line
        background = entry["label"] == background_label
        hit = bool(record["detected"]) if background else record["label"] == entry["label"]
        groups.setdefault((entry["source"], entry["label"]), []).append(hit)
    if entries and not groups:
        raise PipelineError(f"runner: classified none of the held-out photos (see {lines_path})")
    return tuple(SourceShare(source, label, label == background_label, Share(sum(hits), len(hits)))
                 for (source, label), hits in sorted(groups.items()))


def runner_false_alarms(lines_path: Path) -> Share:
    """The runner's ``--json`` lines (background photos) that say something of interest was seen (``detected``)."""
    records = [json.loads(line) for line in lines_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise PipelineError(f"runner: classified no background photos (see {lines_path})")
    return Share(sum(bool(record["detected"]) for record in records), len(records))


def variant_rows(export_report: dict, benchmark: dict) -> tuple[VariantRow, ...]:
    """Export's per-variant verdicts joined with the benchmark's 1-thread median latency, by variant name."""
    latency = {row.get("variant"): row for row in benchmark.get("models", [])}
    rows = []
    for row in export_report.get("variants", []):
        if not row.get("path"):
            continue  # not written (export exits 1 then, so the main job stops before here)
        p50 = latency.get(row["variant"], {}).get("latency_ms", {}).get("1", {}).get("p50")
        rows.append(VariantRow(row["variant"], Path(row["path"]), bool(row["accepted"]), row["accuracy"],
                               row["agreement"], row["size_bytes"], p50))
    return tuple(rows)


def format_summary(summary: Summary) -> str:
    """The table printed at the end of ``python -m edgekit`` (percentages with two decimals)."""
    lines = ["=== summary", f"Keras float model: validation accuracy {100 * summary.keras_accuracy:.2f}%",
             f"{'variant':<10} {'accepted':>8} {'accuracy':>9} {'agree':>7} {'size MB':>8} {'p50 ms (1 thr)':>15}"]
    for row in summary.variants:
        p50 = f"{row.p50_ms:.1f}" if row.p50_ms else "-"
        lines.append(f"{row.variant:<10} {('yes' if row.accepted else 'NO'):>8} {100 * row.accuracy:>8.2f}% "
                     f"{100 * row.agreement:>6.2f}% {row.size_bytes / 1e6:>8.2f} {p50:>15}")
    applied = f", threshold {summary.threshold:g}" if summary.threshold is not None else ""
    runner = summary.runner
    lines.append(f"runner (int8, decode → resize → invoke{applied}): {100 * runner.fraction:.2f}% "
                 f"({runner.hits}/{runner.total}) on the validation photos")
    if summary.false_alarms is not None:
        alarms = summary.false_alarms
        lines.append(f"runner false alarms (held-out {summary.background_label!r} photos given a real label{applied}): "
                     f"{100 * alarms.fraction:.2f}% ({alarms.hits}/{alarms.total})")
    if summary.held_out:
        lines.append(f"runner on held-out sources (never trained on{applied}):")
        for row in summary.held_out:
            what = "false alarms" if row.background else f"{row.label} right"
            lines.append(f"  {row.source:<30} {what:>14} {100 * row.share.fraction:6.2f}% ({row.share.hits}/{row.share.total})")
    total = sum(t.seconds for t in summary.times)
    lines.append("time: " + ", ".join(f"{t.name} {t.seconds:.0f}s" for t in summary.times) + f"; total {total / 60:.1f} min")
    lines.append(f"files: {summary.out} ({', '.join(summary.files)})")
    return "\n".join(lines)
