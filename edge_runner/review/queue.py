"""The review queue: a folder of records (see :mod:`edge_runner.review.record`) that never grows past its limits.

One process adds (the watcher, or ``serve --camera``); any number read and label (``serve``'s
``/review``, ``python -m edge_runner review``), so nothing is kept in memory that the folder does
not say: every listing scans it (unchanged JSON files are not read twice).

* :meth:`ReviewQueue.add` writes ``<id>.jpg``, then ``<id>.json`` (the commit mark), then prunes: oldest
  first (by the record's time) until at most ``max_files`` records and ``max_bytes`` remain (5% below a limit
  once it is reached, so that the next adds need no folder scan). A full
  disk or any ``OSError`` is logged and ``None`` returned: the watcher goes on.
* A jpg without its JSON, or a JSON that cannot be read, is a torn record (a power cut mid-write):
  skipped with one warning naming the file, removed by the next prune once older than ``TORN_GRACE_S``
  (younger ones may be another process's record half-way through).
* :meth:`ReviewQueue.set_review` rewrites one JSON atomically: a crash leaves the old review or the new one.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from pathlib import Path

from ..common.crash import crash_point
from .record import (ID_PATTERN, KINDS, NOTHING, ReviewError, allowed_labels, id_counter, iso_time, make_id, new_record,
                     parse_record, record_bytes, write_steps)

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILES = 2000
DEFAULT_MAX_MB = 200.0
TORN_GRACE_S = 60.0
FULL_PASS_EVERY = 50
LOW_WATER = 0.05


class ReviewQueue:
    """The records in ``directory`` (created if missing).

    Args:
        max_files: keep at most this many records (>= 1).
        max_bytes: keep at most this many bytes of records (> 0).
        create: create the folder; ``False`` for a reader that must not (``serve`` without a camera).
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_files: int = DEFAULT_MAX_FILES,
                 max_bytes: int = int(DEFAULT_MAX_MB * 1024 * 1024), create: bool = True) -> None:
        if max_files < 1:
            raise ReviewError(f"--review-max-files must be >= 1, received {max_files}")
        if max_bytes <= 0:
            raise ReviewError(f"--review-max-mb must be > 0, received {max_bytes / 1024 / 1024:g}")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ReviewError(f"--review-dir {self.directory}: is a file, not a folder")
        if create:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReviewError(f"--review-dir {self.directory}: cannot create the folder ({exc.strerror or exc})") from None
            if not os.access(self.directory, os.W_OK):
                raise ReviewError(f"--review-dir {self.directory}: the folder is not writable")
        self.max_files, self.max_bytes = max_files, max_bytes
        self.failures = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, dict]] = {}  # id -> (json mtime_ns, record)
        self._warned: set[str] = set()
        self._counter: itertools.count | None = None
        # (records, bytes, adds) since the last full prune pass: most adds then skip the folder scan.
        self._estimate: list[int] | None = None

    # -- reading ------------------------------------------------------------------------

    def _scan(self, sizes: dict[str, int] | None = None) -> tuple[dict[str, dict], dict[str, tuple[Path, float, int]]]:
        """``(records by id, torn files by name -> (path, mtime, size))``; unreadable folders read as empty.

        ``sizes``, when given, is filled with each record's bytes (frame + JSON).
        """
        jsons: dict[str, os.DirEntry] = {}
        jpgs: dict[str, os.DirEntry] = {}
        temps: list[os.DirEntry] = []
        try:
            with os.scandir(self.directory) as scan:
                for entry in scan:
                    stem, _, suffix = entry.name.rpartition(".")
                    if suffix in ("json", "jpg") and ID_PATTERN.match(stem):
                        (jsons if suffix == "json" else jpgs)[stem] = entry
                    elif entry.name.startswith(".") and entry.name.endswith(".tmp") and ID_PATTERN.match(entry.name[1:].split(".")[0]):
                        temps.append(entry)
        except OSError:
            return {}, {}
        records: dict[str, dict] = {}
        torn: dict[str, tuple[Path, float, int]] = {}
        for stem, entry in jsons.items():
            try:
                stat = entry.stat()
                cached = self._cache.get(stem)
                if cached is not None and cached[0] == stat.st_mtime_ns:
                    record = cached[1]
                else:
                    record = parse_record(Path(entry.path).read_bytes(), stem)
                    self._cache[stem] = (stat.st_mtime_ns, record)
                if stem not in jpgs:
                    raise ValueError("its frame is missing")
                records[stem] = record
                if sizes is not None:
                    sizes[stem] = stat.st_size + _size(jpgs[stem])
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                self._warn(entry.name, f"unreadable review record {entry.path} ({exc}); skipped")
                torn[entry.name] = (Path(entry.path), _mtime(entry), _size(entry))
                if stem in jpgs:  # its frame goes with it
                    torn[jpgs[stem].name] = (Path(jpgs[stem].path), _mtime(entry), _size(jpgs[stem]))
        for stem, entry in jpgs.items():
            if stem not in jsons:
                mtime = _mtime(entry)
                if time.time() - mtime >= TORN_GRACE_S:
                    self._warn(entry.name, f"review frame {entry.path} has no record (a write cut short); skipped")
                torn[entry.name] = (Path(entry.path), mtime, _size(entry))
        for entry in temps:
            torn[entry.name] = (Path(entry.path), _mtime(entry), _size(entry))
        for stem in set(self._cache) - set(jsons):
            self._cache.pop(stem, None)
        return records, torn

    def _warn(self, name: str, message: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            logger.warning("%s", message)

    def records(self) -> list[dict]:
        """Every complete record, newest first (by time, then id)."""
        with self._lock:
            records, _ = self._scan()
        return sorted(records.values(), key=lambda r: (r["t"], id_counter(r["id"]), r["id"]), reverse=True)

    def get(self, record_id: str) -> dict | None:
        if not ID_PATTERN.match(record_id):
            return None
        return next((r for r in self.records() if r["id"] == record_id), None)

    def image_path(self, record_id: str) -> Path | None:
        """The frame of a complete record, or ``None`` (any string that is not a generated id is refused)."""
        if not ID_PATTERN.match(record_id) or not (self.directory / f"{record_id}.json").is_file():
            return None
        path = self.directory / f"{record_id}.jpg"
        return path if path.is_file() else None

    # -- writing ------------------------------------------------------------------------

    def _next_id(self, kind: str, unix_t: float) -> str:
        if self._counter is None:
            try:
                names = [entry.name.rpartition(".")[0] for entry in os.scandir(self.directory)]
            except OSError:
                names = []
            self._counter = itertools.count(max((id_counter(n) for n in names), default=0) + 1)
        while True:
            record_id = make_id(kind, unix_t, next(self._counter))
            if not (self.directory / f"{record_id}.jpg").exists():
                return record_id

    def add(self, kind: str, jpeg: bytes, unix_t: float, **fields) -> dict | None:
        """Add a frame (JPEG bytes) taken at ``unix_t``; ``fields`` as :func:`~edge_runner.review.record.new_record`.

        Returns the record, or ``None`` when it could not be written (logged; the caller goes on).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, received {kind!r}")
        with self._lock:
            record_id = self._next_id(kind, unix_t)
            record = new_record(record_id, kind, unix_t, **fields)
            try:
                write_steps(self.directory / f"{record_id}.jpg", jpeg, "review-add-jpg")
                crash_point("review-add:jpg-written")
                write_steps(self.directory / f"{record_id}.json", record_bytes(record), "review-add-json")
            except OSError as exc:
                self.failures += 1
                self.last_error = f"{self.directory / record_id}: {exc.strerror or exc}"
                logger.warning("review frame not saved: %s (the watcher goes on)", self.last_error)
                self._unlink(self.directory / f"{record_id}.jpg")
                self._prune()  # a full disk may be the queue's own doing: free what the limits allow
                return None
            self._after_add(record_id, len(jpeg))
        return record

    def _after_add(self, record_id: str, size: int) -> None:
        """Prune when the limits may be passed (by the running count since the last full pass) or every
        ``FULL_PASS_EVERY`` adds (torn records, another process's changes); otherwise skip the folder scan."""
        estimate = self._estimate
        if estimate is not None:
            estimate[0] += 1
            estimate[1] += size + 600
            estimate[2] += 1
        if estimate is None or estimate[0] > self.max_files or estimate[1] > self.max_bytes or estimate[2] >= FULL_PASS_EVERY:
            self._prune(keep=record_id)

    def set_review(self, record_id: str, label: str | None) -> dict:
        """Set (or with ``None`` clear) a record's review, atomically; returns the record.

        Raises:
            ReviewError: 404 no such record; 400 a label that is not the record's contract label, "nothing" or "skip".
        """
        with self._lock:
            records, _ = self._scan() if ID_PATTERN.match(record_id) else ({}, {})
            record = records.get(record_id)
            if record is None:
                raise ReviewError(f"no review record {record_id!r} (removed by the queue's limits, or never made)", 404)
            allowed = allowed_labels(record)
            if label is not None and label not in allowed:
                raise ReviewError(f"label must be one of {allowed} (or null to undo), received {label!r}")
            updated = {**record, "review": None if label is None else {"label": label, "time": iso_time(time.time())}}
            path = self.directory / f"{record_id}.json"
            try:
                write_steps(path, record_bytes(updated), "review-label")
            except OSError as exc:
                raise ReviewError(f"{path}: the review could not be saved ({exc.strerror or exc})", 507) from None
            self._cache.pop(record_id, None)
        return updated

    def prune(self) -> list[str]:
        """Remove torn records (older than ``TORN_GRACE_S``) and the oldest records beyond the limits; returns the names."""
        with self._lock:
            return self._prune()

    def _prune(self, keep: str | None = None) -> list[str]:
        sizes: dict[str, int] = {}
        records, torn = self._scan(sizes)
        removed = []
        now = time.time()
        for name, (path, mtime, _) in torn.items():
            if now - mtime >= TORN_GRACE_S and self._unlink(path):
                removed.append(name)
        total = sum(sizes.values()) + sum(size for name, (_, _, size) in torn.items() if name not in removed)
        count = len(records)
        # Past a limit, go 5% below it: the next adds then need no folder scan (see _after_add).
        over = count > self.max_files or total > self.max_bytes
        max_files = self.max_files - int(self.max_files * LOW_WATER) if over else self.max_files
        max_bytes = self.max_bytes - int(self.max_bytes * LOW_WATER) if over else self.max_bytes
        for record in sorted(records.values(), key=lambda r: (r["t"], id_counter(r["id"]))):
            if count <= max_files and total <= max_bytes:
                break
            if record["id"] == keep:  # the newest record stays even when it alone exceeds the size limit
                continue
            # The JSON first: without its commit mark the rest is a torn record, never a record without its frame.
            if self._unlink(self.directory / f"{record['id']}.json"):
                crash_point("review-prune:json-removed")
                self._unlink(self.directory / f"{record['id']}.jpg")
                self._cache.pop(record["id"], None)
                total -= sizes[record["id"]]
                count -= 1
                removed.append(record["id"])
        self._estimate = [count, total, 0]
        return removed

    @staticmethod
    def _unlink(path: Path) -> bool:
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            logger.warning("review queue: cannot remove %s (%s)", path, exc.strerror or exc)
            return False

    def summary(self) -> dict:
        """Counts for the page and ``review list``: ``{"total", "pending", "reviewed", "by_label": {...}}``."""
        records = [r for r in self.records() if r["kind"] != "strip"]
        reviewed = [r for r in records if r["review"] is not None]
        by_label: dict[str, int] = {}
        for record in reviewed:
            by_label[record["review"]["label"]] = by_label.get(record["review"]["label"], 0) + 1
        return {"total": len(records), "pending": len(records) - len(reviewed), "reviewed": len(reviewed), "by_label": by_label,
                "nothing_label": NOTHING}


def _mtime(entry: os.DirEntry) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0


def _size(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0
