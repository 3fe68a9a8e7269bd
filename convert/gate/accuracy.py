"""The accuracy gate: each variant against the float Keras model, on the same pixels.

Photos are decoded once with the runner's :func:`edge_runner.core.image.preprocess`;
the Keras model and every ``.tflite`` (through :class:`edge_runner.core.model.Classifier`,
the runner's own inference path) see identical uint8 pixels, so a difference can
only come from the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, recall_score

from edge_runner.core.model import Classifier

from .significance import (DEFAULT_ALPHA, DEFAULT_CONFIDENCE, ClassChange, ConfidentAgreement, PairedTest,
                           class_changes, confident_agreement, format_p, paired_test)


@dataclass(frozen=True)
class Thresholds:
    """When a variant is rejected.

    Attributes:
        max_accuracy_drop: allowed loss in accuracy points against the float Keras model. A variant is
            rejected when its observed loss is larger than this AND significant: McNemar's exact
            one-sided p-value (on the photos whose rightness flips) is below ``alpha``.
        min_agreement: top-1 agreement (percent) required as well; None (the default) reports
            agreement without requiring it (``--require-agreement``).
        alpha: significance level of the one-sided loss test (0–1).
        confidence: level of the reported interval of the accuracy change (0–1).
    """

    max_accuracy_drop: float = 1.0
    min_agreement: float | None = None
    alpha: float = DEFAULT_ALPHA
    confidence: float = DEFAULT_CONFIDENCE


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
    """Whether a variant passes the gate, and why not.

    Attributes:
        accepted: passes every requirement.
        reasons: why it was rejected (empty when accepted).
        notes: what was measured but did not decide (e.g. a loss above the limit that is within noise).
        close: the interval's low end reaches below ``-max_accuracy_drop``: these photos cannot rule out
            a loss larger than allowed, so the variant deserves a diagnosis.
    """

    accepted: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()
    close: bool = False


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


def judge(scores: Scores, reference: Scores, comparison: Comparison, thresholds: Thresholds,
          paired: PairedTest | None = None) -> Verdict:
    """Apply the thresholds; the reasons name the measured value and the limit.

    With ``paired`` (the photo-by-photo table), a loss above the limit rejects only when it is
    significant (one-sided McNemar p < alpha); without it, any loss above the limit rejects.
    """
    reasons: list[str] = []
    notes: list[str] = []
    limit = thresholds.max_accuracy_drop
    drop = reference.accuracy - scores.accuracy
    close = False
    if paired is not None:
        low, high = paired.interval
        close = low < -limit - 1e-9
        evidence = (f"{paired.lost} right→wrong vs {paired.gained} wrong→right, McNemar one-sided "
                    f"{p_text(paired.p_value)}, {100 * paired.confidence:g}% interval {low:+.2f} to {high:+.2f} pt")
        if drop > limit + 1e-9 and paired.p_value < thresholds.alpha:
            reasons.append(f"accuracy drops {drop:.2f} points (limit {limit:g}), a significant loss ({evidence})")
        elif drop > limit + 1e-9:
            notes.append(f"accuracy drops {drop:.2f} points (limit {limit:g}) but the loss is not significant "
                         f"at alpha {thresholds.alpha:g} ({evidence})")
    elif drop > limit + 1e-9:
        reasons.append(f"accuracy drops {drop:.2f} points (limit {limit:g})")
    if thresholds.min_agreement is not None and comparison.agreement < thresholds.min_agreement - 1e-9:
        reasons.append(f"top-1 agreement {comparison.agreement:.2f}% (required {thresholds.min_agreement:g}%)")
    return Verdict(not reasons, tuple(reasons), tuple(notes), close)


def p_text(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {format_p(value)}"


def ship_sentence(variant: str, scores: Scores, reference: Scores, paired: PairedTest, verdict: Verdict,
                  confident: ConfidentAgreement | None, thresholds: Thresholds) -> str:
    """One plain sentence for someone about to ship ``variant``."""
    change = scores.accuracy - reference.accuracy
    low, high = paired.interval
    level = f"{100 * paired.confidence:g}%"
    flips = (f"{paired.lost} photo{'s' if paired.lost != 1 else ''} went right→wrong and {paired.gained} wrong→right "
             f"out of {paired.photos}")
    sure = ""
    if confident is not None and confident.photos and confident.agreeing < confident.photos:
        sure = (f"; it changes {confident.photos - confident.agreeing} of the {confident.photos} answers the float "
                f"model was sure about (score ≥ {confident.min_score:g})")
    if not verdict.accepted:
        why = "; ".join(verdict.reasons)
        return f"{variant}: do not ship — {why}{sure}."
    if paired.discordant == 0:
        return f"{variant}: safe to ship — it gives the same right/wrong answer as the float model on all {paired.photos} photos{sure}."
    if verdict.close:
        return (f"{variant}: acceptable, but these photos cannot settle it — accuracy {change:+.2f} pt ({flips}, "
                f"{p_text(paired.p_value)}), yet the {level} interval ({low:+.2f} to {high:+.2f} pt) still allows a loss "
                f"larger than the {thresholds.max_accuracy_drop:g} pt limit; check it on more photos{sure}.")
    return (f"{variant}: safe to ship — accuracy {change:+.2f} pt ({flips}); the {level} interval {low:+.2f} to "
            f"{high:+.2f} pt rules out a loss beyond the {thresholds.max_accuracy_drop:g} pt limit{sure}.")


@dataclass(frozen=True)
class Gated:
    """Everything the gate measured on one candidate file.

    Attributes:
        scores, comparison: accuracy and agreement as before.
        paired: the paired table, McNemar p-value and interval.
        confident: agreement where the float model's top score is ≥ 0.9.
        class_changes: per-class accuracy change with counts.
        verdict: the decision; summary: one sentence for someone about to ship.
    """

    scores: Scores
    comparison: Comparison
    paired: PairedTest
    confident: ConfidentAgreement
    class_changes: tuple[ClassChange, ...]
    verdict: Verdict
    summary: str


def evaluate(variant: str, probabilities: np.ndarray, reference_probs: np.ndarray, truth: np.ndarray,
             labels: Sequence[str], reference: Scores, thresholds: Thresholds, seed: int = 0) -> Gated:
    """Gate float32 ``(K, N)`` ``probabilities`` against the float model's on the same photos."""
    scores = score(probabilities, truth, labels)
    comparison = compare(reference_probs, probabilities)
    reference_right = reference_probs.argmax(axis=1) == truth
    variant_right = probabilities.argmax(axis=1) == truth
    paired = paired_test(reference_right, variant_right, confidence=thresholds.confidence, seed=seed)
    confident = confident_agreement(reference_probs, probabilities)
    verdict = judge(scores, reference, comparison, thresholds, paired)
    return Gated(scores, comparison, paired, confident, class_changes(truth, reference_right, variant_right, labels),
                 verdict, ship_sentence(variant, scores, reference, paired, verdict, confident, thresholds))


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
