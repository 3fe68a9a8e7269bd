"""PNG plots of a training run (matplotlib, no display needed: figures render with Agg), and :func:`write_plots`: all of them."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from edge_runner.common.files import write_figure
from edge_runner.common.run_layout import CHECKPOINT_DIR, CONFIG_FILENAME, MODEL_FILENAME, PLOT_FILENAMES, \
    SKIPPED_FILENAME, SPLIT_FILENAME, RunLayout
from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME

from .evaluate import Evaluation


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    return write_figure(figure, path, dpi=110, bbox_inches="tight")


def plot_history(histories: dict[str, dict[str, list[float]]], path: str | os.PathLike[str]) -> Path:
    """Loss and accuracy per epoch, training and validation, phases one after the other."""
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, 2)
    offset = 0
    titles = {"head": "head", "fine_tune": "fine-tune"}
    for phase, history in histories.items():
        count = len(history.get("loss", []))
        if not count:
            continue
        epochs = np.arange(offset + 1, offset + count + 1)
        for ax, metric in zip(axes, ("loss", "accuracy")):
            ax.plot(epochs, history.get(metric, [math.nan] * count), "o-", ms=3, label=f"{titles.get(phase, phase)} train")
            ax.plot(epochs, history.get(f"val_{metric}", [math.nan] * count), "s--", ms=3, label=f"{titles.get(phase, phase)} validation")
            if offset:
                ax.axvline(offset + 0.5, color="grey", lw=0.8, ls=":")
        offset += count
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch (all phases)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[0].set_title("cross-entropy")
    axes[1].set_title("accuracy")
    return _save(figure, path)


def plot_confusion(evaluation: Evaluation, path: str | os.PathLike[str]) -> Path:
    size = max(4.0, 0.6 * len(evaluation.labels) + 2.5)
    figure = Figure(figsize=(size, size))
    ax = figure.subplots()
    display = ConfusionMatrixDisplay(evaluation.confusion, display_labels=list(evaluation.labels))
    display.plot(ax=ax, colorbar=False, values_format="d", cmap="Blues", xticks_rotation=45 if len(evaluation.labels) > 4 else "horizontal")
    ax.set_title(f"validation: accuracy {evaluation.accuracy * 100:.2f}% ({len(evaluation.y_true)} photos)")
    return _save(figure, path)


def plot_roc(evaluation: Evaluation, path: str | os.PathLike[str]) -> Path:
    """The ROC curve of the binary score ``p(labels[1])``."""
    figure = Figure(figsize=(4.5, 4.5))
    ax = figure.subplots()
    ax.plot(evaluation.roc_fpr, evaluation.roc_tpr, lw=2, label=f"AUC = {evaluation.roc_auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"false positive rate ({evaluation.labels[0]} called {evaluation.labels[1]})")
    ax.set_ylabel(f"true positive rate ({evaluation.labels[1]})")
    ax.set_title("ROC on the validation photos")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(figure, path)


def plot_mistakes(
    evaluation: Evaluation,
    pixels: np.ndarray,
    names: list[str],
    path: str | os.PathLike[str],
    count: int = 16,
) -> Path:
    """A grid of the misclassified photos with the most confident wrong scores.

    Args:
        pixels: ``uint8`` ``(N, H, W, 3)`` the photos as the model saw them, in evaluation order.
        names: file names in the same order.
    """
    worst = evaluation.worst_mistakes(count)
    if len(worst) == 0:
        figure = Figure(figsize=(5, 1.5))
        figure.text(0.5, 0.5, f"no mistakes on {len(evaluation.y_true)} validation photos", ha="center", va="center")
        return _save(figure, path)
    columns = min(4, len(worst))
    rows = math.ceil(len(worst) / columns)
    figure = Figure(figsize=(3.0 * columns, 3.3 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    predicted = evaluation.predictions
    for ax in axes:
        ax.axis("off")
    for ax, index in zip(axes, worst):
        ax.imshow(pixels[index])
        true_label = evaluation.labels[evaluation.y_true[index]]
        wrong_label = evaluation.labels[predicted[index]]
        score = evaluation.probabilities[index, predicted[index]]
        ax.set_title(f"{Path(names[index]).name}\ntrue {true_label}, said {wrong_label} {score:.3f}", fontsize=8)
    figure.suptitle("worst mistakes on the validation photos (most confident first)")
    return _save(figure, path)


def plot_thresholds(table, path: str | os.PathLike[str]) -> Path:
    """Recall of the real classes and false alarms on the background class against the threshold.

    ``table`` is a :class:`train.report.thresholds.ThresholdTable`; the recommended threshold is marked.
    """
    thresholds = [row.threshold for row in table.rows]
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    ax.plot(thresholds, [100 * row.recall for row in table.rows], "o-", label="recall of the real classes")
    ax.plot(thresholds, [100 * row.false_alarm for row in table.rows], "s--",
            label=f"false alarms ({table.background_label} photos given a real label)")
    ax.axvline(table.recommended, color="grey", ls=":", label=f"recommended threshold {table.recommended:g}")
    ax.set_xlabel("threshold (top score below it: unknown)")
    ax.set_ylabel("% of validation photos")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("recall and false alarms per threshold (validation split)")
    return _save(figure, path)


def write_plots(out: Path, evaluation: Any, states: dict, pixels: Any, names: list[str], thresholds: Any = None,
                model: Any = None) -> dict[str, str]:
    """The PNG plots; returns ``{kind: file name}`` of everything in ``out`` (for the report).

    ``pixels[i]`` is validation photo ``names[i]`` (0–255 float32 ``(H, W, 3)``); a plot that
    does not apply (no ROC curve, no thresholds) is removed so a resumed run leaves no stale one.
    """
    layout = RunLayout(out)
    files = {"model": MODEL_FILENAME, "contract": CONTRACT_FILENAME, "labels": LABELS_FILENAME, "split": SPLIT_FILENAME,
             "config": CONFIG_FILENAME, "skipped": SKIPPED_FILENAME, "checkpoints": CHECKPOINT_DIR + "/"}
    plot_history({name: states[name].history for name in ("head", "fine_tune")}, layout.plot("training_curves"))
    plot_confusion(evaluation, layout.plot("confusion_matrix"))
    files.update(training_curves=PLOT_FILENAMES["training_curves"], confusion_matrix=PLOT_FILENAMES["confusion_matrix"])
    if evaluation.roc_fpr.size:
        plot_roc(evaluation, layout.plot("roc"))
        files["roc"] = PLOT_FILENAMES["roc"]
    else:
        layout.plot("roc").unlink(missing_ok=True)
    plot_mistakes(evaluation, pixels, names, layout.plot("worst_mistakes"))
    files["worst_mistakes"] = PLOT_FILENAMES["worst_mistakes"]
    if thresholds is not None:
        plot_thresholds(thresholds, layout.plot("thresholds"))
        files["thresholds"] = PLOT_FILENAMES["thresholds"]
    else:
        layout.plot("thresholds").unlink(missing_ok=True)
    if model is not None:
        from ..explanations.explain import write_report_grid

        files.update(write_report_grid(out, model, evaluation, pixels, names))
    return files
