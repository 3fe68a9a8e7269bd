"""Helpers for the browser app's tests and benchmark (``tests/test_webapp.py``, ``tests/benchmarks/bench_browser_app.py``).

* :class:`StaticServer`: a folder served on 127.0.0.1 (as any static host would) that counts the requests and
  bytes it answers, so "no request per classified frame" is counted where it matters, at the server;
* :func:`launch_chromium`: Debian's chromium with the web page test's flags, plus a fake camera;
* :func:`open_app`: a page of the app, waited on until its model is loaded (and, optionally, cached offline);
* :func:`write_y4m`: a video clip for Chromium's fake camera.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
from chromium import CHROMIUM_ARGS, find_chromium

READY = "() => document.querySelector('#status').textContent.startsWith('ready') || document.querySelector('#status').className.includes('error')"
# LiteRT.js's WebAssembly logs to stderr, which the browser shows as console errors: INFO lines as it starts and
# compiles, and a warning on every start (the page runs on the CPU: there is no NPU to register).
LITERT_START_UP = ("INFO: ", "WARNING: [npu_registry.cc:34] NPU accelerator could not be loaded")
OFFLINE_READY = "() => document.documentElement.dataset.offline === 'ready' && navigator.serviceWorker.controller !== null"


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
        ".webmanifest": "application/manifest+json", ".tflite": "application/octet-stream",
    }

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send_response(self, code, message=None):
        self.server.counts["requests"] += 1
        self.server.paths.append((self.path, code))
        super().send_response(code, message)

    def copyfile(self, source, outputfile):
        data = source.read()
        self.server.counts["bytes"] += len(data)
        outputfile.write(data)


class StaticServer:
    """``folder`` served at ``self.url`` from a thread; ``counts`` = requests and body bytes answered so far."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_CountingHandler, directory=str(folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.counts = {"requests": 0, "bytes": 0}
        self._server.paths = []
        self._thread = threading.Thread(target=self._server.serve_forever, name="static-server", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def counts(self) -> dict:
        return dict(self._server.counts)

    @property
    def paths(self) -> list[tuple[str, int]]:
        return list(self._server.paths)

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def launch_chromium(playwright, *, clip: Path | None = None, cameras: int | None = None):
    """Debian's chromium, headless; with ``clip`` its fake camera plays that file, with ``cameras`` it has N fake ones."""
    executable = find_chromium()
    if executable is None:
        raise RuntimeError("no chromium browser installed (apt-get install chromium); set EDGEKIT_CHROMIUM to use another path")
    args = list(CHROMIUM_ARGS) + ["--use-fake-ui-for-media-stream"]
    if clip is not None:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"]
    elif cameras is not None:
        args += [f"--use-fake-device-for-media-stream=device-count={cameras}"]
    return playwright.chromium.launch(executable_path=executable, args=args)


def open_app(context, url: str, *, offline_ready: bool = False, timeout_ms: int = 120_000):
    """A page of the app at ``url``, once its model is loaded; returns ``(page, problems)``.

    ``problems`` collects console errors and uncaught exceptions, less LiteRT.js's log lines (``LITERT_START_UP``).
    """
    page = context.new_page()
    problems: list[str] = []

    def on_console(message) -> None:
        if message.type == "error" and not message.text.startswith(LITERT_START_UP):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    page.wait_for_function(READY, timeout=timeout_ms)
    if offline_ready:
        page.wait_for_function(OFFLINE_READY, timeout=timeout_ms)
    return page, problems


def rgb_to_i420(frame: np.ndarray) -> bytes:
    """An RGB ``uint8`` frame (H, W even) as planar I420 (BT.601, full range: the y4m ``C420jpeg`` colour space)."""
    rgb = frame.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def half(plane):
        return plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2).mean(axis=(1, 3))

    planes = [y, half(u), half(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A YUV4MPEG2 clip of RGB frames (all of one even size), as Chromium's fake camera plays it (looped)."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + rgb_to_i420(frame))
    return path


def pick_files(page, paths) -> None:
    """Give the page's scripts ``paths`` as the files of a new ``<input type=file id=probe>`` (a user's pick)."""
    page.evaluate("() => { const i = document.createElement('input'); i.type = 'file'; i.multiple = true; "
                  "i.id = 'probe'; document.body.append(i); }")
    page.set_input_files("#probe", [str(path) for path in paths])
