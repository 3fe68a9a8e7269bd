"""``report.json`` and ``report.md``: what was trained, on what, how well, and how long it took."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from edge_runner.common.run_layout import RunLayout
from edge_runner.common.files import write_atomic, write_json

from .breakdown import headline, markdown_lines
from ..config import TrainConfig
from ..data.split import DataSplit
from .evaluate import Evaluation

REPORT_FORMAT = "edgekit.train-report"
TIMING_NAMES = {
    "decode": "decode photos (or read the cache)",
    "features": "frozen backbone features, view 0, training + validation",
    "head_phase": "head phase (the features above + head epochs)",
    "fine_tune_phase": "fine-tuning phase (extra views + epochs)",
    "evaluate": "save, reload and evaluate model.keras",
    "total": "whole run",
}


def environment() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def build_report(
    *,
    config: TrainConfig,
    split: DataSplit,
    evaluation: Evaluation,
    model_info: dict[str, Any],
    phases: dict[str, dict[str, Any]],
    timings: dict[str, float],
    elapsed_s: float,
    class_weights: dict[str, float] | None,
    files: dict[str, str],
    notes: list[str],
    thresholds: Any = None,
    per_source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``report.json``'s content; ``thresholds`` (a ``ThresholdTable``) only with a background class;
    ``per_source`` from :func:`train.report.breakdown.breakdown`."""
    held = (per_source or {}).get("holdout")
    return {
        "format": REPORT_FORMAT,
        "version": 2,
        "summary": {
            "holdout_accuracy": None if held is None else held["accuracy"],
            "holdout_recall": None if held is None else held["recall"],
            "holdout_false_alarm": None if held is None else held["false_alarm"],
            "val_accuracy": evaluation.accuracy,
            "val_loss": evaluation.loss,
            "macro_f1": evaluation.macro_f1,
            "roc_auc": evaluation.roc_auc,
            "elapsed_s": round(elapsed_s, 2),
        },
        "command": config.to_command(),
        "config": config.to_dict(),
        "data": {
            "dir": str(split.data_dir),
            "layout": split.layout,
            "labels": list(split.labels),
            "counts": {"train": split.counts("train"), "validation": split.counts("validation")},
            "skipped": len(split.skipped),
            "imbalance_ratio": round(split.imbalance(), 4),
            "class_weights": class_weights,
            "background_label": split.background_label,
            "background_dir": None if split.background_dir is None else str(split.background_dir),
            "roots": [{"name": r.name, "dir": str(r.root), "kind": r.kind} for r in split.roots],
            "holdout_sources": list(split.holdout_sources),
            "source_counts": split.source_counts(),
            "imbalance_handling": _imbalance_handling(class_weights, split.imbalance()),
        },
        "thresholds": None if thresholds is None else thresholds.to_dict(),
        "per_source": per_source,
        "model": model_info,
        "phases": phases,
        "validation": evaluation.to_dict(),
        "timings_s": {key: round(value, 2) for key, value in timings.items()},
        "elapsed_s": round(elapsed_s, 2),
        "environment": environment(),
        "files": files,
        "notes": notes,
    }


