"""A pytest plugin (``pytest_plugins`` in ``conftest.py``): Debian's headless ``chromium`` driven by Playwright.

Only the ``playwright`` Python package is used: the browser is Debian's (``apt-get install
chromium``, or ``EDGEKIT_CHROMIUM=/path``); ``playwright install`` is never run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    """``$EDGEKIT_CHROMIUM``, else Debian's chromium, else one on PATH; None when there is none."""
    candidates = (os.environ.get("EDGEKIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def save_screenshot(page, folder: Path, name: str) -> Path:
    """A full-page PNG ``folder/name`` (copied to ``$EDGEKIT_ARTIFACTS`` too); returns its path."""
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("EDGEKIT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(artifacts) / name)
    return path


@pytest.fixture(scope="module")
def browser():
    """A launched chromium (one per test module); skips without Playwright or a chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs Playwright (pip install playwright)")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no chromium browser installed (apt-get install chromium); set EDGEKIT_CHROMIUM to use another path")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def keep_screenshot(tmp_path):
    """``keep_screenshot(page, name)`` saves a full-page PNG in ``tmp_path`` (and ``$EDGEKIT_ARTIFACTS``); returns its path."""

    return lambda page, name: save_screenshot(page, tmp_path, name)
