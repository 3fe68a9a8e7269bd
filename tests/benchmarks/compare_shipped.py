"""Is a candidate of ``python -m train compare`` as accurate as the shipped model, within noise?

Scores ``models/cats_dogs_int8.tflite`` (or ``--model``) on the comparison's validation
photos through the runner's path (decode → ``Classifier``), then prints, per candidate,
its int8 accuracy, its int8 latency relative to the shipped model's architecture twin
(the 1.0/224 candidate) and the exact McNemar p-value against the shipped model.

    python tests/benchmarks/compare_shipped.py runs/compare
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from convert.gate.accuracy import predict_tflite, truth_indices  # noqa: E402
from convert.photos import decode, split_photos  # noqa: E402
from edge_runner.core.model import read_contract  # noqa: E402
from train.comparison.pareto import Point, mcnemar_p  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compare_dir", type=Path, help="the --out of python -m train compare")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "cats_dogs_int8.tflite")
    args = parser.parse_args(argv)
    report = json.loads((args.compare_dir / "report.json").read_text())
    done = [row for row in report["candidates"] if row["status"] == "done"]
    split = json.loads((Path(done[0]["int8_model"]).parent.parent / "train" / "split.json").read_text())
    spec = read_contract(args.model)
    decoded = decode(split_photos(split["validation"], spec.labels, "split.json"), spec, draft=True, warn=lambda _m: None)
    predicted = predict_tflite(args.model, decoded.pixels).argmax(axis=1)
    truth = truth_indices(spec.labels, [p.label for p in decoded.photos])
    wrong = frozenset(str(decoded.photos[i].path) for i in np.flatnonzero(predicted != truth))
    shipped = Point("shipped", 100.0 * (len(truth) - len(wrong)) / len(truth), 0.0, 0.0, wrong, len(truth))
    print(f"shipped {args.model.name}: {shipped.accuracy:.2f}% int8 on {len(truth)} validation photos")
    print(f"{'candidate':<24} {'int8 %':>7} {'errors':>6} {'p50 ms':>7} {'McNemar p vs shipped':>21}")
    for row in sorted(done, key=lambda r: r["latency_p50_ms"].get("1", 0)):
        point = Point(row["name"], row["int8_accuracy"], 0.0, 0.0, frozenset(json.loads(
            (Path(row["int8_model"]).parent.parent / "result.json").read_text())["wrong"]), row["photos"])
        print(f"{row['name']:<24} {row['int8_accuracy']:>7.2f} {len(point.wrong):>6} "
              f"{row['latency_p50_ms'].get('1', float('nan')):>7.2f} {mcnemar_p(point, shipped):>21.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
