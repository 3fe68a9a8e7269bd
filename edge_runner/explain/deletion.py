"""The deletion check: is an explanation map faithful to the model?

Grey out the ``fraction`` of the image that the map ranks most important and
measure how much the predicted class's probability drops; do the same with a
random map of the same grid (seeded), whose top region has the same size and
the same blob-like shape. A faithful map's deletion hurts clearly more.

Used by the tests and ``tests/benchmarks/bench_explain.py`` for Grad-CAM and the
occlusion map alike (numpy + Pillow only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .heatmap import upsample

FILL_VALUE = 128
DEFAULT_FRACTION = 0.2

# scores(images uint8 (N, H, W, 3)) -> probabilities float32 (N, num_classes)
ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DeletionResult:
    """One photo: the class's probability before and after deleting the map's top region and a random one."""

    class_index: int
    score: float
    map_drop: float
    random_drop: float

    @property
    def map_wins(self) -> bool:
        return self.map_drop > self.random_drop


@dataclass(frozen=True)
class DeletionSummary:
    """Many photos: ``share`` where the map's deletion hurt more, and the mean drops (probability points 0–1)."""

    count: int
    share: float
    mean_map_drop: float
    mean_random_drop: float

    def line(self, name: str) -> str:
        return (f"{name}: map beats random on {self.share * 100:.1f}% of {self.count} photos; mean drop "
                f"{self.mean_map_drop:.3f} (map) vs {self.mean_random_drop:.3f} (random)")


def top_mask(grid: np.ndarray, size: tuple[int, int], fraction: float = DEFAULT_FRACTION) -> np.ndarray:
    """bool ``(height, width)``: the ``fraction`` of pixels where the bilinearly upsampled map is highest.

    ``size`` is ``(width, height)``; ties are broken by pixel order (stable), so the
    mask always has exactly ``round(fraction * width * height)`` pixels.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), received {fraction}")
    values = upsample(grid, size).ravel()
    keep = int(round(fraction * values.size))
    order = np.argsort(-values, kind="stable")[:keep]
    mask = np.zeros(values.size, dtype=bool)
    mask[order] = True
    return mask.reshape(size[1], size[0])


def random_grid(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A uniform random map of ``shape``: its top region is the 'random 20%' baseline."""
    return rng.random(shape).astype(np.float32)


def delete(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``uint8`` ``(H, W, 3)`` pixels with the masked ones set to grey."""
    copy = pixels.copy()
    copy[mask] = FILL_VALUE
    return copy


def deletion_check(scores: ScoreFn, pixels: np.ndarray, grid: np.ndarray, *, class_index: int | None = None,
                   fraction: float = DEFAULT_FRACTION, rng: np.random.Generator) -> DeletionResult:
    """Delete the map's top ``fraction`` and a random map's top ``fraction``; compare the probability drops.

    Args:
        scores: the model (see ``ScoreFn``).
        pixels: ``uint8`` ``(H, W, 3)`` the model's input.
        grid: the map ``(rows, cols)`` for this photo, higher = more important.
        class_index: the class whose score is measured (default: the top-1 answer).
        rng: draws the random baseline (seed it for reproducible numbers).
    """
    size = (pixels.shape[1], pixels.shape[0])
    baseline = random_grid(np.asarray(grid).shape, rng)
    batch = np.stack([pixels, delete(pixels, top_mask(grid, size, fraction)), delete(pixels, top_mask(baseline, size, fraction))])
    probs = scores(batch)
    if class_index is None:
        class_index = int(np.argmax(probs[0]))
    before = float(probs[0, class_index])
    return DeletionResult(class_index, before, before - float(probs[1, class_index]), before - float(probs[2, class_index]))


def summarize(results: Sequence[DeletionResult]) -> DeletionSummary:
    if not results:
        return DeletionSummary(0, float("nan"), float("nan"), float("nan"))
    return DeletionSummary(
        count=len(results),
        share=float(np.mean([r.map_wins for r in results])),
        mean_map_drop=float(np.mean([r.map_drop for r in results])),
        mean_random_drop=float(np.mean([r.random_drop for r in results])),
    )


def top_region_iou(a: np.ndarray, b: np.ndarray, size: tuple[int, int], fraction: float = DEFAULT_FRACTION) -> float:
    """Intersection over union of two maps' top-``fraction`` regions at ``size`` = ``(width, height)`` (0–1)."""
    first, second = top_mask(a, size, fraction), top_mask(b, size, fraction)
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def same_peak_cell(a: np.ndarray, b: np.ndarray, cells: int) -> bool:
    """Whether two maps, each resampled to ``cells x cells``, have their maximum in the same cell."""
    first = upsample(a, (cells, cells)) if np.asarray(a).shape != (cells, cells) else np.asarray(a)
    second = upsample(b, (cells, cells)) if np.asarray(b).shape != (cells, cells) else np.asarray(b)
    return int(np.argmax(first)) == int(np.argmax(second))
