"""Writing files so that a reader never sees half of one: a temporary file in the same directory, then a rename.

Every file the kit writes (models, contracts, reports, plots, snapshots, caches)
goes through :func:`write_atomic`; a crash, a full disk or an exception part-way
leaves the old file (or nothing). Standard library only: it loads on a Raspberry Pi.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .crash import crash_point


def write_atomic(path: str | os.PathLike[str], data: bytes, *, crash_points: tuple[str, str] | None = None) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename; returns the path.

    The parent directories are created. A crash or an exception part-way leaves
    the old file (or nothing), never a half-written one. ``crash_points``: the names of
    :func:`~edge_runner.common.crash.crash_point` just before and just after the rename (kill tests).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp's 0600 would hide models from other users (e.g. a web server)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if crash_points:
            crash_point(crash_points[0])
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if crash_points:
        crash_point(crash_points[1])
    sync_directory(path.parent)  # the rename itself survives a power cut
    return path


def sync_directory(directory: Path) -> None:
    """fsync a directory so that a rename in it is on disk (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int = 2) -> Path:
    """``data`` as indented JSON plus a final newline (UTF-8), written atomically; returns the path."""
    return write_atomic(path, (json.dumps(data, indent=indent) + "\n").encode("utf-8"))


def write_figure(figure: Any, path: str | os.PathLike[str], **savefig: Any) -> Path:
    """A Matplotlib figure as PNG (``figure.savefig(..., format="png", **savefig)``), written atomically.

    Takes the figure as it is (no Matplotlib import here): the runner never plots,
    but ``train`` and ``convert`` write their charts the same way as every other file.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return write_atomic(path, buffer.getvalue())


def cache_root() -> Path:
    """The kit's cache: ``$EDGEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgekit``, else ``~/.cache/edgekit``."""
    if os.environ.get("EDGEKIT_CACHE_DIR"):
        return Path(os.environ["EDGEKIT_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgekit"
