"""Proof that edgekit's .tflite files work in MediaPipe Tasks as they are.

Runs in its own virtual environment (MediaPipe pins numpy<2 and protobuf 4, which
clash with the kit's TensorFlow), e.g.::

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    /tmp/mpvenv/bin/python tests/mediapipe/check_mediapipe.py --model out/cats_dogs_int8.tflite \\
        --model out/cats_dogs_float32.tflite photo1.jpg photo2.jpg

For every model it reads the metadata back with MediaPipe's own
``MetadataDisplayer`` (the tflite-support parser) and classifies every image with
``mediapipe.tasks.python.vision.ImageClassifier``, the same C++ task Android and
iOS apps call. It prints one JSON object per line:

* ``{"model": PATH, "metadata": {...}, "packed_files": [...], "labels": [...]}`` once per model
  (``labels``: the lines of the output's ``TENSOR_AXIS_LABELS`` file, as MediaPipe unpacks it);
* ``{"model": PATH, "image": PATH, "categories": [{"index", "category_name", "score"}, ...]}``
  per image, all categories in descending score order.

Exit status 0, or 1 when MediaPipe refuses a model or an image (the error is printed).
This script imports nothing from edgekit: it is the outside view of the files.
"""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="an exported .tflite (repeatable)")
    parser.add_argument("images", nargs="*", help="photos to classify (none: only read the metadata)")
    return parser


def check(model: str, images: list[str]) -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.metadata.metadata import MetadataDisplayer
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    displayer = MetadataDisplayer.with_model_file(model)
    metadata = json.loads(displayer.get_metadata_json())
    label_files = [f["name"] for t in metadata["subgraph_metadata"][0].get("output_tensor_metadata", [])
                   for f in t.get("associated_files", []) if f.get("type") == "TENSOR_AXIS_LABELS"]
    labels = displayer.get_associated_file_buffer(label_files[0]).decode("utf-8").splitlines() if label_files else None
    print(json.dumps({
        "model": model,
        "metadata": metadata,
        "packed_files": sorted(displayer.get_packed_associated_file_list()),
        "labels": labels,
    }), flush=True)
    if not images:
        return
    options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=-1)
    with ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            result = classifier.classify(mp.Image.create_from_file(path))
            categories = [
                {"index": c.index, "category_name": c.category_name, "score": float(c.score)}
                for c in result.classifications[0].categories
            ]
            print(json.dumps({"model": model, "image": path, "categories": categories}), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status = 0
    for model in args.model:
        try:
            check(model, args.images)
        except Exception as exc:  # report MediaPipe's own words, keep checking the others
            print(f"check_mediapipe: error: {model}: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
