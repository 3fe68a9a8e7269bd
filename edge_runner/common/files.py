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


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename; returns the path.

    The parent directories are created. A crash or an exception part-way leaves
    the old file (or nothing), never a half-written one.
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
        os.replace(tmp, path)
        _sync_directory(path.parent)  # the rename itself survives a power cut
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _sync_directory(directory: Path) -> None:
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
