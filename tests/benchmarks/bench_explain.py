"""Explanations: what an occlusion map costs, and whether the maps are faithful and agree.

    python tests/benchmarks/bench_explain.py [--run RUN] [-n 100] [--grids 4,7,10,14]

1. Cost of one occlusion map with the shipped int8 model (ms, median of --repeats),
   one at a time and batched, at each grid, and as a multiple of one classification.
2. Deletion check on N validation photos (half cats, half dogs): greying the map's top
   20% vs a random 20% (seeded); share of photos where the map's deletion hurt more, and
   mean drops of the logit margin and of the probability. Occlusion with the shipped
   int8 model; with ``--run`` (a ``python -m train`` output) Grad-CAM on its Keras model,
   and occlusion on the same model converted to float32 TFLite, for a like-for-like comparison.
3. Agreement of Grad-CAM and occlusion (same model, 7x7): same hottest cell, hottest cells
   at most one cell apart, IoU of their top-20% regions; and the chance level of each
   (the maps of *different* photos paired).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from edge_runner.common.native_log import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()
from edge_runner.explain.deletion import deletion_check, same_peak_cell, summarize, top_region_iou  # noqa: E402
from edge_runner.core.image import find_images, preprocess  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.explain.occlusion import Occluder  # noqa: E402

SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "cats_dogs_int8.tflite")
    parser.add_argument("--run", type=Path, default=None, help="a training run (model.keras + contract.json) for Grad-CAM")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cats_and_dogs_filtered" / "validation")
    parser.add_argument("-n", type=int, default=100, help="validation photos for the deletion check (default %(default)s)")
    parser.add_argument("--grids", default="4,7,10,14", help="grid sizes to time (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed maps per setting (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cost-only", action="store_true", help="only part 1 (the cost of one map)")
    return parser.parse_args(argv)


def pick_photos(data: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    classes = sorted(p for p in data.iterdir() if p.is_dir())
    chosen = []
    for folder in classes:
        files = find_images(folder)
        chosen += [files[i] for i in sorted(rng.choice(len(files), size=min(len(files), count // len(classes)), replace=False))]
    return chosen


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cost(model: Path, photo: Path, grids: list[int], repeats: int) -> None:
    classifier = Classifier(model, num_threads=1)
    pixels = preprocess(photo, classifier.spec).array
    single = median_ms(lambda: classifier.probabilities(pixels), repeats * 10)
    one_at_a_time, batched = Occluder(classifier), Occluder(classifier, batch_size=8)
    print(f"\n## cost of one occlusion map ({model.name}, 1 thread, patch 2 cells, median of {repeats})")
    print(f"one classification: {single:.2f} ms")
    print("grid   inferences   ms (batch 1)   ms (batch 8)   batch8/batch1   map / one classification")
    for grid in grids:
        a = median_ms(lambda: one_at_a_time.explain(pixels, grid=grid), repeats)
        b = median_ms(lambda: batched.explain(pixels, grid=grid), repeats) if batched.batch_size == 8 else float("nan")
        print(f"{grid:>2}x{grid:<2} {grid * grid + 1:>12} {a:>14.1f} {b:>14.1f} {b / a:>15.2f} {a / single:>26.1f}")
    print("(inferences: one per grid cell, plus the photo itself)")


def deletion(name: str, explain, margins, probabilities, photos: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Run the deletion check with both scores; return the maps."""
    maps = [explain(p) for p in photos]
    for label, scores in (("logit margin", margins), ("probability", probabilities)):
        rng = np.random.default_rng(seed)
        summary = summarize([deletion_check(scores, p, m, rng=rng) for p, m in zip(photos, maps)])
        print(summary.line(f"{name:<34} [{label}]"))
    return maps


