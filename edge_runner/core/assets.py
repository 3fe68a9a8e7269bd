"""Files the runner ships beside its code: the default model, the web page, the deploy scripts.

Everything is found through the installed packages (``importlib.resources``), so a plain
``pip install '.[edge,serve]'`` works from any directory:

* the shipped models live in the repository's ``models/`` directory, which the wheel installs
  as the data package ``edgekit_models`` (``pyproject.toml``: ``[tool.setuptools] package-dir``);
* the web page (``edge_runner/web/static/``) and the deploy files (``edge_runner/deploy/``) are package data.

When this code runs from a source checkout (an editable install, ``PYTHONPATH``, or
``python -m`` from the repository root: ``pyproject.toml`` sits beside the package), the
models come from the same checkout, ``<repo>/models``, so code and models always match.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

MODELS_PACKAGE = "edgekit_models"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # <repo>/edge_runner/core/assets.py
SOURCE_MODELS_DIR = SOURCE_ROOT / "models"


def _directory(traversable: object) -> Path:
    """A real directory for ``traversable`` (a wheel installs unzipped; a zipped install is refused)."""
    path = Path(str(traversable))
    if not path.is_dir():
        raise FileNotFoundError(f"{traversable}: not a directory on disk (edgekit cannot run from a zip file)")
    return path


def running_from_checkout() -> bool:
    """True when ``edge_runner`` is imported from a source tree (``<repo>/pyproject.toml`` and ``models/``)."""
    return (SOURCE_ROOT / "pyproject.toml").is_file() and SOURCE_MODELS_DIR.is_dir()


def models_dir() -> Path:
    """The directory of the shipped models: ``<repo>/models`` in a checkout, else the ``edgekit_models`` package."""
    if running_from_checkout():
        return SOURCE_MODELS_DIR
    try:
        return _directory(importlib.resources.files(MODELS_PACKAGE))
    except (ModuleNotFoundError, FileNotFoundError):
        return SOURCE_MODELS_DIR  # an install without its models package: the error names this path


def shipped_model(name: str) -> Path:
    """``models_dir() / name`` (it may not exist: a checkout without models, or a renamed model)."""
    return models_dir() / name


def static_dir() -> Path:
    """The web page's files (``index.html``, ``app.js``, ``style.css``, ``favicon.svg``)."""
    return _directory(importlib.resources.files("edge_runner.web") / "static")


def deploy_dir() -> Path:
    """The device install files (``install-pi.sh``, ``edgekit.service``, ``device_check.py``)."""
    return _directory(importlib.resources.files("edge_runner") / "deploy")
