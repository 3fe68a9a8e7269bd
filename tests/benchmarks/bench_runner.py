"""Benchmark the runner (`python -m edge_runner`) against baselines measured in the same run.

    /work/venv/bin/python tests/benchmarks/bench_runner.py [--photos 300] [--cache DIR] [--repeats 5]

With a MobileNetV2-1.0-224 full-int8 model (built once by ``make_bench_model.py``
into ``--cache``; ImageNet backbone weights when ``../shared`` has them, random
otherwise: speed does not depend on them) over ``--photos`` JPEGs (the shared
``cats_and_dogs_filtered`` validation photos when present, else generated
500x375 JPEGs), prints:

- cold start: spawn → first result line of ``python -m edge_runner PHOTO --model M``,
  next to a bare script that imports numpy, Pillow and ai_edge_litert and
  classifies one photo (median of ``--repeats``, after a warm-up run each);
- end-to-end throughput (process spawn → exit, all photos) of the runner with its
  defaults vs a naive loop (decode, resize, invoke, one at a time, 1 thread,
  also a fresh process) and vs Keras ``model.predict`` per image on the float
  model (decode, resize, predict; TensorFlow's import and the first predict are
  *not* counted, which flatters Keras), as ratios;
- peak RSS of each process (its own VmHWM on Linux: a child's ru_maxrss would also count
  the pages of the benchmark process it was forked from).

Children cache bytecode under ``--cache`` even when ``PYTHONDONTWRITEBYTECODE`` is
set, as an installed runner would. On a shared machine, give the benchmark the
CPUs, e.g. run it in its own session with a raised priority, or the ratios
measure the neighbours; the load average is printed first.

The issue's targets are printed beside the figures; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner.cli.benchmark import ChildRun, child_env, run_python  # noqa: E402
from edge_runner.common.native_log import quiet_tensorflow_logs  # noqa: E402

SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))
SHARED_PHOTOS = SHARED / "data" / "cats_and_dogs_filtered" / "validation"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
SHARED_TRAIN = SHARED / "data" / "cats_and_dogs_filtered" / "train"
DEFAULT_CACHE = Path(os.environ.get("EDGEKIT_BENCH_CACHE", Path.home() / ".cache" / "edgekit" / "bench_runner"))

TARGETS = {"cold_start_s": 0.25, "vs_naive": 1.5, "vs_keras": 20.0, "peak_rss_mb": 80.0}

# The baselines with nothing of the runner: numpy, Pillow and ai_edge_litert, one photo at a time.
# ``bare`` (cold start) classifies one photo with LiteRT's default threads; ``naive``
# (throughput) all photos with 1 thread.
LITERT_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from PIL import Image
    from ai_edge_litert.interpreter import Interpreter

    model, threads, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
    interpreter = Interpreter(model_path=model, num_threads=None if threads == "default" else int(threads))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    height, width = inp["shape"][1:3]
    for photo in photos:
        pixels = np.asarray(Image.open(photo).convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.uint8)
        interpreter.set_tensor(inp["index"], pixels[np.newaxis].astype(inp["dtype"]))
        interpreter.invoke()
        scores = interpreter.get_tensor(out["index"])[0]
        print(photo, int(np.argmax(scores)), flush=True)
    """
)

