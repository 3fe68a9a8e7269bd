"""Benchmark: what ``--strategy multi-worker`` costs on one machine, and where a step's time goes.

On a 2-core machine two workers cannot beat one; this measures the overhead instead, on the same
photos (a sample of real photos) and the same global batch:

1. whole runs of ``python -m train`` (head + cached fine-tuning, 224 px):
   * one process on both cores, ``--strategy default`` (Keras ``fit``);
   * one worker on both cores, ``--strategy multi-worker`` (the kit's synchronised step, 1 worker);
   * two workers, one core each (``taskset -c 0`` / ``-c 1``), ``--strategy multi-worker``;
   and prints the epoch time (phase seconds / epochs, validation included) and the time per training
   step, with the ratios to the one-process run;
2. the step of the fine-tuning phase split in two, in two worker processes pinned to one core each:
   compute (forward + backward of the top block on the worker's ``B / 2`` cached activations, no
   exchange) and the all-reduce of the gradients (same tensors, over loopback), and the whole step.

    python tests/benchmarks/bench_multiworker.py --data ../shared/data/cats_and_dogs_filtered \\
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --limit 200

Not collected by pytest. Timings include whatever else runs on the machine (the load is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multiworker_helpers import free_ports, tf_config  # noqa: E402


def sample(data: Path, folder: Path, limit: int) -> Path:
    """``folder/{train,validation}/<class>/`` with links to the first ``limit`` (train) and ``limit // 2``
    (validation) photos of each class."""
    for split, count in (("train", limit), ("validation", limit // 2)):
        for label_dir in sorted(p for p in (data / split).iterdir() if p.is_dir()):
            target = folder / split / label_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for photo in sorted(label_dir.glob("*.jpg"))[:count]:
                os.symlink(photo.resolve(), target / photo.name)
    return folder


def run_kit(name: str, argv: list[str], work: Path, cores: list[str], strategy: str) -> dict:
    """One run with ``len(cores)`` processes (``taskset -c CORES`` each); the chief's report figures."""
    ports = free_ports(len(cores))
    out = work / name
    processes = []
    for index, core in enumerate(cores):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        extra = ["--strategy", strategy]
        if strategy == "multi-worker":
            env["TF_CONFIG"] = tf_config(ports, index)
            extra += ["--worker-timeout", "120"]
        command = ["taskset", "-c", core, sys.executable, "-m", "train", *argv, "--out", str(out),
                   "--cache-dir", str(work / f"cache-{name}-{index}"), *extra]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{name}: a process failed ({process.returncode}): {err.strip()[-400:]}")
    report = json.loads((out / "report.json").read_text())
    stats = json.loads((out / "distributed.json").read_text()) if (out / "distributed.json").is_file() else None
    row = {"name": name, "accuracy": report["validation"]["accuracy"], "total_s": report["elapsed_s"]}
    for phase in ("head", "fine_tune"):
        summary = report["phases"][phase]
        row[f"{phase}_epoch_s"] = summary["seconds"] / max(1, summary["epochs_run"])
        if stats:  # the slowest worker's mean step (every step waits for the slowest)
            row[f"{phase}_step_ms"] = max(1000 * w["step_s"][phase] / max(1, w["steps"][phase]) for w in stats["per_worker"])
    if stats:
        row["workers"] = [(round(1000 * w["step_s"]["fine_tune"] / max(1, w["steps"]["fine_tune"])), round(w["validate_s"], 1))
                          for w in stats["per_worker"]]
    return row


def step_worker(args: argparse.Namespace) -> int:
    """One worker of part 2: build the fine-tuning model, time compute, all-reduce and the whole step."""
    from train.fitting.cluster import join, parse_tf_config

    spec = parse_tf_config(os.environ.get("TF_CONFIG"))
    cluster = join(spec, 120)
    import keras
    import numpy as np
    import tensorflow as tf

    from train.config import TrainConfig
    from train.model.network import build_network, compile_for_training

    config = TrainConfig(data="", out="", weights=args.weights, image_size=args.image_size)
    network = build_network(config, 2)
    model = network.fine_tune
    compile_for_training(model, 1e-5)
    variables = model.trainable_variables
    model.optimizer.build(variables)
    batch = args.batch_size // spec.num_workers
    rng = np.random.default_rng(spec.index)
    x = tf.constant(rng.normal(size=(batch, *network.cut_shape)).astype(np.float32))
    y = tf.constant(rng.integers(0, 2, size=batch).astype(np.int32))
    grads_like = [tf.constant(np.ones(v.shape, dtype=np.float32)) for v in variables]
    sum_op = tf.distribute.ReduceOp.SUM

    def gradients(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))) / args.batch_size
        return tape.gradient(loss, variables)

    compute = tf.function(gradients)
    exchange = tf.function(lambda: cluster.strategy.run(
        lambda: tf.distribute.get_replica_context().all_reduce(sum_op, [tf.identity(g) for g in grads_like])))

    @tf.function
    def step(x, y):
        reduced = cluster.strategy.run(
            lambda x, y: tf.distribute.get_replica_context().all_reduce(sum_op, gradients(x, y)), args=(x, y))
        model.optimizer.apply(reduced, variables)

    def run(fn) -> None:
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())

    parts = {"compute_ms": lambda: compute(x, y), "allreduce_ms": exchange, "step_ms": lambda: step(x, y)}
    for fn in parts.values():
        for _ in range(3):
            run(fn)
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.repeats):  # interleaved, so a burst of other jobs' load hits all three alike
        for name, fn in parts.items():
            cluster.all_sum(np.zeros(1))  # a barrier: both workers start each measurement together
            start = time.perf_counter()
            run(fn)
            times[name].append(time.perf_counter() - start)
    figures = {name: float(np.median(values)) * 1000 for name, values in times.items()}
    figures.update(gradient_mb=sum(int(np.prod(v.shape)) for v in variables) * 4 / 1e6, tensors=len(variables),
                   per_worker_batch=batch)
    Path(args.result).write_text(json.dumps(figures))
    return 0


