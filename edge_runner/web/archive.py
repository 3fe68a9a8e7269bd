"""Keeping uploaded photos for later analysis (the server's ``--archive DIR``).

Each photo is written under a generated name — UTC timestamp, a random UUID and
an extension sniffed from the image's own bytes — so nothing the client sends
(its file name above all) is ever used as a path. ``predictions.jsonl`` in the
same folder gets one line per kept photo: its file name, when it was received,
the name the client gave (as data only) and the prediction.
"""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from ..common.console import EXIT_USAGE
from ..common.files import write_atomic

LOG_FILENAME = "predictions.jsonl"

# Pillow format name → file extension; anything else is kept as ``.bin``.
_EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",  # multi-picture JPEG from phones; its first frame is a plain JPEG
    "PNG": ".png",
    "GIF": ".gif",
    "BMP": ".bmp",
    "DIB": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "PPM": ".ppm",
    "ICO": ".ico",
    "HEIF": ".heic",
    "AVIF": ".avif",
}


class ArchiveError(OSError):
    """The archive folder cannot be created or written; the message names it."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class ArchivedPhoto:
    """Where a kept photo went: ``path`` inside the archive folder, and its bare ``name``."""

    path: Path
    name: str


def sniff_extension(data: bytes) -> str:
    """The file extension for image bytes, from their content (``.jpg``, ``.png``, …; ``.bin`` if unknown)."""
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            fmt = image.format or ""
    except Exception:  # any undecodable header: keep the bytes, say nothing about their type
        return ".bin"
    return _EXTENSIONS.get(fmt.upper(), ".bin")


def generate_name(extension: str, now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<32 hex>.ext``: sortable by time, unique, and free of anything a client sent."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex}{extension}"


class Archive:
    """A folder that keeps uploaded photos under generated names.

    Args:
        directory: created (with parents) if missing.

    Raises:
        ArchiveError: the folder cannot be created or is not writable.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).resolve()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ArchiveError(f"{self.directory}: --archive must be a folder, but a file has that name") from None
        except OSError as exc:
            raise ArchiveError(f"{self.directory}: cannot create the archive folder ({exc.strerror})") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise ArchiveError(f"{self.directory}: the archive folder is not writable")
        self.log_path = self.directory / LOG_FILENAME
        self._log_lock = threading.Lock()

    def keep(self, data: bytes, *, client_name: str = "", prediction: dict | None = None) -> ArchivedPhoto:
        """Write one photo (atomically) and append its line to ``predictions.jsonl``.

        Args:
            data: the uploaded file's bytes, unchanged.
            client_name: the name the client gave, recorded in the log as text, never used as a path.
            prediction: the API's answer for the photo (``Prediction.to_dict``), logged beside it.

        Raises:
            ArchiveError: the write failed (nothing half-written is left behind).
        """
        now = datetime.now(timezone.utc)
        name = generate_name(sniff_extension(data), now)
        path = self.directory / name
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot keep the upload ({exc.strerror or exc})") from None
        record = {"file": name, "received": now.isoformat(timespec="milliseconds"), "client_name": client_name}
        if prediction is not None:
            record["prediction"] = {k: v for k, v in prediction.items() if k != "source"}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with self._log_lock, open(self.log_path, "a", encoding="utf-8") as log:
                log.write(line)
        except OSError as exc:
            raise ArchiveError(f"{self.log_path}: cannot append to the log ({exc.strerror or exc})") from None
        return ArchivedPhoto(path, name)
