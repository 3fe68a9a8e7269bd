"""The converter's numbers on real photos: export + gate + benchmark, with the issue's targets beside them.

    /work/venv/bin/python tests/benchmarks/bench_convert.py TRAIN_OUT [--out DIR] [--runs 200] [--threads 1,2]

``TRAIN_OUT`` is a ``python -m train`` output directory (model.keras, contract.json,
split.json). Runs ``python -m convert export`` (all four variants, gate on the
validation split, calibration on 300 seeded training photos), then
``python -m convert benchmark`` on the four files with the Keras model as the
baseline, and prints:

- int8 top-1 agreement with the float Keras model and its accuracy change on the
  validation split (targets: >= 99.5 %, drop <= 0.5 point);
- int8 file size / float32 file size (target <= 0.30);
- int8 p50 latency / float32 p50 latency at 1 thread on ai-edge-litert, measured
  in the same run with the models taking turns (target <= 0.6).

Nothing here asserts: the figures and the targets are printed side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from convert.cli import main as convert_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_out", type=Path, metavar="TRAIN_OUT")
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgekit-bench-convert"), help="export directory (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per model and thread count (default: %(default)s)")
    parser.add_argument("--threads", type=str, default="1,2", help="thread counts (default: %(default)s)")
    parser.add_argument("--data", type=Path, help="one folder per class for the benchmark's accuracy column "
                        "(default: DATA_DIR/validation of split.json when it exists)")
    parser.add_argument("--limit", type=int, default=400, help="validation photos for the benchmark's accuracy column (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    split = json.loads((args.train_out / "split.json").read_text())
    data_dir = args.data or Path(split["data_dir"]) / "validation"
    start = time.perf_counter()
    code = convert_main(["export", str(args.train_out), "--out", str(args.out)])
    export_seconds = time.perf_counter() - start
    if code == 2:
        return 2
    report = json.loads((args.out / "report.json").read_text())
    stem = Path(report["variants"][0]["path"]).name.rsplit("_", 1)[0]
    models = [str(args.out / f"{stem}_{v}.tflite") for v in ("float32", "float16", "dynamic", "int8")]
    bench_args = ["benchmark", *models, "--keras", str(args.train_out), "--threads", args.threads,
                  "--runs", str(args.runs), "--out", str(args.out)]
    if data_dir.is_dir():
        bench_args += ["--data", str(data_dir), "--limit", str(args.limit)]
    if convert_main(bench_args) != 0:
        return 2
    bench = json.loads((args.out / "benchmark.json").read_text())

    variants = {v["variant"]: v for v in report["variants"]}
    int8, float32 = variants["int8"], variants["float32"]
    timed = {m["variant"]: m for m in bench["models"]}
    p50 = {v: next(l["p50_ms"] for l in timed[v]["latencies"] if l["threads"] == 1) for v in ("int8", "float32")}
    drop = report["reference"]["accuracy"] - int8["scores"]["accuracy"]
    rows = [
        ("int8 top-1 agreement with float Keras", f"{int8['comparison']['agreement']:.2f} %", ">= 99.5 %",
         int8["comparison"]["agreement"] >= 99.5),
        ("int8 accuracy drop vs float Keras", f"{drop:+.2f} pt ({int8['scores']['accuracy']:.2f} % vs "
         f"{report['reference']['accuracy']:.2f} %)", "<= 0.5 pt", drop <= 0.5),
        ("int8 size / float32 size", f"{int8['size_bytes'] / float32['size_bytes']:.3f} "
         f"({int8['size_bytes'] / 1e6:.2f} / {float32['size_bytes'] / 1e6:.2f} MB)", "<= 0.30",
         int8["size_bytes"] / float32["size_bytes"] <= 0.30),
        ("int8 p50 / float32 p50, 1 thread", f"{p50['int8'] / p50['float32']:.3f} ({p50['int8']:.2f} / "
         f"{p50['float32']:.2f} ms)", "<= 0.6", p50["int8"] / p50["float32"] <= 0.6),
    ]
    print(f"\nconvert on {args.train_out} ({report['reference']['photos']} validation photos; export took "
          f"{export_seconds:.0f} s)\n")
    print("| Figure | Measured | Target | Met |\n|---|---|---|---|")
    for name, value, target, met in rows:
        print(f"| {name} | {value} | {target} | {'yes' if met else 'NO'} |")
    print(f"\nFull reports: {args.out / 'report.md'}, {args.out / 'benchmark.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
