"""Inference latency of two sets of models in one run, interleaved, with ratios.

    python tests/benchmarks/compare_latency.py --before OLD_DIR --after models/ [--rounds 20] [--runs 25]

For every variant found in both folders (``*_int8.tflite``, ``*_float16.tflite``,
``*_float32.tflite``), each round times ``--runs`` invocations of the "before"
model, then of the "after" model, at 1 thread, on the same fixed input
(``Classifier.probabilities``: quantise, invoke, dequantise). Alternating in
short rounds spreads any load from other processes over both sides, so the
ratio stays meaningful on a shared machine. Prints p50/p90 per model and the
after/before ratio of the p50s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner import Classifier  # noqa: E402

VARIANTS = ("int8", "float16", "float32")


def pairs(before: Path, after: Path) -> list[tuple[str, Path, Path]]:
    found = []
    for variant in VARIANTS:
        old = sorted(before.glob(f"*_{variant}.tflite"))
        new = sorted(after.glob(f"*_{variant}.tflite"))
        if old and new:
            found.append((variant, old[0], new[0]))
    return found


def time_runs(classifier: Classifier, pixels: np.ndarray, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.probabilities(pixels)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="folder with the old models")
    parser.add_argument("--after", type=Path, default=REPO / "models", help="folder with the new models (default models/)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=25, help="timed invocations per model per round")
    args = parser.parse_args(argv)
    found = pairs(args.before, args.after)
    if not found:
        print(f"compare_latency: error: no variant in both {args.before} and {args.after}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    print("| variant | before p50 ms | before p90 ms | after p50 ms | after p90 ms | after / before (p50) |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant, old_path, new_path in found:
        old, new = Classifier(old_path, num_threads=1), Classifier(new_path, num_threads=1)
        pixels = rng.integers(0, 256, (old.spec.height, old.spec.width, 3), dtype=np.uint8)
        for classifier in (old, new):
            time_runs(classifier, pixels, 10)  # warm-up
        samples = {"before": [], "after": []}
        for _ in range(args.rounds):
            samples["before"] += time_runs(old, pixels, args.runs)
            samples["after"] += time_runs(new, pixels, args.runs)
        b50, b90 = np.percentile(samples["before"], [50, 90])
        a50, a90 = np.percentile(samples["after"], [50, 90])
        print(f"| {variant} | {b50:.2f} | {b90:.2f} | {a50:.2f} | {a90:.2f} | {a50 / b50:.3f} |")
    print(f"\n{args.rounds} rounds x {args.runs} runs per model, interleaved; 1 thread; before: {args.before}, after: {args.after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
