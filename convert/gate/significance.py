"""Paired statistics for the accuracy gate: is a variant's loss real, or noise?

The float model and a variant answer the *same* photos, so their answers are paired.
Only the photos where they disagree about being right carry information:

* ``lost``   — the float model right, the variant wrong;
* ``gained`` — the float model wrong, the variant right.

Under "the variant is as accurate as the float model" each discordant photo is a fair
coin, so ``lost ~ Binomial(lost + gained, 1/2)``: McNemar's exact test. The gate uses the
one-sided p-value ``P(X >= lost)`` (a loss, not a gain, is what stops a ship).

The confidence interval of the accuracy change comes from a seeded paired bootstrap:
resampling photos with replacement only changes how many of them fall in each of the
four cells (both right, lost, gained, both wrong), so the bootstrap draws those counts
from one multinomial — exact and instant, even for 10,000 resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import binomtest

DEFAULT_ALPHA = 0.05
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 10_000
CONFIDENT_SCORE = 0.9


@dataclass(frozen=True)
class PairedTest:
    """A variant's answers against the float model's, photo by photo.

    Attributes:
        photos: photos compared.
        both_right, lost, gained, both_wrong: the 2×2 table (``lost`` = float right, variant wrong).
        change_points: accuracy change in percentage points (variant − float), ``100 * (gained - lost) / photos``.
        p_value: one-sided McNemar exact p-value of a loss, ``P(Binomial(lost + gained, 1/2) >= lost)``; 1.0 with no flips.
        interval: ``(low, high)`` bootstrap interval of ``change_points`` at ``confidence``.
        confidence: the interval's level (0–1).
        resamples, seed: of the bootstrap.
    """

    photos: int
    both_right: int
    lost: int
    gained: int
    both_wrong: int
    change_points: float
    p_value: float
    interval: tuple[float, float]
    confidence: float
    resamples: int
    seed: int

    @property
    def discordant(self) -> int:
        return self.lost + self.gained


def mcnemar_loss_p(lost: int, gained: int) -> float:
    """One-sided exact McNemar p-value that the variant is worse: ``P(X >= lost)``, ``X ~ Bin(lost + gained, 1/2)``."""
    if lost < 0 or gained < 0:
        raise ValueError(f"counts must be >= 0, received lost={lost}, gained={gained}")
    if lost + gained == 0:
        return 1.0
    return float(binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue)


def bootstrap_interval(photos: int, lost: int, gained: int, *, confidence: float = DEFAULT_CONFIDENCE,
                       resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy change (points) from the paired table's counts.

    Each resample draws ``photos`` photos with replacement; its change is
    ``100 * (gained* - lost*) / photos`` with ``(lost*, gained*, rest*) ~ Multinomial(photos, observed shares)``.
    """
    if photos <= 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    shares = np.array([lost, gained, photos - lost - gained], dtype=np.float64) / photos
    counts = rng.multinomial(photos, shares, size=resamples)
    changes = 100.0 * (counts[:, 1] - counts[:, 0]) / photos
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(changes, [tail, 100.0 - tail])
    return (round(float(low), 4), round(float(high), 4))


def paired_test(reference_right: np.ndarray, variant_right: np.ndarray, *, confidence: float = DEFAULT_CONFIDENCE,
                resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> PairedTest:
    """The paired table, McNemar's one-sided exact p-value and the bootstrap interval.

    Args:
        reference_right, variant_right: bool ``(K,)``, whether each photo's top-1 is its true label.
    """
    ref = np.asarray(reference_right, dtype=bool)
    var = np.asarray(variant_right, dtype=bool)
    if ref.shape != var.shape or ref.ndim != 1:
        raise ValueError(f"expected two equal 1-D arrays, received shapes {ref.shape} and {var.shape}")
    photos = int(len(ref))
    lost, gained = int((ref & ~var).sum()), int((~ref & var).sum())
    return PairedTest(
        photos=photos, both_right=int((ref & var).sum()), lost=lost, gained=gained, both_wrong=int((~ref & ~var).sum()),
        change_points=round(100.0 * (gained - lost) / photos, 4) if photos else 0.0,
        p_value=round(mcnemar_loss_p(lost, gained), 6),
        interval=bootstrap_interval(photos, lost, gained, confidence=confidence, resamples=resamples, seed=seed),
        confidence=confidence, resamples=resamples, seed=seed,
    )


def format_p(value: float) -> str:
    """``"< 0.001"`` or three decimals: a p-value as the report prints it."""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@dataclass(frozen=True)
class ConfidentAgreement:
    """Top-1 agreement on the photos where the float model is sure (top score ≥ ``min_score``).

    A flip there is rarely noise: the float model was far from its decision boundary.
    """

    min_score: float
    photos: int
    agreeing: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.agreeing / self.photos, 4) if self.photos else None


def confident_agreement(reference: np.ndarray, probabilities: np.ndarray,
                        min_score: float = CONFIDENT_SCORE) -> ConfidentAgreement:
    """Agreement of float32 ``(K, N)`` ``probabilities`` with ``reference`` where ``reference.max(1) >= min_score``."""
    sure = reference.max(axis=1) >= min_score
    same = reference.argmax(axis=1) == probabilities.argmax(axis=1)
    return ConfidentAgreement(min_score, int(sure.sum()), int((sure & same).sum()))


@dataclass(frozen=True)
class ClassChange:
    """One class's accuracy, float model vs variant, with the counts behind it.

    Attributes:
        label: the class; photos: how many of its photos.
        reference_right, variant_right: photos classified correctly by each.
        lost, gained: photos of this class the variant got wrong where the float model was right, and the reverse.
        change_points: ``100 * (variant_right - reference_right) / photos``.
    """

    label: str
    photos: int
    reference_right: int
    variant_right: int
    lost: int
    gained: int
    change_points: float


def class_changes(truth: np.ndarray, reference_right: np.ndarray, variant_right: np.ndarray,
                  labels: Sequence[str]) -> tuple[ClassChange, ...]:
    """Per-class changes for the classes present among ``truth`` (int ``(K,)`` label indices)."""
    changes = []
    for index in sorted(set(np.asarray(truth).tolist())):
        mine = truth == index
        ref, var = reference_right[mine], variant_right[mine]
        n = int(mine.sum())
        changes.append(ClassChange(
            label=labels[index], photos=n, reference_right=int(ref.sum()), variant_right=int(var.sum()),
            lost=int((ref & ~var).sum()), gained=int((~ref & var).sum()),
            change_points=round(100.0 * (int(var.sum()) - int(ref.sum())) / n, 4),
        ))
    return tuple(changes)
