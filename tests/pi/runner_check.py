"""Classify a few images with a few models and print everything needed to compare two machines.

Runs unchanged on the x86 host and inside the emulated Raspberry Pi, through the
runner's library (``edge_runner.preprocess`` + ``Classifier``), and prints one JSON
document on stdout::

    {"platform": {"machine": "aarch64", "cpu_model": "Raspberry Pi 5 Model B Rev 1.0", "python": "3.11.2",
                  "runtime": "ai-edge-litert 2.3.0", "numpy": "2.4.6", "pillow": "13.0.0"},
     "models": [{"path": ..., "variant": "int8", "input_dtype": "uint8", "output_scale": 0.0039, ...}],
     "results": [{"model": 0, "source": ..., "pixels_sha256": ..., "label": ..., "score": ...,
                  "probabilities": [...]} | {"model": 0, "source": ..., "error": "..."}]}

Usage: python runner_check.py --model A.tflite [--model B.tflite ...] IMAGE [IMAGE ...]
       python runner_check.py --model B.tflite:IMAGE1,IMAGE2 ...   (this model only on those images)

No timings are printed: under emulation they would say nothing about a Pi.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from typing import Sequence


def cpu_model() -> str:
    """The ``Model`` line of ``/proc/cpuinfo`` (a Pi names itself there), else the machine name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("Model", "model name"):
                    return value.strip()
    except OSError:
        pass
    return platform.machine()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Classify images with models; print one JSON document.")
    parser.add_argument(
        "--model", action="append", required=True, metavar="MODEL[:IMAGE,IMAGE]",
        help="a .tflite model, optionally limited to some images (repeatable)",
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="images every unlimited model classifies")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    import PIL

    from edge_runner import Classifier, ImageError, preprocess

    report: dict = {"platform": {}, "models": [], "results": []}
    for index, entry in enumerate(args.model):
        path, _, only = entry.partition(":")
        classifier = Classifier(path)
        report["models"].append({
            "path": path,
            "variant": classifier.variant,
            "input_dtype": classifier.input_dtype.name,
            "output_dtype": classifier.output_dtype.name,
            "output_scale": classifier.output_scale,
            "labels": list(classifier.labels),
        })
        for image in (only.split(",") if only else args.images):
            try:
                pixels = preprocess(image, classifier.spec)
            except ImageError as exc:
                report["results"].append({"model": index, "source": image, "error": str(exc)})
                continue
            prediction = classifier.classify(pixels.array, top_k=len(classifier.labels))
            report["results"].append({
                "model": index,
                "source": image,
                "pixels_sha256": hashlib.sha256(pixels.array.tobytes()).hexdigest(),
                "label": prediction.label,
                "score": prediction.score,
                "probabilities": [float(p) for p in prediction.probabilities],
            })
        runtime = classifier.runtime
    report["platform"] = {
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "runtime": f"{runtime.name} {runtime.version}",
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
