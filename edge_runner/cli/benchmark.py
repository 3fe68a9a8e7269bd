"""``--benchmark``: how fast one model runs here, and what it costs to start.

Measures, for the loaded model:

- interpreter latency (quantise → invoke → dequantise, one preprocessed photo)
  as p50/p90/p99 at 1, 2 and 4 threads (:mod:`edge_runner.common.timing`);
- cold start: wall time from spawning ``python -m edge_runner PHOTO --model M``
  to its first result line, i.e. interpreter start, imports, model load, decode
  and inference, as a user sees it;
- peak memory: the peak resident set size of those runner processes (their
  own ``VmHWM`` on Linux, else ``ru_maxrss``), and of this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common.console import EXIT_FAILED
from ..core.image import preprocess
from ..core.model import Classifier
from ..common.timing import Latency, time_interleaved

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # <repo>/edge_runner/cli/benchmark.py


class BenchmarkError(RuntimeError):
    """A measurement that could not be made (e.g. the runner subprocess failed)."""

    exit_status = EXIT_FAILED


@dataclass(frozen=True)
class ColdStart:
    """Fresh ``python -m edge_runner`` processes classifying one photo.

    Attributes:
        seconds: spawn → first result line, one value per run.
        peak_rss_mb: the largest ``ru_maxrss`` among those processes, in MiB.
    """

    seconds: tuple[float, ...]
    peak_rss_mb: float

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))


@dataclass(frozen=True)
class BenchmarkReport:
    model: str
    runtime: str
    variant: str
    size_bytes: int
    latency: tuple[Latency, ...]
    cold_start: ColdStart | None
    self_peak_rss_mb: float


def rss_mb(maxrss: int) -> float:
    """``ru_maxrss`` → MiB (Linux reports KiB, macOS bytes)."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def self_peak_rss_mb() -> float:
    import resource

    return rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure_latency(
    model_path: str | os.PathLike[str], pixels: np.ndarray, threads: int, *, runs: int = 100, warmup: int = 5
) -> Latency:
    """Time ``runs`` classifications of ``pixels`` (``uint8`` ``(H, W, 3)``) with a fresh ``threads``-thread interpreter."""
    classifier = Classifier(model_path, num_threads=threads)
    (times,) = time_interleaved([lambda: classifier.probabilities(pixels)], runs, warmup)
    return Latency.from_times(times, threads)


def child_env() -> dict[str, str]:
    """The environment for a child runner: this package importable, TF logging quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    return env


# Peak memory of a child: on Linux a child's ru_maxrss also counts the pages of
# the (large) benchmark process it was forked from, so the child reports its own
# VmHWM (peak RSS of the image it exec'd) at exit instead. The wrapper runs the
# module or script exactly as `python -m X` / `python script.py` would.
_PEAK_MARKER = "edge_runner-peak-rss-kib:"
_PEAK_WRAPPER = f"""
import atexit, runpy, sys
def _report_peak():
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('VmHWM:'):
                    sys.stderr.write('{_PEAK_MARKER}' + line.split()[1] + '\\n')
                    sys.stderr.flush()
    except (OSError, ValueError):
        pass
atexit.register(_report_peak)
mode, target, *rest = sys.argv[1:]
sys.argv = [target, *rest]
if mode == '-m':
    runpy.run_module(target, run_name='__main__', alter_sys=True)
else:
    runpy.run_path(target, run_name='__main__')
"""


@dataclass(frozen=True)
class ChildRun:
    """One child process, timed from just before spawning it.

    Attributes:
        first_line_s: seconds until its first stdout line (``None`` if it printed none).
        total_s: seconds until it exited.
        peak_rss_mb: its peak resident set size in MiB.
        returncode, stdout, stderr: as usual (the peak report removed from stderr).
    """

    first_line_s: float | None
    total_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_python(args: Sequence[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``python ARGS`` (``["-m", "module", ...]`` or ``["script.py", ...]``) and measure it.

    The clock starts just before the spawn, so interpreter start-up counts.
    stderr goes to a file, so a chatty child never blocks on a full pipe.
    """
    args = list(args)
    wrapped = sys.platform.startswith("linux") and os.path.exists("/proc/self/status")
    if wrapped:
        mode, rest = (args[:2], args[2:]) if args[0] == "-m" else (["script", args[0]], args[1:])
        command = [sys.executable, "-c", _PEAK_WRAPPER, *mode, *rest]
    else:
        command = [sys.executable, *args]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env if env is not None else child_env())
        assert process.stdout is not None
        first = process.stdout.readline()
        first_line_s = time.perf_counter() - start if first else None
        rest_out = process.stdout.read()
        # wait4: this child's own rusage (the fallback peak where /proc is missing).
        _, status, usage = os.wait4(process.pid, 0)
        total_s = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    peak = rss_mb(usage.ru_maxrss)
    if wrapped:
        kept = []
        for line in stderr.splitlines(keepends=True):
            if line.startswith(_PEAK_MARKER):
                peak = int(line[len(_PEAK_MARKER):]) / 1024
            else:
                kept.append(line)
        stderr = "".join(kept)
    stdout = (first + rest_out).decode("utf-8", "replace")
    return ChildRun(first_line_s, total_s, peak, process.returncode, stdout, stderr)


