"""A pytest plugin (``pytest_plugins`` in ``conftest.py``): the ``webapp_dist`` fixture, the built browser app."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def webapp_dist() -> Path:
    """The built browser app (``edge_runner/webapp/dist``), as ``make webapp`` builds it.

    Built here when missing or older than its sources (``npm ci`` when ``node_modules`` is missing or older than
    the lock file, then ``build.py``), so ``pytest`` alone tests the current sources; skips with the reason when npm
    is missing.
    """
    from edge_runner.webapp import BUILD_MANIFEST, DIST_DIR

    folder = REPO / "edge_runner" / "webapp"
    sources = [*folder.glob("src/*"), folder / "build.py", folder / "package-lock.json",
               REPO / "edge_runner" / "web" / "static" / "style.css", REPO / "edge_runner" / "web" / "static" / "favicon.svg"]
    built = DIST_DIR / BUILD_MANIFEST
    if built.is_file() and all(path.stat().st_mtime <= built.stat().st_mtime for path in sources):
        return DIST_DIR
    installed = folder / "node_modules" / ".package-lock.json"  # npm's record of what it installed
    if not installed.is_file() or installed.stat().st_mtime < (folder / "package-lock.json").stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("the browser app is not built and npm is missing: install Node.js and npm, then run `make webapp`")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True, timeout=600)
    subprocess.run([sys.executable, str(folder / "build.py")], check=True, timeout=120, capture_output=True)
    return DIST_DIR
