"""A pytest plugin (``pytest_plugins`` in ``conftest.py``): the ``mediapipe_venv`` fixture, the side venv with MediaPipe Tasks.

MediaPipe pins numpy<2 and protobuf 4, which clash with the kit's TensorFlow, so it
lives in a venv of its own: ``make mediapipe`` creates ``.venv-mediapipe/`` at the repo
root (``make test`` does it first). The tests look there themselves;
``EDGEKIT_MEDIAPIPE_PYTHON`` points them at another venv's python instead.

Without the venv the tests skip and say why. A venv that is there but does not work
skips too on a developer machine, and fails under ``CI=true``: CI must not turn a broken
install into a green run.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV_VAR = "EDGEKIT_MEDIAPIPE_PYTHON"
DEFAULT_PYTHON = Path(__file__).resolve().parent.parent / ".venv-mediapipe" / "bin" / "python"
# Prints where the mediapipe package is; its wheel ships the published
# metadata_schema.fbs next to the code generated from it.
_PROBE = "import importlib.util as u; print(u.find_spec('mediapipe').submodule_search_locations[0])"


@dataclass(frozen=True)
class MediaPipeVenv:
    """A working side venv.

    Attributes:
        python: its python executable.
        published_schema: the published ``metadata_schema.fbs`` shipped in the mediapipe wheel, or None.
    """

    python: str
    published_schema: Path | None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[MediaPipeVenv | None, str, bool]:
    """(venv, reason it is unusable, whether a venv was there or configured)."""
    configured = os.environ.get(ENV_VAR, "").strip()
    python = Path(configured) if configured else DEFAULT_PYTHON
    if not python.exists():
        where = f"{ENV_VAR}={configured} does not exist" if configured else f"no MediaPipe venv at {python}"
        return None, f"{where} (`make mediapipe` creates .venv-mediapipe/)", bool(configured)
    if not os.access(python, os.X_OK):
        return None, f"{python} is not executable", True
    try:
        done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{python} does not run: {exc}", True
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{python} cannot import mediapipe: {last}", True
    schema = Path(done.stdout.strip()) / "tasks" / "metadata" / "metadata_schema.fbs"
    return MediaPipeVenv(str(python), schema if schema.is_file() else None), "", True


@pytest.fixture(scope="session")
def mediapipe_venv() -> MediaPipeVenv:
    """The working side venv; otherwise skip, or fail under ``CI=true`` when one is there but broken."""
    venv, reason, present = _probe()
    if venv is None:
        if present and _in_ci():
            pytest.fail(f"MediaPipe venv unusable under CI=true: {reason}")
        pytest.skip(reason)
    return venv