def measure_cold_start(model_path: str | os.PathLike[str], image_path: str | os.PathLike[str], *, repeats: int = 3) -> ColdStart:
    """Spawn ``python -m edge_runner IMAGE --model MODEL`` ``repeats`` times (after one warm-up for the file cache)."""
    args = ["-m", "edge_runner", str(image_path), "--model", str(model_path)]
    seconds, peaks = [], []
    for i in range(repeats + 1):
        run = run_python(args)
        if run.returncode != 0 or run.first_line_s is None:
            raise BenchmarkError(f"cold start: the runner failed (exit {run.returncode}): {run.stderr.strip()}")
        if i:  # the first run warms the OS file cache; a device that just booted is slower
            seconds.append(run.first_line_s)
            peaks.append(run.peak_rss_mb)
    return ColdStart(tuple(seconds), max(peaks))


def sample_photo(directory: Path, size: tuple[int, int] = (500, 375), seed: int = 0) -> Path:
    """A JPEG of a typical photo's size (smooth gradients plus noise), for when the user gives none."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    pixels = np.clip(base + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
    path = directory / "edge_runner-benchmark.jpg"
    Image.fromarray(pixels, "RGB").save(path, quality=90)
    return path


def run_benchmark(
    model_path: str | os.PathLike[str],
    *,
    image: str | os.PathLike[str] | None = None,
    threads: Sequence[int] = (1, 2, 4),
    runs: int = 100,
    cold_repeats: int = 3,
) -> BenchmarkReport:
    """Measure latency at each thread count, cold start and peak memory for one model."""
    classifier = Classifier(model_path, num_threads=1)
    with tempfile.TemporaryDirectory(prefix="edge_runner-bench-") as tmp:
        photo = Path(image) if image is not None else sample_photo(Path(tmp))
        pixels = preprocess(photo, classifier.spec).array
        latency = tuple(measure_latency(model_path, pixels, t, runs=runs) for t in threads)
        cold = measure_cold_start(model_path, photo, repeats=cold_repeats) if cold_repeats > 0 else None
    return BenchmarkReport(
        model=str(model_path),
        runtime=f"{classifier.runtime.name} {classifier.runtime.version}",
        variant=classifier.variant,
        size_bytes=classifier.size_bytes,
        latency=latency,
        cold_start=cold,
        self_peak_rss_mb=self_peak_rss_mb(),
    )


def format_report(report: BenchmarkReport) -> str:
    """A small plain-text table."""
    lines = [
        f"model: {report.model} ({report.variant}, {report.size_bytes / 1e6:.2f} MB)",
        f"runtime: {report.runtime}; CPUs: {os.cpu_count()}",
        "",
        f"{'threads':>7}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  {'mean ms':>8}  {'runs':>5}",
    ]
    for row in report.latency:
        lines.append(
            f"{row.threads:>7}  {row.p50_ms:>8.2f}  {row.p90_ms:>8.2f}  {row.p99_ms:>8.2f}  {row.mean_ms:>8.2f}  {row.runs:>5}"
        )
    lines.append("")
    if report.cold_start is not None:
        cold = report.cold_start
        lines.append(
            f"cold start (spawn -> first result, median of {len(cold.seconds)}): {cold.median_s:.3f} s  "
            f"[{', '.join(f'{s:.3f}' for s in cold.seconds)}]"
        )
        lines.append(f"peak RSS, runner classifying one photo: {cold.peak_rss_mb:.1f} MiB")
    lines.append(f"peak RSS, this benchmark process: {report.self_peak_rss_mb:.1f} MiB")
    return "\n".join(lines)
