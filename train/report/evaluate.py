"""Evaluate a classifier's probabilities on labelled photos (scikit-learn metrics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    """Metrics of one model on one labelled set.

    Attributes:
        labels: class names, in output order.
        y_true: ``int`` ``(N,)`` true class indices.
        probabilities: ``float32`` ``(N, K)`` softmax outputs.
        accuracy, loss: top-1 accuracy (0–1) and mean cross-entropy.
        per_class: precision/recall/F1/support per class.
        macro_precision, macro_recall, macro_f1: unweighted means over classes.
        confusion: ``K x K`` counts, rows = true class, columns = predicted.
        roc_auc: binary: AUC of the score of ``labels[1]``; more classes: macro
            one-vs-rest AUC; ``None`` when a class is absent.
        roc_fpr, roc_tpr: the binary ROC curve (empty otherwise).
    """

    labels: tuple[str, ...]
    y_true: np.ndarray
    probabilities: np.ndarray
    accuracy: float
    loss: float
    per_class: list[ClassMetrics]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion: np.ndarray
    roc_auc: float | None
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def worst_mistakes(self, count: int) -> np.ndarray:
        """Indices of the misclassified samples with the highest wrong score, worst first."""
        predicted = self.predictions
        wrong = np.flatnonzero(predicted != self.y_true)
        scores = self.probabilities[wrong, predicted[wrong]]
        return wrong[np.argsort(-scores, kind="stable")][:count]

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "count": int(len(self.y_true)),
            "errors": int((self.predictions != self.y_true).sum()),
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "roc_auc": self.roc_auc,
            "per_class": [asdict(item) for item in self.per_class],
            "confusion_matrix": {"labels": list(self.labels), "rows_true_columns_predicted": self.confusion.tolist()},
        }


def evaluate_probabilities(probabilities: np.ndarray, y_true: np.ndarray, labels: tuple[str, ...]) -> Evaluation:
    """Metrics of ``probabilities`` ``(N, K)`` against ``y_true`` ``(N,)``."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    y_true = np.asarray(y_true, dtype=np.int64)
    classes = list(range(len(labels)))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, predicted, labels=classes, zero_division=0)
    per_class = [
        ClassMetrics(label, float(p), float(r), float(f), int(s)) for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    ]
    present = len(np.unique(y_true)) == len(labels)
    roc_auc, fpr, tpr = None, np.empty(0), np.empty(0)
    if present and len(labels) == 2:
        roc_auc = float(roc_auc_score(y_true, probabilities[:, 1]))
        fpr, tpr, _ = roc_curve(y_true, probabilities[:, 1])
    elif present:
        rows = probabilities / np.clip(probabilities.sum(axis=1, keepdims=True), 1e-12, None)
        roc_auc = float(roc_auc_score(y_true, rows, multi_class="ovr", average="macro", labels=classes))
    return Evaluation(
        labels=tuple(labels),
        y_true=y_true,
        probabilities=probabilities,
        accuracy=float(accuracy_score(y_true, predicted)),
        loss=float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-7, 1.0)))),
        per_class=per_class,
        macro_precision=float(np.mean(precision)),
        macro_recall=float(np.mean(recall)),
        macro_f1=float(np.mean(f1)),
        confusion=confusion_matrix(y_true, predicted, labels=classes),
        roc_auc=roc_auc,
        roc_fpr=np.asarray(fpr),
        roc_tpr=np.asarray(tpr),
    )
