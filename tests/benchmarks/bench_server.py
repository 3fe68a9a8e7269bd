"""Web server throughput and latency under load: N clients x M requests of real photos.

Starts ``python -m edge_runner serve`` in a subprocess (as it runs on a device)
once per configuration ``INTERPRETERSxTHREADS`` and drives it from client
threads in this process, each on its own keep-alive connection posting raw
photo bytes to ``/api/classify``. Prints requests/s and p50/p95/p99 latency per
configuration, against a baseline measured in the same run: the same photos
preprocessed and classified in-process, one after the other, with no HTTP.

    /work/venv/bin/python tests/benchmarks/bench_server.py --model models/cats_dogs_int8.tflite
    /work/venv/bin/python tests/benchmarks/bench_server.py --configs 2x1,1x2,1x1 --clients 8 --requests 50 --rounds 3

The clients share the machine's cores with the server, as a phone's browser
would not: on a 2-core box the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner.common.console import UsageError  # noqa: E402
from edge_runner.core.image import find_images, preprocess  # noqa: E402
from edge_runner.core.loading import resolve_model  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402

SHARED_PHOTOS = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared")) / "data" / "cats_and_dogs_filtered" / "validation"


@dataclass(frozen=True)
class LoadResult:
    """One load run. ``cpu_seconds``: the server process's user+system CPU time over the run (NaN if unknown)."""

    label: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray
    cpu_seconds: float = float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000.0 / self.requests if self.requests else float("nan")

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


def load_photos(folder: Path | None, count: int) -> list[tuple[str, bytes]]:
    """``count`` photos (name, bytes): from ``folder`` (recursively), else generated 500x375 JPEGs."""
    if folder is not None and folder.is_dir():
        paths = find_images(folder)
        step = max(1, len(paths) // count)
        chosen = paths[::step][:count]
        if chosen:
            return [(p.name, p.read_bytes()) for p in chosen]
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(375, 500, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        out.append((f"generated_{i}.jpg", buffer.getvalue()))
    return out


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by ``pid`` (all its threads), from /proc; NaN elsewhere.

    Unlike requests/s, this does not depend on what else the machine is running,
    so it compares configurations fairly on a shared box.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, interpreters: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        sys.executable, "-m", "edge_runner", "serve", "--model", str(model), "--port", str(port),
        "--interpreters", str(interpreters), "--threads", str(threads),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not answer /healthz within 60 s")


def drive(port: int, photos: list[tuple[str, bytes]], clients: int, requests: int, label: str) -> LoadResult:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        barrier.wait()
        for i in range(requests):
            name, data = photos[(index * requests + i) % len(photos)]
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/classify", body=data, headers={"Content-Type": "application/octet-stream", "X-Filename": name})
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and "label" in json.loads(body)
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[index].append((time.perf_counter() - start) * 1000.0)
            errors[index] += 0 if ok else 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    flat = np.array([value for per_client in latencies for value in per_client])
    return LoadResult(label, clients * requests, sum(errors), seconds, flat)


def baseline(model: Path, photos: list[tuple[str, bytes]], total: int) -> LoadResult:
    """In-process, sequential: preprocess + classify, no HTTP (one interpreter, one thread)."""
    classifier = Classifier(model, num_threads=1)
    for name, data in photos[:5]:
        classifier.classify(preprocess(data, classifier.spec, name=name).array)
    latencies = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(total):
        name, data = photos[i % len(photos)]
        t0 = time.perf_counter()
        classifier.classify(preprocess(data, classifier.spec, name=name).array)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return LoadResult("in-process, sequential (no HTTP)", total, 0, seconds, np.array(latencies), cpu)


def combine(rounds: list[LoadResult]) -> LoadResult:
    """One result per configuration: the median round's rate, every request's latency."""
    median = sorted(rounds, key=lambda r: r.per_second)[len(rounds) // 2]
    return LoadResult(
        median.label,
        median.requests,
        sum(r.errors for r in rounds),
        median.seconds,
        np.concatenate([r.latencies_ms for r in rounds]),
        float(np.median([r.cpu_seconds for r in rounds])),
    )


def parse_configs(text: str) -> list[tuple[int, int]]:
    configs = []
    for item in text.split(","):
        try:
            interpreters, threads = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"configs are INTERPRETERSxTHREADS separated by commas, received {item!r}") from None
        configs.append((interpreters, threads))
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="the .tflite to serve (default: as `python -m edge_runner`)")
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS, help="a folder of photos (default: the shared validation set, else generated)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of every configuration (default: 1)")
    parser.add_argument("--configs", type=parse_configs, default=parse_configs("2x1,1x2,1x1"), help="INTERPRETERSxTHREADS,... (default: 2x1,1x2,1x1)")
    args = parser.parse_args(argv)
    try:
        model = resolve_model(args.model)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    photos = load_photos(args.photos, 40)
    total = args.clients * args.requests
    print(f"model {model} ({model.stat().st_size / 1e6:.1f} MB); {len(photos)} photos, mean {np.mean([len(d) for _, d in photos]) / 1024:.0f} KB; "
          f"{args.clients} clients x {args.requests} requests; {os.cpu_count()} CPUs")
    runs: dict[str, list[LoadResult]] = {}
    # Rounds interleave the configurations, so a neighbour's load drifting over
    # the run does not favour whichever configuration ran in the quiet moment.
    for _ in range(args.rounds):
        runs.setdefault("base", []).append(baseline(model, photos, min(total, 200)))
        for interpreters, threads in args.configs:
            label = f"server {interpreters} interpreter(s) x {threads} thread(s)"
            process, port = start_server(model, interpreters, threads)
            try:
                drive(port, photos, args.clients, 5, "warm-up")
                cpu_before = process_cpu_seconds(process.pid)
                result = drive(port, photos, args.clients, args.requests, label)
                cpu = process_cpu_seconds(process.pid) - cpu_before
                runs.setdefault(label, []).append(
                    LoadResult(result.label, result.requests, result.errors, result.seconds, result.latencies_ms, cpu)
                )
            finally:
                process.terminate()
                process.wait(30)
    results = [combine(r) for r in runs.values()]
    base = results[0].per_second
    if args.rounds > 1:
        print(f"{args.rounds} interleaved rounds: req/s is the median round, latencies pool every request")
    print(f"{'configuration':44s} {'req/s':>7s} {'x base':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'CPU ms/req':>10s} {'errors':>6s}")
    for result in results:
        print(
            f"{result.label:44s} {result.per_second:7.1f} {result.per_second / base:7.2f} {result.percentile(50):8.1f} "
            f"{result.percentile(95):8.1f} {result.percentile(99):8.1f} {result.cpu_ms_per_request:10.2f} {result.errors:6d}"
        )
    print("CPU ms/req: the server process's CPU time per request (the baseline's: this process's); "
          "it does not depend on other load on the machine, req/s and latencies do.")
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
