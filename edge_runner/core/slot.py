"""The deployed-model folder of a device (``serve --deploy-dir DIR``; ``watch --deploy-dir DIR`` reads it).

Owns: DIR's layout and every write to it; checking a model before it may become current. May import:
:mod:`edge_runner.common` and the rest of :mod:`edge_runner.core` (the classifier), nothing else.

Layout::

    DIR/models/<sha256[:16]>.tflite     models, named by the hash of their bytes (at most current + previous kept)
    DIR/current.json                    {"version": 1, "current": ENTRY, "previous": ENTRY | null}
    DIR/.lock                           held (flock) by the one process writing
    ENTRY = {"file": "models/<sha256[:16]>.tflite", "sha256": hex, "labels": [...], "deployed_at": ISO 8601}

The switch is one rename of ``current.json``. A deploy: (1) the upload is written to a temporary file in
``models/`` and renamed to its hash name; (2) the caller loads it (every interpreter it needs, a real
:class:`~edge_runner.core.model.Classifier` with an embedded, consistent contract and one inference: see
:func:`check_model`); a model that fails is removed and refused (:class:`DeployError`, status 422); (3) the
first deploy also stores the model that was running, so that it can be rolled back to; (4) ``current.json``
is rewritten (temporary file, fsync, rename, directory fsync), the old current becoming ``previous``;
(5) models neither current nor previous are removed. A rollback swaps current and previous the same way.
A crash (named :func:`~edge_runner.common.crash.crash_point` between every two steps) leaves the old
``current.json`` or the new one, never a mix; leftovers (temporary files, an unreferenced model) are
removed at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ..common.console import EXIT_USAGE
from ..common.crash import crash_point
from ..common.files import write_atomic
from .model import Classifier, read_packed_files
from .spec import CONTRACT_FILENAME

CURRENT = "current.json"
MODELS = "models"
FORMAT_VERSION = 1
_MODEL_NAME = re.compile(r"^[0-9a-f]{16}\.tflite$")
T = TypeVar("T")


class DeployError(Exception):
    """A model that may not become current (``status`` 422), nothing to roll back to (409), a folder that fails (500)."""

    exit_status = EXIT_USAGE

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Entry:
    """One deployed model: ``file`` relative to DIR, its hex SHA-256, its labels, when it became current."""

    file: str
    sha256: str
    labels: tuple[str, ...]
    deployed_at: str

    def to_dict(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "labels": list(self.labels), "deployed_at": self.deployed_at}

    @classmethod
    def from_dict(cls, data: dict) -> Entry:
        entry = cls(str(data["file"]), str(data["sha256"]), tuple(str(x) for x in data["labels"]), str(data["deployed_at"]))
        if not _MODEL_NAME.match(Path(entry.file).name) or entry.file != f"{MODELS}/{Path(entry.file).name}":
            raise ValueError(f"file {entry.file!r} is not models/<hash>.tflite")
        return entry


@dataclass(frozen=True)
class State:
    """What ``current.json`` says (both ``None`` when there is none yet)."""

    current: Entry | None = None
    previous: Entry | None = None


@dataclass(frozen=True)
class Switch:
    """The result of a deploy or rollback: the entry now current, the one before, seconds spent loading and switching."""

    current: Entry
    previous: Entry | None
    load_s: float
    switch_s: float
    unchanged: bool = False


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def check_model(path: Path, *, load: Callable[[Path], Classifier]) -> Classifier:
    """Load ``path`` with ``load`` and prove it works: an embedded contract, consistent with the tensors, one inference.

    Raises:
        DeployError: 422 with one line saying why (the file, the TFLite identifier, the contract, the interpreter).
    """
    try:
        data = path.read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise DeployError(422, "not a TFLite model (missing the 'TFL3' flatbuffer identifier)")
        if CONTRACT_FILENAME not in read_packed_files(data):
            raise DeployError(422, f"no input contract embedded in the model ({CONTRACT_FILENAME}); "
                                   "export it with `python -m convert export`, which embeds one")
        classifier = load(path)
        spec = classifier.spec
        classifier.classify(np.full((spec.height, spec.width, 3), 128, np.uint8))  # it runs, not only loads
        return classifier
    except DeployError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:  # ModelError, ContractError, interpreter failures
        message = str(exc).replace(str(path), "the model").replace(path.name, "the model")
        raise DeployError(422, message) from None


class DeployDir:
    """The folder ``DIR`` (created when missing, unless ``create=False``: a reader). One writer at a time (a thread lock and ``flock``)."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        if not create:
            return
        try:
            (self.root / MODELS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeployError(500, f"--deploy-dir {self.root}: cannot create it ({exc.strerror or exc})") from None

    def path_of(self, entry: Entry) -> Path:
        return self.root / entry.file

    def read(self) -> State:
        """``current.json``; an empty state when there is none. Raises ``DeployError`` (500) for an unreadable one."""
        path = self.root / CURRENT
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return State()
        except (OSError, ValueError) as exc:
            raise DeployError(500, f"{path}: unreadable ({exc})") from None
        try:
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {FORMAT_VERSION}")
            return State(*(Entry.from_dict(data[key]) if data.get(key) else None for key in ("current", "previous")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DeployError(500, f"{path}: not a deploy state ({exc})") from None

    def startup(self) -> tuple[Entry | None, list[str]]:
        """The entry to serve at start (current, else previous, when its file is there with its hash) and warnings."""
        warnings: list[str] = []
        try:
            state = self.read()
        except DeployError as exc:
            return None, [f"{exc}; ignoring it"]
        for role, entry in (("current", state.current), ("previous", state.previous)):
            if entry is None:
                continue
            try:
                digest = hashlib.sha256(self.path_of(entry).read_bytes()).hexdigest()
            except OSError as exc:
                warnings.append(f"{self.root / CURRENT}: the {role} model {entry.file} cannot be read ({exc.strerror or exc})")
                continue
            if digest != entry.sha256:
                warnings.append(f"{self.root / CURRENT}: the {role} model {entry.file} does not have its recorded sha256")
                continue
            return entry, warnings
        return None, warnings

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self):
        """Hold the folder's lock (this process's threads and other processes) for one deploy or rollback."""
        with self._lock, open(self.root / ".lock", "a") as handle:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except ImportError:  # not on Linux: the thread lock alone
                pass
            yield

    def store(self, data: bytes) -> tuple[Path, str]:
        """``data`` as ``models/<sha256[:16]>.tflite`` (temporary file, fsync, rename); returns the path and the hash."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / MODELS / f"{digest[:16]}.tflite"
        if path.is_file() and path.stat().st_size == len(data):
            return path, digest
        self._replace(path, data, "store")
        return path, digest

    def switch(self, current: Entry, previous: Entry | None, step: str) -> None:
        """Make ``current`` current (one rename of ``current.json``); crash points ``STEP:switch-temp``, ``STEP:switched``."""
        state = {"version": FORMAT_VERSION, "current": current.to_dict(), "previous": previous.to_dict() if previous else None}
        self._replace(self.root / CURRENT, (json.dumps(state, indent=2) + "\n").encode("utf-8"), step)

    def prune(self, keep: State) -> None:
        """Remove models that are neither current nor previous, and leftover temporary files."""
        wanted = {Path(e.file).name for e in (keep.current, keep.previous) if e is not None}
        for folder in (self.root, self.root / MODELS):
            for path in folder.iterdir():
                stale = path.name.endswith(".tmp") and path.name.startswith(".")
                if stale or (folder.name == MODELS and _MODEL_NAME.match(path.name) and path.name not in wanted):
                    with contextlib.suppress(OSError):
                        path.unlink()

    def _replace(self, path: Path, data: bytes, step: str) -> None:
        points = (f"{step}:switch-temp", f"{step}:switched") if path.name == CURRENT else (f"{step}:temp-written", f"{step}:renamed")
        try:
            write_atomic(path, data, crash_points=points)
        except OSError as exc:
            raise DeployError(500, f"{path}: cannot write it ({exc.strerror or exc})") from None

    # -- the two operations --------------------------------------------------------------

    def deploy(
        self, data: bytes, *, running: Classifier, load: Callable[[Path], tuple[Classifier, T]], apply: Callable[[T], None],
    ) -> Switch:
        """Store ``data``, ``load`` it (a :class:`DeployError` refuses it), switch ``current.json``, then ``apply`` it.

        ``running``: the model serving now (stored as ``previous`` on the first deploy). ``load(path)`` returns the
        checked classifier and whatever ``apply`` needs (e.g. the interpreters of a pool); ``apply`` swaps them in.
        """
        with self.writing():
            try:
                state = self.read()
            except DeployError:  # a damaged current.json (start warned and served --model): the deploy replaces it
                state = State()
            digest = hashlib.sha256(data).hexdigest()
            if running.sha256 == digest:
                entry = state.current or Entry("", digest, running.labels, "")
                return Switch(entry, state.previous, 0.0, 0.0, unchanged=True)
            path, digest = self.store(data)
            started = time.perf_counter()
            try:
                classifier, loaded = load(path)
            except DeployError:
                if path.name not in {Path(e.file).name for e in (state.current, state.previous) if e is not None}:
                    with contextlib.suppress(OSError):
                        path.unlink()
                raise
            load_s = time.perf_counter() - started
            crash_point("deploy:loaded")
            previous = state.current
            if previous is None or previous.sha256 != running.sha256:  # serving --model: keep it to roll back to
                kept, kept_digest = self.store(running.path.read_bytes())
                previous = Entry(f"{MODELS}/{kept.name}", kept_digest, running.labels, now_iso())
            entry = Entry(f"{MODELS}/{path.name}", digest, classifier.labels, now_iso())
            started = time.perf_counter()
            self.switch(entry, previous, "deploy")
            apply(loaded)
            switch_s = time.perf_counter() - started
            self.prune(State(entry, previous))
            crash_point("deploy:pruned")
            return Switch(entry, previous, load_s, switch_s)

    def rollback(self, *, load: Callable[[Path], tuple[Classifier, T]], apply: Callable[[T], None]) -> Switch:
        """Make ``previous`` current again (and current previous): loaded and checked before the switch.

        Raises:
            DeployError: 409 when there is no previous model; 422 when it no longer loads.
        """
        with self.writing():
            state = self.read()
            if state.current is None or state.previous is None:
                raise DeployError(409, f"nothing to roll back to: {self.root / CURRENT} names no previous model")
            started = time.perf_counter()
            _, loaded = load(self.path_of(state.previous))
            load_s = time.perf_counter() - started
            crash_point("rollback:loaded")
            entry = Entry(state.previous.file, state.previous.sha256, state.previous.labels, now_iso())
            started = time.perf_counter()
            self.switch(entry, state.current, "rollback")
            apply(loaded)
            return Switch(entry, state.current, load_s, time.perf_counter() - started)


__all__ = ["DeployDir", "DeployError", "Entry", "State", "Switch", "check_model"]
