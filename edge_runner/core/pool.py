"""A fixed set of interpreters shared by request threads.

A TFLite interpreter is not thread-safe, so each :class:`~edge_runner.core.model.Classifier`
serialises its calls with a lock. A web server answering several clients at
once therefore holds ``size`` classifiers of the same model and lends one to
each request; a request that finds them all busy waits for the first one
returned. The runner's batch workers borrow from the same kind of pool, made
with :meth:`ClassifierPool.around` so that copies are made only when needed. ``size=1`` is the single-interpreter server (every inference queues on
one lock); ``tests/benchmarks/bench_server.py`` compares the two.
"""

from __future__ import annotations

import os
import queue
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .model import Classifier
from .runtime import Runtime, load_runtime


class ClassifierPool:
    """``size`` classifiers of one model, lent out one per caller.

    Args:
        model_path: the ``.tflite`` model.
        size: how many interpreters to create (1 or more).
        num_threads: threads per interpreter (``None``: the runtime's default).
        runtime: the TFLite runtime (default: ``first``'s, else :func:`edge_runner.core.runtime.load_runtime`).
        first: an already loaded classifier of the model to lend first.
        lazy: make the other ``size - 1`` classifiers when first needed instead of now.

    Raises:
        ModelError, ContractError, RuntimeUnavailable: as :class:`Classifier` does,
        before the pool is usable.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        size: int = 1,
        num_threads: int | None = None,
        runtime: Runtime | None = None,
        first: Classifier | None = None,
        lazy: bool = False,
    ) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an integer of 1 or more, received {size!r}")
        runtime = runtime if runtime is not None else (first.runtime if first is not None else load_runtime())
        if first is None:
            first = Classifier(model_path, num_threads=num_threads, runtime=runtime)
        self.path = Path(model_path)
        self.size = size
        self.num_threads = num_threads
        self.runtime = runtime
        self.template = first
        self._idle: queue.Queue[Classifier] = queue.Queue()
        self._made = 1
        self._lock = threading.Lock()
        self._idle.put(first)
        while not lazy and self._made < size:
            self._idle.put(self._copy())
            self._made += 1

    @classmethod
    def around(cls, classifier: Classifier, size: int) -> ClassifierPool:
        """A pool lending ``classifier`` and up to ``size - 1`` copies of it, each made when first needed."""
        return cls(classifier.path, size=size, num_threads=classifier.num_threads, first=classifier, lazy=True)

    def _copy(self) -> Classifier:
        # The copies reuse the contract already read and checked by the first.
        return Classifier(self.path, num_threads=self.num_threads, runtime=self.runtime, spec=self.template.spec)

    def _take(self, timeout: float | None, idle: queue.Queue[Classifier]) -> Classifier:
        try:
            return idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            make = self._made < self.size and idle is self._idle
            self._made += make
        if make:
            try:
                return self._copy()
            except BaseException:
                with self._lock:
                    self._made -= 1
                raise
        return idle.get(timeout=timeout)

    def replace(self, other: ClassifierPool) -> None:
        """Lend ``other``'s classifiers from now on (a new model, already loaded: the switch is a few assignments).

        Classifiers borrowed before the switch finish their call on the old model and go back to the old
        generation's queue, which nobody takes from any more; a caller already waiting is served from it.
        """
        with self._lock:
            self.path, self.size, self.num_threads, self.runtime = other.path, other.size, other.num_threads, other.runtime
            self.template, self._made, self._idle = other.template, other._made, other._idle

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[Classifier]:
        """Borrow a classifier for the duration of a ``with`` block.

        Raises ``TimeoutError`` when none is free within ``timeout`` seconds.
        """
        idle = self._idle  # a classifier goes back to the generation it came from (see replace)
        try:
            member = self._take(timeout, idle)
        except queue.Empty:
            raise TimeoutError(f"no interpreter became free within {timeout} s (all {self.size} busy)") from None
        try:
            yield member
        finally:
            idle.put(member)

    @property
    def idle(self) -> int:
        """How many classifiers are free right now (approximate under concurrency)."""
        return self._idle.qsize()