KERAS_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from PIL import Image
    import keras

    model_path, listing, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = keras.models.load_model(model_path)
    height, width = model.input_shape[1:3]
    photos = open(listing).read().splitlines()[:count]
    def load(photo):
        return np.asarray(Image.open(photo).convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32)
    model.predict(load(photos[0])[np.newaxis], verbose=0)  # build/trace once, not counted
    start = time.perf_counter()
    for photo in photos:
        model.predict(load(photo)[np.newaxis], verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(photos), "seconds": seconds}), flush=True)
    """
)


CHILD_ENV: dict[str, str] = {}


def bytecode_env(cache: Path) -> dict[str, str]:
    """Children cache their bytecode under ``cache/pycache`` (outside the repo), as an installed package would.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some CI shells) every run would
    recompile edge_runner's modules, which no installed runner does.
    """
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    return quiet_tensorflow_logs(env)


def run_process(args: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """``python ARGS`` to completion (see ``edge_runner.cli.benchmark.run_python``); raises if it fails."""
    run = run_python(args, env=env or CHILD_ENV or None)
    if run.returncode != 0:
        raise RuntimeError(f"python {' '.join(args[:3])} ... failed ({run.returncode}): {run.stderr[-2000:]}")
    return run


def ensure_models(cache: Path) -> dict[str, Path]:
    models = cache / "models"
    command = [sys.executable, str(Path(__file__).with_name("make_bench_model.py")), "--out", str(models)]
    if SHARED_WEIGHTS.is_file():
        command += ["--weights", str(SHARED_WEIGHTS)]
    if SHARED_TRAIN.is_dir():
        command += ["--photos", str(SHARED_TRAIN)]
    names = {"keras": "mobilenet_v2_224.keras", "int8": "mobilenet_v2_224_int8.tflite", "float32": "mobilenet_v2_224_float32.tflite"}
    paths = {kind: models / name for kind, name in names.items()}
    if not all(p.is_file() for p in paths.values()):
        print(f"building the benchmark models into {models} (TensorFlow, ~1 min) ...", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return paths


def ensure_photos(cache: Path, count: int) -> tuple[list[Path], str]:
    if SHARED_PHOTOS.is_dir():
        cats = sorted((SHARED_PHOTOS / "cats").glob("*.jpg"))
        dogs = sorted((SHARED_PHOTOS / "dogs").glob("*.jpg"))
        mixed = [p for pair in zip(cats, dogs) for p in pair][:count]
        if len(mixed) == count:
            return mixed, f"{count} real photos from {SHARED_PHOTOS}"
    import numpy as np
    from PIL import Image

    folder = cache / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:04d}.jpg"
        if not path.is_file():
            # Smooth gradients plus blotches and mild noise: compresses like a photo (~40 KB), unlike pure noise.
            y, x = np.mgrid[0:375, 0:500]
            base = np.stack([(x * (i % 7 + 1)) % 256, (y * (i % 5 + 1)) % 256, (x + y + 37 * i) % 256], -1).astype(np.int16)
            noisy = np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy, "RGB").save(path, quality=85)
        paths.append(path)
    return paths, f"{count} generated 500x375 JPEGs in {folder}"


def steady_state(model: str, photos: list[Path], extra: list[str], repeats: int) -> tuple[float, float]:
    """Images/s of the runner's pipeline (``classify_paths``, runner defaults) and of the naive loop, in this process."""
    import numpy as np
    from PIL import Image

    from edge_runner.cli.batch import classify_paths
    from edge_runner.cli.runner import build_parser
    from edge_runner.core.model import Classifier

    defaults = build_parser().parse_args(["x", *extra])
    runner = Classifier(model, num_threads=defaults.threads)
    naive = Classifier(model, num_threads=1)
    paths = [str(p) for p in photos]
    size = naive.spec.size

    def naive_loop() -> None:
        for path in paths:
            naive.probabilities(np.asarray(Image.open(path).convert("RGB").resize(size, Image.BILINEAR), dtype=np.uint8))

    def runner_loop() -> None:
        for result in classify_paths(runner, paths, top_k=1, workers=defaults.workers):
            assert result.ok, result.error

    times: dict[str, list[float]] = {"runner": [], "naive": []}
    for _ in range(max(1, repeats // 2 + 1)):
        for name, loop in (("runner", runner_loop), ("naive", naive_loop)):
            start = time.perf_counter()
            loop()
            times[name].append(time.perf_counter() - start)
    return len(paths) / statistics.median(times["runner"]), len(paths) / statistics.median(times["naive"])


def median_first_line(args: list[str], repeats: int) -> tuple[float, float]:
    """Median seconds to the first output line and max peak RSS over ``repeats`` runs (plus one warm-up)."""
    times, peaks = [], []
    for i in range(repeats + 1):
        run = run_process(args)
        if i:
            times.append(run.first_line_s)
            peaks.append(run.peak_rss_mb)
    return statistics.median(times), max(peaks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=300, help="how many photos to classify (default 300)")
    parser.add_argument("--keras-photos", type=int, default=50, help="photos for the slow Keras baseline (default 50)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the median is reported")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"models and generated photos (default {DEFAULT_CACHE})")
    parser.add_argument("--runner-args", default="", help="extra arguments for the runner, e.g. '--threads 2'")
    args = parser.parse_args(argv)

    args.cache.mkdir(parents=True, exist_ok=True)
    CHILD_ENV.update(bytecode_env(args.cache))
    models = ensure_models(args.cache)
    photos, described = ensure_photos(args.cache, args.photos)
    listing = args.cache / "photos.txt"
    listing.write_text("".join(f"{p}\n" for p in photos))
    scripts = {}
    for name, text in (("litert", LITERT_SCRIPT), ("keras", KERAS_SCRIPT)):
        scripts[name] = args.cache / f"{name}_baseline.py"
        scripts[name].write_text(text)
    model = str(models["int8"])
    extra = args.runner_args.split()

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    print(f"model: {model} ({Path(model).stat().st_size / 1e6:.1f} MB); photos: {described}")
    print()

    # Cold start: the runner and the bare script, interleaved so load changes hit both.
    runner_one = ["-m", "edge_runner", str(photos[0]), "--model", model, *extra]
    bare_one = [str(scripts["litert"]), model, "default", str(photos[0])]
    runner_cold, runner_cold_rss = median_first_line(runner_one, args.repeats)
    bare_cold, bare_cold_rss = median_first_line(bare_one, args.repeats)

    # Throughput: whole processes, spawn -> exit; median of `repeats`, interleaved.
    runner_all = ["-m", "edge_runner", *map(str, photos), "--model", model, *extra]
    naive_all = [str(scripts["litert"]), model, "1", *map(str, photos)]
    runner_runs, naive_runs = [], []
    for _ in range(max(1, args.repeats // 2 + 1)):
        runner_runs.append(run_process(runner_all))
        naive_runs.append(run_process(naive_all))
    for run in runner_runs + naive_runs:
        if len(run.stdout.splitlines()) != len(photos):
            raise RuntimeError(f"expected {len(photos)} result lines, got {len(run.stdout.splitlines())}")
    runner_s = statistics.median(r.total_s for r in runner_runs)
    naive_s = statistics.median(r.total_s for r in naive_runs)
    runner_ips, naive_ips = len(photos) / runner_s, len(photos) / naive_s

    # The same comparison inside one warm process (no start-up cost on either side).
    steady_runner, steady_naive = steady_state(model, photos, extra, args.repeats)

    keras_run = run_process([str(scripts["keras"]), str(models["keras"]), str(listing), str(args.keras_photos)])
    keras = json.loads(keras_run.stdout.strip().splitlines()[-1])
    keras_ips = keras["images"] / keras["seconds"]

    runner_rss = max(r.peak_rss_mb for r in runner_runs)
    naive_rss = max(r.peak_rss_mb for r in naive_runs)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"{'measurement':<52} {'value':>12}  target")
    print(f"{'cold start, runner (spawn -> first result)':<52} {runner_cold:>10.3f} s  <= {TARGETS['cold_start_s']} s  {verdict(runner_cold <= TARGETS['cold_start_s'])}")
    print(f"{'cold start, bare numpy+Pillow+litert script':<52} {bare_cold:>10.3f} s  (ratio runner/bare {runner_cold / bare_cold:.2f})")
    print(f"{'throughput, runner (end to end, default settings)':<52} {runner_ips:>8.1f} img/s  ({len(photos)} photos in {runner_s:.2f} s)")
    print(f"{'throughput, naive loop (1 thread, same process cost)':<52} {naive_ips:>8.1f} img/s  ({len(photos)} photos in {naive_s:.2f} s)")
    print(f"{'throughput, Keras predict per image (float)':<52} {keras_ips:>8.1f} img/s  ({keras['images']} photos in {keras['seconds']:.2f} s)")
    print(f"{'steady state in one process: runner / naive':<52} {steady_runner / steady_naive:>11.2f}x  ({steady_runner:.1f} vs {steady_naive:.1f} img/s)")
    print(f"{'runner / naive':<52} {runner_ips / naive_ips:>11.2f}x  >= {TARGETS['vs_naive']}x  {verdict(runner_ips / naive_ips >= TARGETS['vs_naive'])}")
    print(f"{'runner / Keras predict':<52} {runner_ips / keras_ips:>11.1f}x  >= {TARGETS['vs_keras']}x  {verdict(runner_ips / keras_ips >= TARGETS['vs_keras'])}")
    print(f"{'peak RSS, runner over all photos':<52} {runner_rss:>9.1f} MiB  <= {TARGETS['peak_rss_mb']} MB  {verdict(runner_rss <= TARGETS['peak_rss_mb'])}")
    print(f"{'peak RSS, runner classifying one photo':<52} {runner_cold_rss:>9.1f} MiB")
    print(f"{'peak RSS, bare script (one photo)':<52} {bare_cold_rss:>9.1f} MiB")
    print(f"{'peak RSS, naive loop over all photos':<52} {naive_rss:>9.1f} MiB")
    print(f"{'peak RSS, Keras baseline':<52} {keras_run.peak_rss_mb:>9.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
