"""Build the browser app into ``edge_runner/webapp/dist/`` (``make webapp`` runs ``npm ci`` and then this).

    python3 edge_runner/webapp/build.py

Standard library only, so it runs before the kit is installed. It copies:

* ``src/`` (the page, its JavaScript, the service worker, the web manifest, the icons);
* the server page's ``style.css`` and ``favicon.svg`` (one look for both pages);
* from ``node_modules/@litertjs`` (installed by ``npm ci`` from ``package-lock.json``): LiteRT.js's ES module
  (``litert/core.js``), the one module it imports (``litert/wasm-utils.js``), and two WebAssembly builds,
  ``wasm/litert_wasm_internal.{js,wasm}`` (relaxed SIMD: XNNPACK's dot-product kernels) and
  ``wasm/litert_wasm_compat_internal.{js,wasm}`` (for browsers without relaxed SIMD; LiteRT.js picks it itself).
  The threaded and JSPI builds are left out: threads need a cross-origin-isolated page (COOP/COEP headers that a
  static host or a WebView may not send), JSPI only serves WebGPU/WebNN, and the page runs on the CPU.

LiteRT.js imports ``@litertjs/wasm-utils`` by its package name, which a browser cannot resolve; the copy's one
import line is pointed at the file beside it (what an import map would do; the page's Content-Security-Policy
allows no inline script for one), so no bundler is needed. Source-map comments are dropped (no maps are shipped).

It stamps the service worker with the build's hash and its file list, and writes ``build.json`` (the files,
their sizes and SHA-256, the LiteRT.js version) last, so a half-finished build is never taken for a built one.
``dist/`` is git-ignored: the two WebAssembly builds are about 19 MB. The wheel carries it as package data.
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
LITERT = HERE / "node_modules" / "@litertjs"
DIST = HERE / "dist"
MANIFEST = "build.json"
SHARED_FROM_PAGE = ("style.css", "favicon.svg")
# dist/ name → the file under node_modules/@litertjs
FROM_LITERT = {
    "litert/core.js": "core/dist/index.js",
    "litert/wasm-utils.js": "wasm-utils/dist/index.js",
    **{f"wasm/litert_wasm{build}_internal.{ext}": f"core/wasm/litert_wasm{build}_internal.{ext}"
       for build in ("", "_compat") for ext in ("js", "wasm")},
}
WASM_UTILS_IMPORT = 'from "@litertjs/wasm-utils";'
SERVICE_WORKER = "sw.js"


def _copies() -> dict[str, Path]:
    """Each file of the built app (its path in ``dist/``) and where it comes from."""
    missing = [name for name in FROM_LITERT.values() if not (LITERT / name).is_file()]
    if missing:
        raise SystemExit(
            f"build.py: error: {LITERT.relative_to(HERE)} lacks {', '.join(missing)}: run `npm ci` in {HERE} first "
            "(or `make webapp`)"
        )
    files = {path.name: path for path in sorted(SOURCES.iterdir()) if path.is_file()}
    files.update({name: PAGE / name for name in SHARED_FROM_PAGE})
    files.update({target: LITERT / source for target, source in FROM_LITERT.items()})
    return files


def _module_text(name: str, text: str) -> str:
    """LiteRT.js's modules as the browser loads them: the bare import resolved, source-map comments dropped."""
    if name == "litert/core.js":
        if text.count(WASM_UTILS_IMPORT) != 1:
            raise SystemExit(f"build.py: error: {name}: expected one `{WASM_UTILS_IMPORT}` import to point at "
                             "./wasm-utils.js; has this LiteRT.js version changed how it loads? (see package-lock.json)")
        text = text.replace(WASM_UTILS_IMPORT, 'from "./wasm-utils.js";')
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("//# sourceMappingURL="))


def build(out: Path = DIST) -> dict:
    """Write the app into ``out`` (replacing it whole) and return the ``build.json`` content."""
    copies = _copies()
    version = json.loads((LITERT / "core" / "package.json").read_text(encoding="utf-8"))["version"]
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
        elif name.startswith("litert/"):
            target.write_text(_module_text(name, source.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        data = target.read_bytes()
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"build": stamp, "litertjs_core": version, "files": files}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return manifest


def main() -> int:
    manifest = build()
    total = sum(item["bytes"] for item in manifest["files"].values())
    print(f"webapp: built {len(manifest['files'])} files, {total / 1e6:.1f} MB, into {DIST} "
          f"(LiteRT.js {manifest['litertjs_core']}, build {manifest['build']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
