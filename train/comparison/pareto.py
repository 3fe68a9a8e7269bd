"""Which candidate to ship: the accuracy/latency Pareto front, noise between accuracies, a budgeted pick.

Accuracies are compared on the *same* validation photos, so "within noise" is a
paired question: an exact McNemar test on the photos that exactly one of the two
models gets wrong (``scipy.stats.binomtest``). A model counts as within noise of
the best when that test does not find it worse at the 5% level (two-sided).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

NOISE_LEVEL = 0.05


@dataclass(frozen=True)
class Point:
    """One measured candidate, as the choice sees it.

    Attributes:
        name: the candidate's name.
        accuracy: int8 validation accuracy in percent (0–100).
        latency_ms: int8 p50 latency at 1 thread, milliseconds.
        size_mb: int8 file size in MB (10^6 bytes).
        wrong: the validation photos it gets wrong (paths), for the paired test.
        photos: how many validation photos it was scored on.
    """

    name: str
    accuracy: float
    latency_ms: float
    size_mb: float
    wrong: frozenset[str] = frozenset()
    photos: int = 0


@dataclass(frozen=True)
class Recommendation:
    """The pick under a budget.

    Attributes:
        best: the most accurate candidate within budget (None when none fits).
        fastest: the fastest candidate within budget whose accuracy is within noise of ``best``.
        p_value: McNemar's two-sided p-value of ``fastest`` against ``best`` (1.0 when they are the same).
        max_latency_ms, max_size_mb: the budget (None = no limit).
        fitting: how many candidates fit the budget.
    """

    best: Point | None
    fastest: Point | None
    p_value: float
    max_latency_ms: float | None
    max_size_mb: float | None
    fitting: int

    def line(self) -> str:
        """One line for the report and the terminal."""
        budget = ", ".join(part for part in (
            f"latency ≤ {self.max_latency_ms:g} ms" if self.max_latency_ms is not None else "",
            f"size ≤ {self.max_size_mb:g} MB" if self.max_size_mb is not None else "") if part) or "no budget"
        if self.best is None or self.fastest is None:
            return f"Recommendation ({budget}): no candidate fits the budget."
        best = _describe(self.best)
        if self.fastest.name == self.best.name:
            return f"Recommendation ({budget}): {best}, the most accurate and no faster model is within noise of it."
        return (f"Recommendation ({budget}): most accurate {best}; fastest within noise of it "
                f"{_describe(self.fastest)} (McNemar p = {self.p_value:.2f}).")


def _describe(point: Point) -> str:
    return f"{point.name} ({point.accuracy:.2f}% int8, {point.latency_ms:.2f} ms, {point.size_mb:.2f} MB)"


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats: none is at least as accurate and at least as fast, and better in one.

    Returned in increasing latency (and so increasing accuracy).
    """
    front = []
    for p in points:
        dominated = any(
            q.accuracy >= p.accuracy and q.latency_ms <= p.latency_ms and (q.accuracy > p.accuracy or q.latency_ms < p.latency_ms)
            for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.latency_ms, p.accuracy))


def mcnemar_p(a: Point, b: Point) -> float:
    """Exact two-sided McNemar p-value for "a and b are equally accurate" on the same photos (1.0 if no photo differs)."""
    from scipy.stats import binomtest

    only_a, only_b = len(a.wrong - b.wrong), len(b.wrong - a.wrong)
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def within_noise(candidate: Point, best: Point, level: float = NOISE_LEVEL) -> bool:
    """``candidate`` is not significantly less accurate than ``best`` (paired test at ``level``)."""
    return candidate.accuracy >= best.accuracy or mcnemar_p(candidate, best) >= level


def recommend(points: Sequence[Point], *, max_latency_ms: float | None = None, max_size_mb: float | None = None,
              level: float = NOISE_LEVEL) -> Recommendation:
    """The most accurate candidate within the budget, and the fastest one within noise of it."""
    fitting = [p for p in points if (max_latency_ms is None or p.latency_ms <= max_latency_ms)
               and (max_size_mb is None or p.size_mb <= max_size_mb)]
    if not fitting:
        return Recommendation(None, None, 1.0, max_latency_ms, max_size_mb, 0)
    best = max(fitting, key=lambda p: (p.accuracy, -p.latency_ms))
    close = [p for p in fitting if within_noise(p, best, level)]
    fastest = min(close, key=lambda p: (p.latency_ms, -p.accuracy))
    p_value = 1.0 if fastest.name == best.name else mcnemar_p(fastest, best)
    return Recommendation(best, fastest, p_value, max_latency_ms, max_size_mb, len(fitting))


def fastest_at(points: Sequence[Point], min_accuracy: float) -> Point | None:
    """The fastest candidate with at least ``min_accuracy`` percent, or None."""
    good = [p for p in points if p.accuracy >= min_accuracy]
    return min(good, key=lambda p: (p.latency_ms, -p.accuracy)) if good else None