def step_split(args: argparse.Namespace, work: Path) -> list[dict]:
    ports, processes = free_ports(2), []
    for index, core in enumerate(("0", "1")):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": tf_config(ports, index)}
        command = ["taskset", "-c", core, sys.executable, __file__, "--step-worker", "--result", str(work / f"step{index}.json"),
                   "--weights", args.weights, "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
                   "--repeats", str(args.repeats)]
        processes.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"step worker failed: {err.strip()[-400:]}")
    return [json.loads((work / f"step{index}.json").read_text()) for index in (0, 1)]


def cpu_flags() -> str:
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "fma")
    return ", ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a folder with train/ and validation/ class folders")
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=200, help="training photos per class (validation: half)")
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--epochs", type=int, default=2, help="head and fine-tuning epochs")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps in part 2")
    parser.add_argument("--step-only", action="store_true", help="part 2 only")
    parser.add_argument("--step-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step_worker:
        return step_worker(args)
    print(f"cores: {os.cpu_count()}; CPU flags: {cpu_flags()}; load average at start: {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="bench-multiworker-"))
    try:
        if not args.step_only:
            data = sample(Path(args.data), work / "data", args.limit)
            kit = ["--data", str(data), "--weights", args.weights, "--image-size", str(args.image_size), "--epochs",
                   str(args.epochs), "--fine-tune-epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--patience", "10", "--quiet"]
            rows = [run_kit("1 process, 2 cores, default", kit, work, ["0,1"], "default"),
                    run_kit("1 worker, 2 cores, multi-worker", kit, work, ["0,1"], "multi-worker"),
                    run_kit("2 workers, 1 core each", kit, work, ["0", "1"], "multi-worker")]
            base = rows[0]
            print(f"\n{2 * args.limit} training and {args.limit} validation photos, {args.image_size} px, global batch "
                  f"{args.batch_size}, {args.epochs} + {args.epochs} epochs")
            print(f"{'run':<34s} {'head s/ep':>9s} {'tune s/ep':>9s} {'x default':>9s} {'tune ms/step':>12s} {'acc %':>6s} "
                  f"{'total s':>8s}")
            for row in rows:
                step = f"{row['fine_tune_step_ms']:.0f}" if "fine_tune_step_ms" in row else "-"
                print(f"{row['name']:<34s} {row['head_epoch_s']:9.2f} {row['fine_tune_epoch_s']:9.2f} "
                      f"{row['fine_tune_epoch_s'] / base['fine_tune_epoch_s']:9.2f} {step:>12s} "
                      f"{100 * row['accuracy']:6.2f} {row['total_s']:8.1f}")
            print("per worker (fine-tuning ms/step, validation s): " + "; ".join(f"{r['name']}: {r['workers']}" for r in rows[1:]))
            print(f"overhead, fine-tuning epoch: 2 workers x 1 core / 1 worker x 2 cores = "
                  f"{rows[2]['fine_tune_epoch_s'] / rows[1]['fine_tune_epoch_s']:.2f}")
        split = step_split(args, work)
        print(f"\nfine-tuning step, 2 workers x 1 core, per-worker batch {split[0]['per_worker_batch']}, gradients "
              f"{split[0]['gradient_mb']:.1f} MB in {split[0]['tensors']} tensors (median of {args.repeats}, interleaved):")
        for index, figures in enumerate(split):
            share = figures["allreduce_ms"] / figures["step_ms"]
            print(f"  worker {index}: compute {figures['compute_ms']:.1f} ms, all-reduce {figures['allreduce_ms']:.1f} ms, "
                  f"whole step {figures['step_ms']:.1f} ms (all-reduce {100 * share:.0f}% of the step; "
                  f"{figures['gradient_mb'] * 8 / max(figures['allreduce_ms'], 1e-6):.2f} Gbit/s effective)")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
