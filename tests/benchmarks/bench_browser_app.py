"""The browser app against the Python runner on the same photos, in headless Chromium on this machine.

    python tests/benchmarks/bench_browser_app.py --model models/cats_dogs_int8.tflite \\
        --photos ../shared/data/cats_and_dogs_filtered/validation ../shared/data/other [--limit 200]

It writes the app for the model (``python -m edge_runner webapp``'s folder), serves it from 127.0.0.1 with a
server that counts what it answers, loads it in Chromium and then, for every photo:

* the runner: ``preprocess`` (Pillow decode, EXIF, resize) + ``Classifier.classify`` on one thread;
* the browser: the page's own ``classifyFile`` (read the file, decode it with the browser: WebCodecs' ImageDecoder
  for a JPEG, finished as libjpeg-turbo does it, else createImageBitmap and a canvas; Pillow's resize in
  JavaScript, LiteRT.js running the model in WebAssembly, relaxed SIMD where the browser has it, one thread), one
  photo at a time, each call timed inside the page from the File to the scores;

alternating by batches of 20 photos, so that both see the same load on the machine.

Prints: top-1 agreement (the label after the contract's threshold, as both show it) with each disagreement
and whether the runner, given the browser's own input pixels, answers as the browser did (then the difference
is in decoding, not in the model); on how many photos the model's input pixels are identical (SHA-256 of every
photo's input) and how far apart they are on the first batch; time per photo and per
inference on both sides and their ratios; the page's weight on first load; the requests the server saw while
the photos were classified. With ``--browser-resize`` it also measures the agreement and the time when the browser
resizes each photo as it decodes it (``createImageBitmap`` with ``resizeWidth``/``resizeHeight``, "high" quality)
instead of the page's Pillow-exact resize. The last line is one JSON object:
``{"photos", "agreement", "browser_ms", "runner_ms", "requests_per_frame", ...}``.

Needs the built app (``make webapp``), Debian's chromium and the ``dev`` extra (Playwright).
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from edge_runner.core.image import find_images, preprocess  # noqa: E402
from edge_runner.core.loading import load_classifier, shipped_model_path  # noqa: E402
from edge_runner.webapp import export_app  # noqa: E402
from webapp_helpers import StaticServer, launch_chromium, open_app  # noqa: E402

BATCH = 20  # photos handed to the page per call

# In the page: classify each picked file with the app's own functions; optionally also with the browser's own
# resize, and the model's input pixels for chosen files (base64 RGB).
CLASSIFY = """async ([wanted, browserResize]) => {
  const app = window.edgekitApp;
  const files = Array.from(document.querySelector('#bench-files').files);
  const out = [];
  for (const file of files) {
    const row = { name: file.name };
    try {
      const result = await app.classifyFile(file);
      Object.assign(row, { label: result.label, score: result.score, timings: result.timings, size: result.size,
        decoder: result.decoder });
      // After the timed call: the model's input pixels again, their SHA-256 for every photo, the pixels themselves
      // for the chosen ones.
      const decoded = await app.decodeFile(file);
      const { fitRgb } = await import('./resample.js');
      const m = app.model;
      const rgb = fitRgb(decoded.pixels, decoded.width, decoded.height, m.width, m.height, m.resize, m.crop, decoded.stride, decoded.bgr);
      row.sha256 = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', rgb)), (b) => b.toString(16).padStart(2, '0')).join('');
      if (wanted.includes(file.name)) {
        let text = '';
        for (let i = 0; i < rgb.length; i += 32768) text += String.fromCharCode.apply(null, rgb.subarray(i, i + 32768));
        row.pixels = btoa(text);
      }
      if (browserResize) {
        // The browser decodes and resizes in one step (its own filter), then the same model and answer.
        const m = app.model;
        const start = performance.now();
        const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', colorSpaceConversion: 'none',
          resizeWidth: m.width, resizeHeight: m.height, resizeQuality: 'high' });
        const canvas = new OffscreenCanvas(m.width, m.height);
        const context = canvas.getContext('2d', { willReadFrequently: true });
        context.fillStyle = '#fff';
        context.fillRect(0, 0, m.width, m.height);
        context.drawImage(bitmap, 0, 0);
        bitmap.close();
        const rgba = context.getImageData(0, 0, m.width, m.height).data;
        const rgb = new Uint8Array(m.width * m.height * 3);
        for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) { rgb[o] = rgba[i]; rgb[o + 1] = rgba[i + 1]; rgb[o + 2] = rgba[i + 2]; }
        row.browser_resize_ms = performance.now() - start;
        row.browser_resize_label = app.answer(await app.engine.scores(rgb), {}).label;
      }
    } catch (error) {
      row.error = error.message;
    }
    out.push(row);
  }
  return out;
}"""

FRAME_LOOP = """async ([data, count]) => {
  // A camera-sized frame (640x480) through the camera path's steps: resize + inference.
  const app = window.edgekitApp;
  const rgb = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const rgba = new Uint8ClampedArray(640 * 480 * 4);
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) { rgba[o] = rgb[i]; rgba[o + 1] = rgb[i + 1]; rgba[o + 2] = rgb[i + 2]; rgba[o + 3] = 255; }
  const times = [], inference = [];
  for (let i = 0; i < count; i++) {
    const timings = {};
    const start = performance.now();
    await app.classifyPixels(rgba, 640, 480, timings);
    times.push(performance.now() - start);
    inference.push(timings.inference_ms);
  }
  return { times, inference };
}"""


def spread(paths: list[Path], limit: int | None) -> list[Path]:
    """``limit`` photos spread evenly over ``paths`` (all of them without a limit)."""
    if limit is None or limit >= len(paths):
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def run_runner(classifier, photos: list[Path]) -> dict[str, dict]:
    answers = {}
    for path in photos:
        start = time.perf_counter()
        pixels = preprocess(path, classifier.spec)
        decoded = time.perf_counter()
        prediction = classifier.classify(pixels.array)
        done = time.perf_counter()
        answers[str(path)] = {
            "label": prediction.label, "score": prediction.score, "pixels": pixels.array,
            "decode_ms": (decoded - start) * 1000, "inference_ms": (done - decoded) * 1000, "total_ms": (done - start) * 1000,
        }
    return answers


def camera_frame(photo: Path) -> np.ndarray:
    """A 640x480 RGB frame made from a photo (what a camera would hand over)."""
    from PIL import Image

    with Image.open(photo) as image:
        return np.asarray(image.convert("RGB").resize((640, 480)))


def run_runner_frames(classifier, frame: np.ndarray, count: int) -> tuple[list[float], list[float]]:
    """The runner's camera path on ``frame``: ``preprocess_array`` + ``classify``; (total ms, inference ms) each."""
    from edge_runner.core.image import preprocess_array

    times, inference = [], []
    for _ in range(count):
        start = time.perf_counter()
        pixels = preprocess_array(frame, classifier.spec)
        fitted = time.perf_counter()
        classifier.classify(pixels)
        done = time.perf_counter()
        times.append((done - start) * 1000)
        inference.append((done - fitted) * 1000)
    return times, inference


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="the .tflite (default: the shipped int8 model)")
    parser.add_argument("--photos", type=Path, nargs="+", required=True, metavar="DIR", help="folders of photos (searched recursively)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only N photos, spread over the folders (default: all)")
    parser.add_argument("--browser-resize", action="store_true", help="also classify each photo resized by the browser as it decodes it")
    parser.add_argument("--frames", type=int, default=5, metavar="N", help="camera-sized frames timed on each side after each batch of photos (default: %(default)s)")
    args = parser.parse_args(argv)

    model = args.model or shipped_model_path()
    classifier = load_classifier(model, 1, None, False)
    photos = spread([p for folder in args.photos for p in find_images(folder)], args.limit)
    if not photos:
        parser.error(f"--photos: no photos found in {', '.join(map(str, args.photos))}")
    print(f"model: {model} ({classifier.variant}), {len(photos)} photos from {', '.join(map(str, args.photos))}")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        folder = Path(tmp) / "app"
        export_app(model, classifier.spec, folder)
        browser = launch_chromium(playwright)
        with StaticServer(folder) as server:
            context = browser.new_context()
            started = time.perf_counter()
            page, problems = open_app(context, server.url)
            ready_s = time.perf_counter() - started
            to_ready = server.counts
            page.wait_for_function("() => document.documentElement.dataset.offline === 'ready'", timeout=120_000)
            first_load = server.counts
            version = page.evaluate("() => navigator.userAgent.match(/Chrom(e|ium)\\/([\\d.]+)/)[2]")
            build = page.evaluate("() => window.edgekitApp.engine.build")
            print(f"browser: Chromium {version} (headless), LiteRT.js {build}, 1 thread; page ready in {ready_s:.1f} s")
            print(
                f"first load: {to_ready['requests']} requests, {to_ready['bytes'] / 1e6:.2f} MB until the model runs; "
                f"{first_load['requests']} requests, {first_load['bytes'] / 1e6:.2f} MB once the service worker has cached it for offline use"
            )

            # Batch by batch, the runner then the browser on the same photos, so both see the same machine load.
            runner = {}
            page.evaluate("() => { const i = document.createElement('input'); i.type = 'file'; i.multiple = true; i.id = 'bench-files'; i.hidden = true; document.body.append(i); }")
            page.evaluate("() => window.edgekitApp.classifyFile(new File([], 'warm-up')).catch(() => null)")
            seen = []  # every request the page makes while it classifies (there should be none)
            page.on("request", lambda request: seen.append(request.url))
            before = server.counts
            entries_before = page.evaluate("() => performance.getEntriesByType('resource').length")
            browser_rows = {}
            names = {}
            frame = camera_frame(photos[0])
            frame_data = base64.b64encode(frame.tobytes()).decode()
            frames = {"times": [], "inference": [], "runner_times": [], "runner_inference": []}
            for start in range(0, len(photos), BATCH):
                batch = photos[start:start + BATCH]
                runner.update(run_runner(classifier, batch))
                page.set_input_files("#bench-files", [str(p) for p in batch])
                # Ask for the input pixels of every photo in the first batch (for the pixel comparison).
                wanted = [p.name for p in batch] if start == 0 else []
                for path, row in zip(batch, page.evaluate(CLASSIFY, [wanted, args.browser_resize])):
                    browser_rows[str(path)] = row
                    names[str(path)] = path
                times, inference = run_runner_frames(classifier, frame, args.frames)
                frames["runner_times"] += times
                frames["runner_inference"] += inference
                measured = page.evaluate(FRAME_LOOP, [frame_data, args.frames])
                frames["times"] += measured["times"]
                frames["inference"] += measured["inference"]
            after = server.counts
            entries_after = page.evaluate("() => performance.getEntriesByType('resource').length")
            requests = after["requests"] - before["requests"]
            page_requests = entries_after - entries_before
            context.close()
        browser.close()
        if problems:
            print("page problems:", *problems[:5], sep="\n  ")

    failed = {k: r["error"] for k, r in browser_rows.items() if "error" in r}
    compared = [k for k in browser_rows if k not in failed]
    agree = [k for k in compared if browser_rows[k]["label"] == runner[k]["label"]]
    agreement = len(agree) / len(compared) if compared else 0.0
    print(f"\ntop-1 agreement with the runner: {agreement:.2%} ({len(agree)}/{len(compared)})"
          + (f"; {len(failed)} photos the browser could not decode" if failed else ""))
    for key, error in list(failed.items())[:5]:
        print(f"  not decoded by the browser: {error}")
    for folder in args.photos:
        inside = [k for k in compared if Path(k).is_relative_to(folder)]
        if inside:
            same = sum(browser_rows[k]["label"] == runner[k]["label"] for k in inside)
            print(f"  {folder}: {same / len(inside):.2%} ({same}/{len(inside)})")
    disagreements = [k for k in compared if k not in agree]
    if disagreements:
        print("disagreements (runner → browser):")
        for key in disagreements[:20]:
            b, r = browser_rows[key], runner[key]
            print(f"  {names[key].name}: {r['label']} {r['score']:.3f} → {b['label']} {b['score']:.3f}  ({b['size'][0]}x{b['size'][1]})")
    if args.browser_resize:
        same = sum(browser_rows[k]["browser_resize_label"] == runner[k]["label"] for k in compared)
        took = median([browser_rows[k]["browser_resize_ms"] for k in compared])
        print(f"with the browser's own resize (createImageBitmap, 'high') instead: {same / len(compared):.2%} "
              f"({same}/{len(compared)}); decode + resize {took:.2f} ms")

    with_pixels = [k for k in compared if "pixels" in browser_rows[k]]
    if with_pixels:
        diffs, exact, runner_on_browser = [], 0, 0
        for key in with_pixels:
            pixels = np.frombuffer(base64.b64decode(browser_rows[key]["pixels"]), np.uint8).reshape(runner[key]["pixels"].shape)
            delta = np.abs(pixels.astype(int) - runner[key]["pixels"].astype(int))
            diffs.append(delta.mean())
            exact += int(delta.max() == 0)
            runner_on_browser += classifier.classify(pixels).label == browser_rows[key]["label"]
        print(f"model input pixels, browser vs Pillow, on {len(with_pixels)} photos: identical on {exact}, "
              f"mean |difference| {statistics.mean(diffs):.3f} (0-255); the runner given the browser's pixels "
              f"answers as the browser on {runner_on_browser}/{len(with_pixels)}")

    identical = sum(
        hashlib.sha256(np.ascontiguousarray(runner[k]["pixels"]).tobytes()).hexdigest() == browser_rows[k]["sha256"]
        for k in compared
    )
    decoders = collections.Counter(browser_rows[k]["decoder"] for k in compared)
    print(f"model input pixels identical to Pillow's (SHA-256) on {identical}/{len(compared)} photos; decoded by "
          + ", ".join(f"{name} {count}" for name, count in decoders.most_common()))

    b_total = [browser_rows[k]["timings"]["total_ms"] for k in compared]
    b_inf = [browser_rows[k]["timings"]["inference_ms"] for k in compared]
    b_dec = [browser_rows[k]["timings"]["decode_ms"] for k in compared]
    b_res = [browser_rows[k]["timings"]["resize_ms"] for k in compared]
    b_read = [browser_rows[k]["timings"]["read_ms"] for k in compared]
    b_unread = [browser_rows[k]["timings"]["decode_ms"] - browser_rows[k]["timings"]["read_ms"] for k in compared]
    r_total = [runner[k]["total_ms"] for k in compared]
    r_inf = [runner[k]["inference_ms"] for k in compared]
    r_dec = [runner[k]["decode_ms"] for k in compared]
    print("\nper photo, median ms       browser   runner   ratio")
    print(f"  decode (+ resize)        {median(b_dec) + median(b_res):7.2f}  {median(r_dec):7.2f}  {(median(b_dec) + median(b_res)) / median(r_dec):5.2f}x"
          f"   (browser: read the file {median(b_read):.2f} + decode {median(b_unread):.2f} + Pillow-exact resize {median(b_res):.2f})")
    print(f"  inference                {median(b_inf):7.2f}  {median(r_inf):7.2f}  {median(b_inf) / median(r_inf):5.2f}x")
    print(f"  photo end to end         {median(b_total):7.2f}  {median(r_total):7.2f}  {median(b_total) / median(r_total):5.2f}x")
    b_frame, r_frame = median(frames["times"]), median(frames["runner_times"])
    print(f"  camera frame (640x480)   {b_frame:7.2f}  {r_frame:7.2f}  {b_frame / r_frame:5.2f}x"
          f"   (resize + inference; inference {median(frames['inference']):.2f} vs {median(frames['runner_inference']):.2f}; "
          f"{len(frames['times'])} frames each; browser {1000 / b_frame:.0f} frames/s on one core)")
    print(f"requests while classifying {len(compared)} photos: {requests} at the server, {page_requests} seen by the page"
          + (": " + ", ".join(seen[:5]) if seen else ""))

    summary = {
        "photos": len(compared),
        "agreement": round(agreement, 4),
        "browser_ms": round(median(b_total), 2),
        "runner_ms": round(median(r_total), 2),
        "ratio": round(median(b_total) / median(r_total), 2),
        "browser_inference_ms": round(median(b_inf), 2),
        "runner_inference_ms": round(median(r_inf), 2),
        "frame_browser_ms": round(b_frame, 2),
        "frame_runner_ms": round(r_frame, 2),
        "requests_per_frame": round(requests / max(1, len(compared)), 4),
        "first_load_mb": round(to_ready["bytes"] / 1e6, 2),
        "first_load_requests": to_ready["requests"],
        "browser_build": build,
        "identical_inputs": identical,
        "disagreements": len(disagreements),
        "not_decoded": len(failed),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
