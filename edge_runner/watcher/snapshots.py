"""The best frame of each visit, as a JPEG in a folder that never grows past its limits.

Names are generated (``20261201-074213-cat-0001.jpg``: local time, label, visit
number), never taken from a client. After every write the oldest snapshots are
removed until the folder holds at most ``max_files`` of them and ``max_bytes``
in total, so a week unattended never fills an SD card. Writes are atomic
(:func:`edge_runner.common.files.write_atomic`); a full disk or any other ``OSError`` is
reported by :meth:`SnapshotStore.save` returning ``None`` and the caller goes on.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..common.files import write_atomic

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILES = 500
DEFAULT_MAX_MB = 200.0
JPEG_QUALITY = 85
# Only names this module generates are ever listed, served or removed.
NAME_PATTERN = re.compile(r"^\d{8}-\d{6}-[A-Za-z0-9_-]{1,40}-\d{4,}(-strip)?\.jpg$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class SnapshotError(ValueError):
    """The snapshot folder cannot be used (not a directory, not writable)."""


class SnapshotStore:
    """JPEG snapshots in ``directory`` with a count and size limit (oldest removed first).

    Args:
        directory: created if missing.
        max_files: keep at most this many snapshots (>= 1).
        max_bytes: keep at most this many bytes of snapshots (> 0).
        max_width: frames wider than this are scaled down before encoding.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, max_files: int = DEFAULT_MAX_FILES,
        max_bytes: int = int(DEFAULT_MAX_MB * 1024 * 1024), max_width: int = 1280,
    ) -> None:
        if max_files < 1:
            raise SnapshotError(f"snapshot limit: max_files must be >= 1, received {max_files}")
        if max_bytes <= 0:
            raise SnapshotError(f"snapshot limit: max_bytes must be > 0, received {max_bytes}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SnapshotError(f"--snapshots {self.directory}: cannot create the folder ({exc.strerror or exc})") from None
        if not os.access(self.directory, os.W_OK):
            raise SnapshotError(f"--snapshots {self.directory}: the folder is not writable")
        self.max_files, self.max_bytes, self.max_width = max_files, max_bytes, max_width
        self.failures = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @staticmethod
    def make_name(label: str, visit: int, when: float | None = None, suffix: str = "") -> str:
        """``YYYYmmdd-HHMMSS-<label>-<visit><suffix>.jpg`` (the label reduced to safe characters).

        ``suffix``: ``""`` for the best frame, ``"-strip"`` for the visit's thumbnail strip.
        """
        if suffix not in ("", "-strip"):
            raise ValueError(f"suffix must be '' or '-strip', received {suffix!r}")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
        safe = _UNSAFE.sub("_", label).strip("_")[:40] or "label"
        return f"{stamp}-{safe}-{visit:04d}{suffix}.jpg"

    def path_for(self, name: str) -> Path | None:
        """The file of a generated ``name`` if it exists, else ``None`` (any other string is refused)."""
        if not NAME_PATTERN.match(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None

    def _entries(self) -> list[tuple[float, str, int]]:
        """``(mtime, name, size)`` of every generated snapshot, oldest first; raises ``OSError``."""
        entries = []
        with os.scandir(self.directory) as scan:
            for entry in scan:
                if NAME_PATTERN.match(entry.name) and entry.is_file():
                    stat = entry.stat()
                    entries.append((stat.st_mtime, entry.name, stat.st_size))
        return sorted(entries)

    def names(self) -> list[str]:
        """Snapshot names, oldest first (by modification time, then name)."""
        try:
            return [name for _, name, _ in self._entries()]
        except OSError:
            return []

    def encode(self, frame: np.ndarray) -> bytes:
        """RGB ``uint8`` ``(H, W, 3)`` → JPEG bytes, scaled to at most ``max_width`` wide."""
        image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
        if image.width > self.max_width:
            height = max(1, round(image.height * self.max_width / image.width))
            image = image.resize((self.max_width, height), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue()

    def save(self, name: str, frame: np.ndarray) -> str | None:
        """Write ``frame`` as ``name`` (replacing an earlier, worse frame of the same visit), then prune.

        Returns ``name``, or ``None`` when it could not be written (full disk, permissions):
        the reason is logged once per failure and kept in ``last_error``.
        """
        if not NAME_PATTERN.match(name):
            raise ValueError(f"snapshot name {name!r} was not made by SnapshotStore.make_name")
        with self._lock:
            try:
                data = self.encode(frame)
                self._write(self.directory / name, data)
            except OSError as exc:
                self.failures += 1
                self.last_error = f"{self.directory / name}: {exc.strerror or exc}"
                logger.warning("snapshot not saved: %s (the watcher goes on)", self.last_error)
                self.prune()  # a full disk may be our own doing: free what the limits allow
                return None
            self.prune(keep=name)
            return name

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data)

    def prune(self, keep: str | None = None) -> list[str]:
        """Remove the oldest snapshots beyond ``max_files``/``max_bytes``; returns the names removed."""
        try:
            entries = self._entries()
        except OSError as exc:
            logger.warning("snapshots: cannot list %s (%s)", self.directory, exc.strerror or exc)
            return []
        total = sum(size for _, _, size in entries)
        removed = []
        for _, name, size in entries:
            if len(entries) - len(removed) <= self.max_files and total <= self.max_bytes:
                break
            if name == keep:  # the newest snapshot stays even when it alone exceeds the size limit
                continue
            try:
                (self.directory / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("snapshots: cannot remove %s (%s)", name, exc.strerror or exc)
                continue
            total -= size
            removed.append(name)
        return removed
