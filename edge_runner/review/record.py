"""One review record: a frame (``Q/<id>.jpg``) and its JSON (``Q/<id>.json``, written last: the commit mark).

Ids are generated here, ``YYYYmmdd-HHMMSS-<kind>-<counter>`` (local time), never taken from a client;
only names matching :data:`ID_PATTERN` are listed, served or removed. The JSON (``version`` 1)::

    {"version": 1, "id", "kind": "visit" | "strip" | "close" | "quiet", "time": ISO 8601 local with offset,
     "t": unix float, "group": str, "model_label": str, "model_score": float (0-1), "model_sha256": str,
     "labels": [contract labels], "background_label": str | null,
     "review": null | {"label": <a contract label> | "nothing" | "skip", "time": ISO 8601}}

``model_label`` is the model's top label before any threshold, ``model_score`` its score; ``group`` is
shared by the frames of one visit (``visit-<unix start>-<n>``) or, for frames outside a visit, by one
10-minute window (``t-YYYYmmdd-HHMM``), so that a split never puts near-identical frames on both sides.
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..common.files import write_atomic

VERSION = 1
KINDS = ("visit", "strip", "close", "quiet")
NOTHING, SKIP = "nothing", "skip"
ID_PATTERN = re.compile(r"^\d{8}-\d{6}-(visit|strip|close|quiet)-(\d{4,})$")
GROUP_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
JPEG_QUALITY = 90
MAX_WIDTH = 1280
WINDOW_S = 600  # frames outside a visit share one group per 10-minute window


class ReviewError(ValueError):
    """A review request or folder that cannot work; ``status`` is the HTTP status the web API answers with."""

    exit_status = 2

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def make_id(kind: str, unix_t: float, counter: int) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, received {kind!r}")
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(unix_t))}-{kind}-{counter:04d}"


def is_id(text: str) -> bool:
    return bool(ID_PATTERN.match(text))


def id_counter(record_id: str) -> int:
    match = ID_PATTERN.match(record_id)
    return int(match.group(2)) if match else 0


def iso_time(unix_t: float) -> str:
    """ISO 8601 local time with its UTC offset, to the second: ``2026-12-06T07:42:13+01:00``."""
    return datetime.fromtimestamp(unix_t).astimezone().isoformat(timespec="seconds")


def window_group(unix_t: float) -> str:
    """``t-YYYYmmdd-HHMM``: the 10-minute window (local time) that frames outside a visit share."""
    return "t-" + time.strftime("%Y%m%d-%H%M", time.localtime(unix_t - unix_t % WINDOW_S))


def visit_group(unix_start: float, visit: int) -> str:
    return f"visit-{int(unix_start)}-{visit}"


def allowed_labels(record: dict) -> list[str]:
    """What a reviewer may answer for ``record``: its contract's labels, ``"nothing"`` and ``"skip"``."""
    return [*record.get("labels", []), NOTHING, SKIP]


def new_record(record_id: str, kind: str, unix_t: float, *, group: str, model_label: str, model_score: float,
               model_sha256: str, labels: tuple[str, ...] | list[str], background_label: str | None) -> dict[str, Any]:
    if not GROUP_PATTERN.match(group):
        raise ValueError(f"group must match {GROUP_PATTERN.pattern}, received {group!r}")
    return {
        "version": VERSION, "id": record_id, "kind": kind, "time": iso_time(unix_t), "t": round(float(unix_t), 3),
        "group": group, "model_label": str(model_label), "model_score": round(float(model_score), 6),
        "model_sha256": str(model_sha256), "labels": list(labels), "background_label": background_label, "review": None,
    }


def parse_record(text: bytes | str, record_id: str) -> dict[str, Any]:
    """The record in ``text``; raises ``ValueError`` (one line) when it is not a complete version-1 record for ``record_id``."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a version 1 review record")
    missing = [key for key in ("id", "kind", "t", "group", "model_label", "model_score", "labels", "review") if key not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if data["id"] != record_id or data["kind"] not in KINDS:
        raise ValueError(f"id/kind {data['id']!r}/{data['kind']!r} do not match the file name")
    review = data["review"]
    if review is not None and (not isinstance(review, dict) or review.get("label") not in allowed_labels(data)):
        raise ValueError(f"review {review!r} is not one of {allowed_labels(data)}")
    return data


def encode_jpeg(frame: np.ndarray, max_width: int = MAX_WIDTH) -> bytes:
    """RGB ``uint8`` ``(H, W, 3)`` → JPEG bytes (quality 90), scaled down to at most ``max_width`` wide."""
    image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    if image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_steps(path: Path, data: bytes, step: str) -> None:
    """``data`` into ``path`` atomically, with crash points ``<step>:temp-written`` (before the rename) and
    ``<step>:renamed`` (after it) for the kill tests."""
    write_atomic(path, data, crash_points=(f"{step}:temp-written", f"{step}:renamed"))


def record_bytes(record: dict) -> bytes:
    return (json.dumps(record, indent=1) + "\n").encode("utf-8")
