"""The accuracy gate: each variant against the float Keras model, on the same pixels.

Photos are decoded once with the runner's :func:`edge_runner.image.preprocess`;
the Keras model and every ``.tflite`` (through :class:`edge_runner.model.Classifier`,
the runner's own inference path) see identical uint8 pixels, so a difference can
only come from the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, recall_score

from edge_runner.model import Classifier


@dataclass(frozen=True)
class Thresholds:
    """A variant is rejected when it loses more than ``max_accuracy_drop`` points of
    accuracy against the float Keras model, or agrees with its top-1 on fewer than
    ``min_agreement`` percent of the photos."""

    max_accuracy_drop: float = 1.0
    min_agreement: float = 98.0


@dataclass(frozen=True)
class Scores:
    """Accuracy of one model on labelled photos.

    Attributes:
        accuracy: percent of photos whose top-1 is the true label.
        per_class: label → percent of that class's photos classified correctly (recall);
            only classes present among the photos.
        photos: how many photos.
    """

    accuracy: float
    per_class: dict[str, float]
    photos: int


@dataclass(frozen=True)
class Comparison:
    """One model's outputs against the reference's on the same photos.

    Attributes:
        agreement: percent of photos with the same top-1 label.
        max_probability_difference: the largest ``|p - p_ref|`` over photos and classes (0–1).
        mean_probability_difference: the mean of ``max over classes |p - p_ref|`` per photo.
        disagreements: indices of photos whose top-1 differs.
    """

    agreement: float
    max_probability_difference: float
    mean_probability_difference: float
    disagreements: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Verdict:
    """Whether a variant passes the gate, and why not."""

    accepted: bool
    reasons: tuple[str, ...]


def truth_indices(labels: Sequence[str], photo_labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[label] for label in photo_labels], dtype=np.int64)


def score(probabilities: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> Scores:
    """Accuracy and per-class accuracy of float32 ``(K, N)`` probabilities against ``(K,)`` true indices."""
    predicted = probabilities.argmax(axis=1)
    present = sorted(set(truth.tolist()))
    recalls = recall_score(truth, predicted, labels=present, average=None, zero_division=0)
    per_class = {labels[i]: round(100.0 * float(r), 4) for i, r in zip(present, recalls)}
    return Scores(round(100.0 * float(accuracy_score(truth, predicted)), 4), per_class, int(len(truth)))


def compare(reference: np.ndarray, probabilities: np.ndarray) -> Comparison:
    """Top-1 agreement and probability differences between two ``(K, N)`` float32 arrays."""
    same = reference.argmax(axis=1) == probabilities.argmax(axis=1)
    difference = np.abs(reference.astype(np.float64) - probabilities.astype(np.float64))
    return Comparison(
        agreement=round(100.0 * float(same.mean()), 4),
        max_probability_difference=round(float(difference.max()), 6),
        mean_probability_difference=round(float(difference.max(axis=1).mean()), 6),
        disagreements=tuple(int(i) for i in np.flatnonzero(~same)),
    )


def judge(scores: Scores, reference: Scores, comparison: Comparison, thresholds: Thresholds) -> Verdict:
    """Apply the thresholds; the reasons name the measured value and the limit."""
    reasons = []
    drop = reference.accuracy - scores.accuracy
    if drop > thresholds.max_accuracy_drop + 1e-9:
        reasons.append(f"accuracy drops {drop:.2f} points (limit {thresholds.max_accuracy_drop:g})")
    if comparison.agreement < thresholds.min_agreement - 1e-9:
        reasons.append(f"top-1 agreement {comparison.agreement:.2f}% (minimum {thresholds.min_agreement:g}%)")
    return Verdict(not reasons, tuple(reasons))


def predict_keras(model: Any, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Keras probabilities for uint8 ``(K, H, W, 3)`` pixels → float32 ``(K, N)``."""
    import warnings

    with warnings.catch_warnings():
        # A model saved with its input in a list warns that a bare tensor "doesn't match
        # the expected structure"; Keras then uses it as the single input, as intended.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        outputs = [
            np.asarray(model(pixels[start: start + batch_size].astype(np.float32), training=False), dtype=np.float32)
            for start in range(0, len(pixels), batch_size)
        ]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.outputs[0].shape[-1]), np.float32)


def predict_tflite(path: str | Path, pixels: np.ndarray, *, num_threads: int | None = None,
                   progress: str | None = None) -> np.ndarray:
    """The runner's probabilities (``Classifier.probabilities``) for uint8 ``(K, H, W, 3)`` → float32 ``(K, N)``."""
    classifier = Classifier(path, num_threads=num_threads)
    iterator: Any = pixels
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pixels, desc=progress, unit="photo", leave=False, disable=None)
    return np.stack([classifier.probabilities(p) for p in iterator]).astype(np.float32)


@dataclass(frozen=True)
class DraftStudy:
    """Does JPEG draft decoding (``preprocess(..., draft=True)``) change the model's answers?

    Measured with the float Keras model on the same photos decoded both ways.

    Attributes:
        photos: photos compared.
        photos_decoded_differently: photos whose draft pixels differ at all from full decoding.
        mean_abs_pixel_difference: mean ``|draft - full|`` over all pixels (0–255 scale).
        accuracy_full, accuracy_draft: Keras accuracy (percent) with ``draft=False`` / ``draft=True``.
        comparison: draft outputs against full-decode outputs.
        costs_nothing: same accuracy (or better) and 100% top-1 agreement.
    """

    photos: int
    photos_decoded_differently: int
    mean_abs_pixel_difference: float
    accuracy_full: float
    accuracy_draft: float
    comparison: Comparison
    costs_nothing: bool


def study_draft(full_pixels: np.ndarray, draft_pixels: np.ndarray, full_probs: np.ndarray, draft_probs: np.ndarray,
                truth: np.ndarray, labels: Sequence[str]) -> DraftStudy:
    """Compare full and draft decoding of the same photos (uint8 pixels, float32 Keras probabilities)."""
    differs = (full_pixels != draft_pixels).reshape(len(full_pixels), -1).any(axis=1)
    diff = np.abs(full_pixels.astype(np.int16) - draft_pixels.astype(np.int16))
    full, draft = score(full_probs, truth, labels), score(draft_probs, truth, labels)
    comparison = compare(full_probs, draft_probs)
    return DraftStudy(
        photos=int(len(full_pixels)),
        photos_decoded_differently=int(differs.sum()),
        mean_abs_pixel_difference=round(float(diff.mean()) if diff.size else 0.0, 4),
        accuracy_full=full.accuracy,
        accuracy_draft=draft.accuracy,
        comparison=comparison,
        costs_nothing=bool(draft.accuracy >= full.accuracy and comparison.agreement == 100.0),
    )
