"""What JPEG draft decoding costs and buys on phone-size photos.

    python tests/benchmarks/study_draft.py [--data ../shared/data/cats_and_dogs_filtered/validation]
        [--limit 200] [--long-side 4032] [--model models/cats_dogs_int8.tflite]

The validation photos are ~500 px, too small for the runner's draft decoding
(Pillow decodes a JPEG at a reduced DCT scale only down to ``DRAFT_MARGIN`` × the
model's input, so for a 224 px model a photo needs 896 px on both sides). So each photo is enlarged
(Lanczos) to a phone camera's size (default 4032 px on the long side, 4:3 as a
phone shoots) and re-encoded as a quality-90 JPEG in a temporary folder; then
every copy is classified through the runner's path with ``draft=True`` (the
default) and ``draft=False``. Printed: decode time per photo both ways (the
ratio is what draft buys), top-1 agreement and the largest probability
difference between the two, and the accuracy of each. Enlarged photos are
smoother than real phone photos, so this measures the decoding path, not a
phone camera's detail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner import Classifier, preprocess  # noqa: E402
from edge_runner.core.image import find_images  # noqa: E402


def enlarge(photos: list[Path], out_dir: Path, long_side: int) -> list[Path]:
    """Phone-size 4:3 JPEG copies of ``photos`` (aspect kept by padding-free centre crop to 4:3)."""
    copies = []
    for i, path in enumerate(photos):
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            size = (long_side, long_side * 3 // 4) if w >= h else (long_side * 3 // 4, long_side)
            big = image.resize(size, Image.Resampling.LANCZOS)
        target = out_dir / path.parent.name / f"{i:04d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        big.save(target, quality=90)
        copies.append(target)
    return copies


def decode_all(paths: list[Path], classifier: Classifier, draft: bool) -> tuple[np.ndarray, float]:
    """(pixels ``(N, H, W, 3)`` uint8, mean decode seconds per photo)."""
    started = time.perf_counter()
    pixels = np.stack([preprocess(p, classifier.spec, draft=draft).array for p in paths])
    return pixels, (time.perf_counter() - started) / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/cats_and_dogs_filtered/validation")
    parser.add_argument("--model", type=Path, default=REPO / "models/cats_dogs_int8.tflite")
    parser.add_argument("--limit", type=int, default=200, help="photos, taken evenly from every class")
    parser.add_argument("--long-side", type=int, default=4032)
    args = parser.parse_args()

    classifier = Classifier(args.model)
    labels = classifier.spec.labels
    by_class = {label: find_images(args.data / label) for label in labels}
    per_class = max(1, args.limit // len(labels))
    photos = [p for label in labels for p in by_class[label][:per_class]]
    truth = np.array([labels.index(p.parent.name) for p in photos])
    with tempfile.TemporaryDirectory() as tmp:
        copies = enlarge(photos, Path(tmp), args.long_side)
        full, full_s = decode_all(copies, classifier, draft=False)
        draft, draft_s = decode_all(copies, classifier, draft=True)
    p_full = np.stack([classifier.probabilities(x) for x in full])
    p_draft = np.stack([classifier.probabilities(x) for x in draft])
    agree = float((p_full.argmax(1) == p_draft.argmax(1)).mean() * 100)
    print(f"{len(copies)} photos enlarged to {args.long_side} px on the long side (JPEG q90), model {args.model.name}")
    print(f"decode + resize per photo: full {full_s * 1000:.1f} ms, draft {draft_s * 1000:.1f} ms "
          f"(draft = {draft_s / full_s:.2f}× full)")
    print(f"pixels that differ: {float((full != draft).mean() * 100):.1f}%, "
          f"mean |Δ| {float(np.abs(full.astype(np.int16) - draft.astype(np.int16)).mean()):.2f} of 255")
    print(f"top-1 agreement draft vs full: {agree:.2f}%, largest probability difference "
          f"{float(np.abs(p_full - p_draft).max()):.4f}")
    print(f"accuracy: full {float((p_full.argmax(1) == truth).mean() * 100):.2f}%, "
          f"draft {float((p_draft.argmax(1) == truth).mean() * 100):.2f}%")


if __name__ == "__main__":
    main()
