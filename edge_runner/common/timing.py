"""Timing calls: milliseconds per call, the calls taking turns, and their percentiles as one small dataclass.

Every latency the kit reports is measured here: the runner's ``--benchmark``
(:mod:`edge_runner.cli.benchmark`), ``convert benchmark`` (``convert/benchmark/measure.py``),
the int8 fix loop (``convert/int8/remedy.py``) and the backbone comparison
(``train/compare.py``): warm-up calls first, then ``time.perf_counter`` around
each call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Per-call latency in milliseconds over ``runs`` calls at ``threads`` interpreter threads.

    ``threads`` is 0 when the thread count is not known (TensorFlow's default).
    """

    threads: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def from_times(cls, times_ms: Sequence[float], threads: int, *, digits: int | None = None) -> Latency:
        """Percentiles (linear interpolation) and mean of ``times_ms`` (one value per call, ≥ 1 value).

        ``digits``: round every figure to that many decimals (reports written as JSON), or keep them exact.
        """
        times = np.asarray(times_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(times, [50, 90, 99])
        figures = [float(p50), float(p90), float(p99), float(times.mean())]
        if digits is not None:
            figures = [round(value, digits) for value in figures]
        return cls(threads, len(times), *figures)


def time_interleaved(calls: Sequence[Callable[[], Any]], runs: int, warmup: int,
                     on_round: Callable[[], None] | None = None) -> list[list[float]]:
    """Milliseconds per call for each of ``calls``, ``runs`` times each, after ``warmup`` untimed calls each.

    The calls take turns (round ``r`` starts at call ``r mod n``), so a change in
    machine load while the benchmark runs hits every model alike and the ratios
    between them stay fair. ``on_round`` is called after each round (a progress bar).
    """
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    for round_index in range(runs):
        for k in range(len(calls)):
            i = (round_index + k) % len(calls)
            start = time.perf_counter()
            calls[i]()
            times[i].append((time.perf_counter() - start) * 1000.0)
        if on_round:
            on_round()
    return times
