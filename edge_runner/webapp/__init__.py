"""The same model in a phone's browser: a static web app that runs the ``.tflite`` in the page.

The app (``src/``: plain HTML, CSS and JavaScript, no framework) classifies camera frames and picked photos
with LiteRT.js (``@litertjs/core``: Google's LiteRT runtime for the web, XNNPACK in WebAssembly, relaxed SIMD
where the browser has it), doing around it what the runner does: the picture resized exactly as
:func:`edge_runner.core.image.fit` does, quantised with the input tensor's scale and zero point, the scores
dequantised, the contract's threshold and background label applied. A service worker keeps the app, the
WebAssembly and the model for offline use; a web manifest makes it installable.

``make webapp`` builds it into ``dist/`` (``npm ci`` from the lock file, then ``build.py``); the wheel carries
``dist/``, so a device needs no Node.js. Two ways to use it:

* ``python -m edge_runner serve`` hosts it at ``/app/`` behind the same access token as the rest of the page
  (:mod:`edge_runner.webapp.routes`);
* ``python -m edge_runner webapp --out DIR`` writes a self-contained folder, the app and the model, for any
  static host or a mobile app's WebView (:mod:`edge_runner.webapp.cli`).

Beside the app's files each copy has ``model.json``: the model's file name and its input contract (read by
:func:`edge_runner.core.model.read_contract`, so a contract beside the model works too). The page reads the model's
name and version from the ``.tflite``'s own metadata.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..common.console import EXIT_USAGE
from ..common.files import write_atomic
from ..core.spec import InputSpec

DIST_DIR = Path(__file__).resolve().parent / "dist"
BUILD_MANIFEST = "build.json"
MODEL_CONFIG = "model.json"
NOT_BUILT = "the browser app is not built: run `make webapp` in the edgekit checkout (needs Node.js and npm), then reinstall"


class WebappError(RuntimeError):
    """The app cannot be served or written; the message is one line saying why and what to do."""

    exit_status = EXIT_USAGE


def built_dir() -> Path:
    """The built app (``dist/``, with its ``build.json``).

    Raises:
        WebappError: it is not built (``make webapp``).
    """
    if not (DIST_DIR / BUILD_MANIFEST).is_file():
        raise WebappError(f"{NOT_BUILT} ({DIST_DIR} is missing)")
    return DIST_DIR


def build_files(directory: Path) -> list[str]:
    """The files of a built app, as ``build.json`` lists them (paths relative to ``directory``)."""
    return sorted(json.loads((directory / BUILD_MANIFEST).read_text(encoding="utf-8"))["files"])


def model_config(model_file: str, spec: InputSpec) -> dict:
    """The ``model.json`` the page reads: which file to load and its input contract."""
    return {"model": model_file, "contract": spec.to_dict()}


def export_app(model: Path, spec: InputSpec, out: Path, *, force: bool = False) -> list[Path]:
    """Write the built app, ``model`` and its ``model.json`` into ``out``; return the files written.

    Raises:
        WebappError: the app is not built, or ``out`` is a file, or a non-empty folder without ``force``.
    """
    source = built_dir()
    if out.exists() and not out.is_dir():
        raise WebappError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise WebappError(f"--out {out}: the folder is not empty; give --force to write the app into it anyway")
    written = []
    for name in build_files(source):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
        written.append(target)
    target = out / model.name
    if target.resolve() != model.resolve():
        shutil.copyfile(model, target)
    written.append(target)
    config = json.dumps(model_config(model.name, spec), indent=2) + "\n"
    written.append(write_atomic(out / MODEL_CONFIG, config.encode("utf-8")))
    return written


def folder_size(paths: list[Path]) -> int:
    return sum(os.path.getsize(path) for path in paths)