def _imbalance_handling(class_weights: dict[str, float] | None, ratio: float) -> str:
    if class_weights:
        return (f"class weights n / (K * n_class) on every training photo's loss (largest/smallest class {ratio:.2f}); "
                "no photos dropped or repeated")
    return f"none (largest/smallest class {ratio:.2f})"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    data, model, validation = report["data"], report["model"], report["validation"]
    held = headline(report.get("per_source"))
    lines = [
        f"# Training report: {model.get('name', '')}",
        "",
        *([f"**Held out: {held}.**", ""] if held else []),
        f"**Validation accuracy {_pct(validation['accuracy'])}** on {validation['count']} photos "
        f"({validation['errors']} mistakes), macro F1 {validation['macro_f1']:.4f}"
        + (f", ROC AUC {validation['roc_auc']:.4f}" if validation["roc_auc"] is not None else "")
        + f"; whole run {report['elapsed_s'] / 60:.1f} min.",
        "",
        "Repeat it with:",
        "",
        "```",
        report["command"],
        "```",
        "",
        "## Data",
        "",
        f"- folder: `{data['dir']}` ({data['layout']})"
        + "".join(f", `{r['dir']}` ({r['kind']})" for r in data.get("roots", [])[1:]),
        f"- skipped (unreadable or not images): {data['skipped']} (listed in `skipped.txt`)",
        f"- imbalance (largest / smallest training class): {data['imbalance_ratio']:.2f}"
        + (f"; class weights {data['class_weights']}" if data["class_weights"] else "; no class weights"),
    ]
    if data.get("background_label"):
        source = f"photos from `{data['background_dir']}`" if data.get("background_dir") else "a class folder"
        lines += [
            f"- background class (\"nothing of interest\"): `{data['background_label']}` ({source}, split with the same "
            "seeded, stratified rule)",
            f"- imbalance handling: {data['imbalance_handling']}",
        ]
    lines += [
        "",
        "| class | training photos | validation photos |",
        "| --- | ---: | ---: |",
    ]
    for label in data["labels"]:
        lines.append(f"| {label} | {data['counts']['train'][label]} | {data['counts']['validation'][label]} |")
    lines += [
        "",
        "## Model",
        "",
        f"- backbone `{model['backbone']}`, weights `{model['weights']}`, input {model['image_size']}x{model['image_size']} RGB 0–255 "
        "(normalisation inside the graph)",
        f"- fine-tuned: the top {model['fine_tuned_layers']} backbone layers above `{model['cut_layer']}` "
        f"({model['fine_tune_mode']} mode), BatchNorm {model['batchnorm']}",
        f"- parameters: {model['parameters']:,} in all; trainable: head {model['trainable_parameters']['head']:,}, "
        f"fine-tuning {model['trainable_parameters']['fine_tune']:,}",
        teacher_line(model.get("teacher")),
        veto_line(model.get("distance_veto")),
        "",
        "## Training",
        "",
        "| phase | epochs run | best epoch (lowest val loss) | stopped early | time |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for name, phase in report["phases"].items():
        lines.append(
            f"| {name} | {phase['epochs_run']} of {phase['epochs']} | {phase['best_epoch']} | "
            f"{'yes' if phase['stopped_early'] else 'no'} | {phase['seconds']:.1f} s |"
        )
    lines += ["", "| step | seconds |", "| --- | ---: |"]
    lines += [f"| {TIMING_NAMES.get(key, key)} | {value:.1f} |" for key, value in report["timings_s"].items()]
    lines += [
        "",
        "![training curves](training_curves.png)",
        "",
        "## Validation",
        "",
        "| class | precision | recall | F1 | photos |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in validation["per_class"]:
        lines.append(f"| {item['label']} | {item['precision']:.4f} | {item['recall']:.4f} | {item['f1']:.4f} | {item['support']} |")
    lines.append(
        f"| **macro average** | {validation['macro_precision']:.4f} | {validation['macro_recall']:.4f} | "
        f"{validation['macro_f1']:.4f} | {validation['count']} |"
    )
    labels = validation["confusion_matrix"]["labels"]
    matrix = validation["confusion_matrix"]["rows_true_columns_predicted"]
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
    lines.append("| true \\ predicted | " + " | ".join(labels) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in labels) + " |")
    lines += [f"| {label} | " + " | ".join(str(v) for v in row) + " |" for label, row in zip(labels, matrix)]
    lines += ["", "![confusion matrix](confusion_matrix.png)"]
    if report.get("thresholds"):
        lines += _threshold_lines(report["thresholds"])
    lines += markdown_lines(report.get("per_source"))
    if "roc" in report["files"]:
        lines += ["", "![ROC](roc.png)"]
    lines += ["", "![worst mistakes](worst_mistakes.png)", ""]
    if "gradcam" in report["files"]:
        lines += ["Grad-CAM: where the model looked (worst mistakes, then correct photos):", "",
                  f"![Grad-CAM]({report['files']['gradcam']})", ""]
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    env = report["environment"]
    lines += [
        "## Environment",
        "",
        f"Python {env['python']}, TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['platform']}, "
        f"{env['cpu_count']} CPUs.",
        "",
    ]
    return "\n".join(lines)


def _threshold_lines(table: dict[str, Any]) -> list[str]:
    """The recall / false-alarm table with the recommended threshold marked."""
    background = table["background_label"]
    lines = [
        "",
        "## Threshold: recall and false alarms",
        "",
        f"Below the threshold the runner answers `unknown`. Recall: photos of a real class given their right label. "
        f"False alarms: `{background}` photos given a real label. Validation split.",
        "",
        "| threshold | recall of the real classes | false alarms | |",
        "| ---: | ---: | ---: | --- |",
    ]
    for row in table["rows"]:
        mark = "**recommended**" if row["threshold"] == table["recommended"] else ""
        lines.append(
            f"| {row['threshold']:.2f} | {_pct(row['recall'])} ({row['correct']}/{row['positives']}) | "
            f"{_pct(row['false_alarm'])} ({row['false_alarms']}/{row['negatives']}) | {mark} |"
        )
    lines += [
        "",
        f"Recommended threshold **{table['recommended']:g}** (written into `contract.json`; the runner's default "
        f"unless `--threshold` overrides it): {table['rule']}.",
        "",
        "![recall and false alarms per threshold](thresholds.png)",
    ]
    return lines


def write_report(out_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    layout = RunLayout(out_dir)
    json_path = write_json(layout.report_json, report)
    md_path = write_atomic(layout.report_md, render_markdown(report).encode("utf-8"))
    return json_path, md_path


def teacher_line(teacher: dict[str, Any] | None) -> str:
    """The report's line on the teacher's head (train.model.teacher): how it was fitted and used."""
    if not teacher:
        return "- teacher: none (no rescue, no prior)"
    mass = ", ".join(f"{label} {100 * value:.1f}%" for label, value in teacher["mass"].items())
    uses = []
    if teacher.get("rescue"):
        rescue = teacher["rescue"]
        uses.append(f"a rescue at threshold {rescue['threshold']:g} from {rescue['limit']:g}")
    if teacher.get("prior_weight"):
        uses.append(f"a prior folded into the classifier at weight {teacher['prior_weight']:g}")
    return (f"- teacher: `{teacher['teacher']}`'s head on the pooled features, fitted on {teacher['photos']:,} training "
            f"photos (the teacher's mean mass: {mass}; the head agrees with its best label on "
            f"{100 * teacher['agreement']:.1f}% of them); used as {' and '.join(uses) or 'nothing'}")


def veto_line(veto: dict[str, Any] | None) -> str:
    """The report's line on the distance veto (train.model.veto)."""
    if not veto:
        return "- distance veto: none"
    return (f"- distance veto: a photo called a class of interest is answered with the background when its pooled "
            f"features lie farther than {veto['limit']:g} (squared, whitened, over the {veto['directions']} "
            f"least-varying directions of {veto['photos']:,} training photos of interest) from the nearest class; "
            f"{100 * veto['keep']:g}% of the {veto['checked']:,} validation photos of interest lie within; convert makes "
            "no int8 file of it: ship the float16 one (train/README.md, 'A strict mode')")
