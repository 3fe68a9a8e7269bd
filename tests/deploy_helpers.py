"""Models to deploy, with their contract embedded (as ``convert export`` writes them), and small HTTP helpers.

Three colour models that need no training (``conftest.build_colour_keras``: the mean colour decides):

* ``"colours"``: labels red, green, blue; blue is the background; a red photo is ``red``;
* ``"swapped"``: the same labels, red and green exchanged: a red photo is ``green`` (classifications change);
* ``"pets"``: labels cat, dog, other; other is the background; a red photo is ``cat`` (the labels change);
* ``"larger"``: like ``"colours"`` with a 48x48 input (the input size changes).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, build_colour_keras, convert_tiny, draw_photo

SIZE = 32
RED = (220, 40, 40)


def _embed(bare: bytes, spec) -> bytes:
    from convert.tflite import metadata as md
    from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME

    meta = md.classifier_metadata(spec, "float32", float_input=True, info=md.ModelInfo())
    files = {LABELS_FILENAME: spec.labels_text().encode(), CONTRACT_FILENAME: spec.to_json().encode()}
    return md.embed(bare, meta, files)


@functools.lru_cache(maxsize=1)
def _build() -> dict[str, Path]:
    from edge_runner.core.spec import InputSpec

    root = Path(tempfile.mkdtemp(prefix="edgekit-deploy-models-"))
    swapped = build_colour_keras(SIZE)
    dense = swapped.layers[-1]
    weights = np.eye(3, dtype=np.float32)[[1, 0, 2]] * 12.0
    dense.set_weights([weights, np.zeros(3, np.float32)])
    models = {
        "colours": (build_colour_keras(SIZE), ("red", "green", "blue"), "blue"),
        "swapped": (swapped, ("red", "green", "blue"), "blue"),
        "pets": (build_colour_keras(SIZE), ("cat", "dog", "other"), "other"),
    }
    models["larger"] = (build_colour_keras(48), ("red", "green", "blue"), "blue")  # another input size: 48x48
    paths = {}
    for name, (model, labels, background) in models.items():
        size = model.input_shape[1]
        spec = InputSpec(labels=labels, height=size, width=size, name=name, background_label=background, threshold=0.6)
        path = root / f"{name}.tflite"
        path.write_bytes(_embed(convert_tiny(model, "float32", size), spec))
        paths[name] = path
    bare = root / "bare.tflite"  # no embedded contract: refused
    bare.write_bytes(convert_tiny(build_colour_keras(SIZE), "float32", SIZE))
    paths["bare"] = bare
    return paths


def deploy_models(tmp_path: Path) -> dict[str, Path]:
    """Copies of the three models (and a bare one without a contract) in ``tmp_path`` (built once per session)."""
    pytest.importorskip("tensorflow", reason="the deploy test models are built with TensorFlow (pip install .[train])")
    copies = {}
    for name, path in _build().items():
        copies[name] = shutil.copy(path, tmp_path / path.name)
    return {name: Path(p) for name, p in copies.items()}


def red_jpeg() -> bytes:
    buffer = io.BytesIO()
    draw_photo(RED, size=(64, 48), seed=1).save(buffer, "JPEG")
    return buffer.getvalue()


def http(url: str, *, data: bytes | None = None, headers: dict | None = None, method: str | None = None,
         timeout: float = 60) -> tuple[int, dict, dict]:
    """``(status, headers, JSON body)`` of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"raw": body[:200].decode("latin-1")}
        return exc.code, dict(exc.headers), parsed


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# -- a real serve process and the deploy command ---------------------------------------------------

TOKEN = "k7Qp-" + "x9" * 12 + "Zr"


class Serve:
    """``python -m edge_runner serve ARGS`` in a child process; its stdout lines are collected on a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("EDGEKIT_TOKEN", None)
        self.process = subprocess.Popen([sys.executable, "-m", "edge_runner", "serve", "--port", "0", *map(str, args)], cwd=cwd,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.url = None
        found = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.lines.append(line)
                match = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
                if match:
                    self.url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(60)
        assert self.url, "".join(self.lines)

    def get(self, path: str, token: str | None = TOKEN):
        return http(self.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})

    def classify(self) -> str:
        body, headers = multipart("file", "red.jpg", red_jpeg())
        status, _, answer = http(self.url + "/api/classify", data=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
        assert status == 200, answer
        return answer["label"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def deploy(*args, token_file: Path | None = None, env_token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EDGEKIT_TOKEN", None)
    if env_token:
        env["EDGEKIT_TOKEN"] = env_token
    extra = ["--token-file", str(token_file)] if token_file else []
    return subprocess.run([sys.executable, "-m", "edge_runner", "deploy", *map(str, args), *extra], env=env,
                          capture_output=True, text=True, timeout=120)
