"""The reviewed frames in the folder layout ``train`` reads: a folder written atomically, or a zip of the same content.

Layout (``OUT``)::

    OUT/manifest.json                       {"format": "edgekit-review-export", "version": 1, "labels", "background_label",
                                             "frames": [{"file", "label", "model_label", "model_score", "model_sha256",
                                                         "time", "group", "id", "kind"}]}
    OUT/<label>/<group>--<id>.jpg           each reviewed frame whose label is a contract label
    OUT/<background label>/<group>--<id>.jpg  frames reviewed "nothing" (``OUT/nothing/`` when the contract has none)

"skip" and unreviewed frames are not exported, nor are visits' strips (six thumbnails side by side: context
for the reviewer, never a training picture). The group leads each file name, so the frames of one visit
sit together. The folder is written into a hidden temporary sibling, then renamed into place; an earlier
export at ``OUT`` is exchanged with the new one in one ``renameat2(RENAME_EXCHANGE)`` where the kernel has
it (Linux), else moved aside first. A crash leaves the old export or the new one, never a mix.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

from ..common.crash import crash_point
from ..common.files import sync_directory
from .queue import ReviewQueue
from .record import NOTHING, ReviewError

FORMAT = "edgekit-review-export"
VERSION = 1
MANIFEST = "manifest.json"


class ExportError(ReviewError):
    """``--out`` cannot take an export (a file, or a folder that is not an earlier export)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``frames`` exported, per label, and the records left out (and why)."""

    out: str
    frames: int
    by_label: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    unreviewed: int = 0

    def describe(self) -> str:
        labels = ", ".join(f"{label} {count}" for label, count in self.by_label.items()) or "none"
        return (f"{self.out}: {self.frames} reviewed frames exported ({labels}); "
                f"{self.skipped} skipped, {self.unreviewed} not reviewed yet")


def plan(records: Iterable[dict]) -> tuple[dict, list[tuple[str, str]], ExportResult]:
    """``(manifest, [(file in the export, record id)], result)`` for ``records`` (newest first, as the queue lists them)."""
    records = [r for r in records if r["kind"] != "strip"]
    reviewed = [r for r in records if r["review"] is not None]
    newest = records[0] if records else {"labels": [], "background_label": None}
    background = newest.get("background_label")
    labels: list[str] = list(newest.get("labels", []))
    frames, files, counts = [], [], {}
    skipped = 0
    for record in sorted(reviewed, key=lambda r: (r["group"], r["t"], r["id"])):
        answer = record["review"]["label"]
        if answer == "skip":
            skipped += 1
            continue
        label = (background or NOTHING) if answer == NOTHING else answer
        if label not in labels:
            labels.append(label)
        name = f"{label}/{record['group']}--{record['id']}.jpg"
        files.append((name, record["id"]))
        counts[label] = counts.get(label, 0) + 1
        frames.append({
            "file": name, "label": label, "model_label": record["model_label"], "model_score": record["model_score"],
            "model_sha256": record.get("model_sha256", ""), "time": record.get("time"), "group": record["group"],
            "id": record["id"], "kind": record["kind"],
        })
    manifest = {"format": FORMAT, "version": VERSION, "labels": labels, "background_label": background, "frames": frames}
    result = ExportResult("", len(files), dict(sorted(counts.items())), skipped, len(records) - len(reviewed))
    return manifest, files, result


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier export (its manifest says so)."""
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def export_folder(queue: ReviewQueue, out: str | os.PathLike[str]) -> ExportResult:
    """Write the export into ``out`` (replacing an earlier export there); returns what was written.

    Raises:
        ExportError: ``out`` is a file, or a non-empty folder that is not an earlier export.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_export(out):
        raise ExportError(f"--out {out}: the folder holds other files and no {MANIFEST} of an earlier export; give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    manifest, files, result = plan(queue.records())
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for index, (name, record_id) in enumerate(files):
            source = queue.image_path(record_id)
            if source is None:
                raise ExportError(f"{queue.directory}/{record_id}.jpg vanished during the export (the queue's limits); run it again")
            target = tmp / name
            target.parent.mkdir(exist_ok=True)
            _copy_synced(source, target)
            if index == 0:
                crash_point("review-export:first-frame")
        for folder in {tmp / name.split("/")[0] for name, _ in files}:
            sync_directory(folder)
        _write_synced(tmp / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
        sync_directory(tmp)
        crash_point("review-export:tmp-complete")
        _put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(str(out), result.frames, result.by_label, result.skipped, result.unreviewed)


def export_zip(queue: ReviewQueue, handle: IO[bytes]) -> ExportResult:
    """The same content as :func:`export_folder` as a zip written to ``handle`` (frames stored, not recompressed)."""
    manifest, files, result = plan(queue.records())
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, record_id in files:
            source = queue.image_path(record_id)
            if source is None:
                raise ExportError(f"{record_id}.jpg vanished during the export (the queue's limits); try again", 409)
            archive.write(source, name)
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1) + "\n", compress_type=zipfile.ZIP_DEFLATED)
    return result


def _copy_synced(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())


def _write_synced(target: Path, data: bytes) -> None:
    with open(target, "wb") as dst:
        dst.write(data)
        dst.flush()
        os.fsync(dst.fileno())


def _put_in_place(tmp: Path, out: Path) -> None:
    """Rename the complete export ``tmp`` to ``out``: exchanged in one step with an earlier export when possible."""
    if not out.exists():
        os.rename(tmp, out)
        crash_point("review-export:renamed")
    elif out.is_dir() and not any(out.iterdir()):
        os.rmdir(out)
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        crash_point("review-export:exchanged")
        shutil.rmtree(tmp)  # now the old export
    else:  # no atomic exchange here: move the old one aside; _remove_leftovers puts it back after a crash
        old = out.parent / f".{out.name}.old"
        os.rename(out, old)
        crash_point("review-export:old-moved")
        os.rename(tmp, out)
        shutil.rmtree(old)
    sync_directory(out.parent)


def _remove_leftovers(out: Path) -> None:
    """Clear what a crashed export left beside ``out``: put back an old export moved aside, remove temporary folders."""
    old = out.parent / f".{out.name}.old"
    if old.is_dir():
        if not out.exists():
            os.rename(old, out)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for leftover in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False
