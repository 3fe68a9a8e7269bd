"""Build the browser app into ``edge_runner/webapp/dist/`` (``make webapp`` runs ``npm ci`` and then this).

    python3 edge_runner/webapp/build.py

Standard library only, so it runs before the kit is installed. It copies:

* ``src/`` (the page, its JavaScript, the service worker, the web manifest, the icons);
* the server page's ``style.css`` and ``favicon.svg`` (one look for both pages);
* from ``node_modules/@mediapipe/tasks-vision`` (installed by ``npm ci`` from ``package-lock.json``): the
  ES module ``vision_bundle.mjs`` and the SIMD WebAssembly build, ``wasm/vision_wasm_internal.{js,wasm}``;

stamps the service worker with the build's hash and its file list, and writes ``build.json`` (the files, their
sizes and SHA-256, the MediaPipe version) last, so a half-finished build is never taken for a built one.
``dist/`` is git-ignored: the WebAssembly alone is about 13 MB. The wheel carries it as package data.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
PAGE = HERE.parent / "web" / "static"
MEDIAPIPE = HERE / "node_modules" / "@mediapipe" / "tasks-vision"
DIST = HERE / "dist"
MANIFEST = "build.json"
SHARED_FROM_PAGE = ("style.css", "favicon.svg")
FROM_MEDIAPIPE = {
    "vision_bundle.mjs": "vision_bundle.mjs",
    "wasm/vision_wasm_internal.js": "wasm/vision_wasm_internal.js",
    "wasm/vision_wasm_internal.wasm": "wasm/vision_wasm_internal.wasm",
}
SERVICE_WORKER = "sw.js"


def _copies() -> dict[str, Path]:
    """Each file of the built app (its path in ``dist/``) and where it comes from."""
    missing = [name for name in FROM_MEDIAPIPE.values() if not (MEDIAPIPE / name).is_file()]
    if missing:
        raise SystemExit(
            f"build.py: error: {MEDIAPIPE.relative_to(HERE)} lacks {', '.join(missing)}: run `npm ci` in {HERE} first "
            "(or `make webapp`)"
        )
    files = {path.name: path for path in sorted(SOURCES.iterdir()) if path.is_file()}
    files.update({name: PAGE / name for name in SHARED_FROM_PAGE})
    files.update({target: MEDIAPIPE / source for target, source in FROM_MEDIAPIPE.items()})
    return files


def build(out: Path = DIST) -> dict:
    """Write the app into ``out`` (replacing it whole) and return the ``build.json`` content."""
    copies = _copies()
    version = json.loads((MEDIAPIPE / "package.json").read_text(encoding="utf-8"))["version"]
    cached = sorted(name for name in copies if name != SERVICE_WORKER)
    digest = hashlib.sha256()
    for name in sorted(copies):
        digest.update(name.encode() + b"\0" + copies[name].read_bytes())
    stamp = digest.hexdigest()[:16]
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    files = {}
    for name, source in copies.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == SERVICE_WORKER:
            text = source.read_text(encoding="utf-8")
            text = text.replace('"__BUILD__"', json.dumps(stamp)).replace("__FILES__", json.dumps(cached))
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        data = target.read_bytes()
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"build": stamp, "mediapipe_tasks_vision": version, "files": files}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return manifest


def main() -> int:
    manifest = build()
    total = sum(item["bytes"] for item in manifest["files"].values())
    print(f"webapp: built {len(manifest['files'])} files, {total / 1e6:.1f} MB, into {DIST} "
          f"(MediaPipe tasks-vision {manifest['mediapipe_tasks_vision']}, build {manifest['build']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