def agreement(name: str, first: list[np.ndarray], second: list[np.ndarray], size: tuple[int, int]) -> None:
    def measure(a, b):
        peaks = [same_peak_cell(x, y, 7) for x, y in zip(a, b)]
        near = []
        for x, y in zip(a, b):
            px, py = np.unravel_index(np.argmax(x), x.shape), np.unravel_index(np.argmax(y), y.shape)
            near.append(max(abs(px[0] - py[0]), abs(px[1] - py[1])) <= 1)
        ious = [top_region_iou(x, y, size) for x, y in zip(a, b)]
        return np.mean(peaks), np.mean(near), np.mean(ious), np.mean(np.array(ious) >= 0.5)

    same = measure(first, second)
    chance = measure(first, second[1:] + second[:1])  # each map against another photo's
    print(f"{name}: same hottest cell {same[0] * 100:.1f}% (chance {chance[0] * 100:.1f}%), within one cell "
          f"{same[1] * 100:.1f}% (chance {chance[1] * 100:.1f}%), top-20% IoU mean {same[2]:.3f} "
          f"(chance {chance[2]:.3f}), IoU >= 0.5 on {same[3] * 100:.1f}% (chance {chance[3] * 100:.1f}%)")


def float_tflite(model, spec, folder: Path) -> Path:
    import tensorflow as tf

    from edge_runner.core.spec import contract_path_for

    path = folder / "run_float32.tflite"
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the converter prints every captured variable to stdout
    try:
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    spec.save(contract_path_for(path))
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"bench_explain: error: --data {args.data}: not a directory (set EDGEKIT_SHARED)", file=sys.stderr)
        return 2
    photos = pick_photos(args.data, max(2, args.n), args.seed)
    cost(args.model, photos[0], [int(g) for g in args.grids.split(",")], args.repeats)
    if args.cost_only:
        return 0

    classifier = Classifier(args.model, num_threads=1)
    occluder = Occluder(classifier)
    pixels = [preprocess(p, classifier.spec).array for p in photos]
    print(f"\n## deletion check: grey the map's top 20% vs a random 20% (seed {args.seed}), {len(photos)} photos")
    shipped = deletion(f"occlusion 7x7, {args.model.name}", lambda p: occluder.explain(p).grid, occluder.scores,
             occluder.probabilities, pixels, args.seed)
    if args.run is None:
        print("(no --run: Grad-CAM and the agreement need a training run's model.keras)")
        return 0

    import warnings

    import keras

    from edge_runner.core.spec import InputSpec

    warnings.filterwarnings("ignore", message="The structure of `inputs`")  # Keras, about a plain array input
    from train.explanations.gradcam import GradCamExplainer

    model = keras.saving.load_model(args.run / "model.keras")
    spec = InputSpec.load(args.run / "contract.json")
    explainer = GradCamExplainer(model)
    run_pixels = [preprocess(p, spec).array for p in photos]
    start = time.perf_counter()
    cams = deletion(f"Grad-CAM {explainer.feature.shape[0]}x{explainer.feature.shape[1]}, {args.run.name}/model.keras",
                    lambda p: explainer.explain(p).grid, explainer.scores,
                    lambda images: np.asarray(model(np.asarray(images, dtype=np.float32), training=False)), run_pixels, args.seed)
    gradcam_ms = (time.perf_counter() - start) * 1000 / len(photos)
    with tempfile.TemporaryDirectory() as folder:
        run_occluder = Occluder(Classifier(float_tflite(model, spec, Path(folder)), num_threads=1))
        occlusions = deletion(f"occlusion 7x7, {args.run.name} as float32", lambda p: run_occluder.explain(p).grid,
                              run_occluder.scores, run_occluder.probabilities, run_pixels, args.seed)
    print(f"(Grad-CAM map + its deletion check: {gradcam_ms:.0f} ms per photo with Keras)")
    print(f"\n## agreement of Grad-CAM and occlusion (7x7 maps, {len(photos)} photos)")
    agreement(f"same model ({args.run.name})", cams, occlusions, spec.size)
    agreement(f"Grad-CAM ({args.run.name}) vs occlusion ({args.model.name})", cams, shipped, spec.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
