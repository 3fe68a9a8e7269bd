"""Benchmark: what caching the frozen backbone saves in each training phase.

Measures, on real photos, per epoch and per photo:

* head phase, naive: every step runs the whole frozen backbone (baseline);
* head phase, cached: the backbone's pooled features are computed once, then
  each epoch only runs the head (``train`` does this);
* fine-tuning, full mode: every step runs the whole network with fresh
  augmentation and back-propagates through the top block (``--fine-tune-mode full``);
* fine-tuning, cached mode: the activations below the top block are computed
  once per view, each epoch runs only the top block (``--fine-tune-mode cached``, default);

and prints the ratios against the baselines measured in the same run.

    python tests/benchmarks/bench_train.py --data ../shared/data/cats_and_dogs_filtered/train \\
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --limit 256

Not collected by pytest. Timings include whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edge_runner.common.native_log import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()

import numpy as np  # noqa: E402

from edge_runner.core.spec import InputSpec  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data.folders import find_candidates
from train.data.split import split_samples  # noqa: E402
from train.data.pixels import decode_photos  # noqa: E402


def timed(label: str, fn, count: int, repeats: int = 2) -> float:
    """The best of ``repeats`` runs of ``fn`` (the machine is shared; the minimum is the least disturbed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    seconds = min(times)
    print(f"{label:<58s} {seconds:8.2f} s  {seconds / count * 1000:8.2f} ms/photo")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=256, help="photos to use")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fine-tune-layers", type=int, default=TrainConfig(data="", out="").fine_tune_layers)
    args = parser.parse_args(argv)

    import keras

    from train.model import features
    from train.model.network import build_network, compile_for_training

    candidates = find_candidates(args.data)
    split = split_samples(candidates, {}, validation_fraction=0.2, seed=0)
    rng = np.random.default_rng(0)
    samples = [split.train[i] for i in rng.permutation(len(split.train))[: args.limit]]
    spec = InputSpec(labels=split.labels, height=args.image_size, width=args.image_size)
    decoded = decode_photos([s.path for s in samples], spec, cache_dir=None, progress=False)
    n = len(samples)
    labels = np.array([split.labels.index(s.label) for s in samples], dtype=np.int32)
    pixels = np.asarray(decoded.array, dtype=np.float32)
    rows = np.arange(n)
    print(f"{n} photos at {args.image_size} px, batch {args.batch_size}, {os.cpu_count()} CPUs, keras {keras.__version__}")

    config = TrainConfig(data=args.data, out="unused", image_size=args.image_size, weights=args.weights,
                         fine_tune_layers=args.fine_tune_layers, batch_size=args.batch_size)
    keras.utils.set_random_seed(0)
    net = build_network(config, len(split.labels))
    print(f"fine-tuned: top {net.fine_tuned_layers} layers above {net.cut_name}; cached activation {net.cut_shape}")

    def fit(model, x):
        model.fit(x, labels[: len(x)], batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)

    # Warm up every model once (tracing is a one-off cost, not an epoch cost).
    frozen = [layer.trainable for layer in net.base.layers]
    for layer in net.base.layers:
        layer.trainable = False
    compile_for_training(net.augmented, 1e-3)
    fit(net.augmented, pixels[: args.batch_size])
    naive_head = timed("head epoch, naive (whole frozen backbone every step)", lambda: fit(net.augmented, pixels), n)
    for layer, flag in zip(net.base.layers, frozen):
        layer.trainable = flag

    activations = {}

    def extract(view: int):
        activations[view] = features.compute_activations(net, decoded.array, rows, view=view, seed=0,
                                                         batch_size=args.batch_size, cache_file=None, desc="", progress=False)

    extract_s = timed("features once: backbone up to the cut, view 0", lambda: extract(0), n)
    pooled = {}
    pool_s = timed("features once: frozen top + pooling", lambda: pooled.update(x=features.pool_activations(
        net, activations[0], batch_size=args.batch_size, desc="", progress=False)), n)
    compile_for_training(net.head, 1e-3)
    fit(net.head, pooled["x"][: args.batch_size])
    cached_head = timed("head epoch, cached features", lambda: fit(net.head, pooled["x"]), n)

    compile_for_training(net.augmented, 1e-5)
    fit(net.augmented, pixels[: args.batch_size])
    full_ft = timed("fine-tune epoch, full (whole network + augmentation)", lambda: fit(net.augmented, pixels), n)
    compile_for_training(net.fine_tune, 1e-5)
    x0 = np.asarray(activations[0], dtype=np.float32)
    fit(net.fine_tune, x0[: args.batch_size])
    cached_ft = timed("fine-tune epoch, cached activations", lambda: fit(net.fine_tune, x0), n)
    view_s = timed("one more cached view (mirror image)", lambda: extract(1), n)

    print()
    print(f"head epoch: cached / naive = {cached_head / naive_head:.3f} "
          f"(one-off features cost {(extract_s + pool_s) / naive_head:.2f} naive epochs)")
    print(f"fine-tune epoch: cached / full = {cached_ft / full_ft:.3f}; "
          f"each extra cached view costs {view_s / full_ft:.2f} full epochs")
    for epochs, views in ((10, 2), (10, 4)):
        cached_total = extract_s + (views - 1) * view_s + epochs * cached_ft
        print(f"  {epochs} fine-tune epochs, {views} views: cached {cached_total:.1f} s vs full {epochs * full_ft:.1f} s "
              f"(ratio {cached_total / (epochs * full_ft):.3f}) for {n} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
