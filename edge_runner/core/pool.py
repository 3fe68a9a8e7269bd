"""A fixed set of interpreters shared by request threads.

A TFLite interpreter is not thread-safe, so each :class:`~edge_runner.core.model.Classifier`
serialises its calls with a lock. A web server answering several clients at
once therefore holds ``size`` classifiers of the same model and lends one to
each request; a request that finds them all busy waits for the first one
returned. ``size=1`` is the single-interpreter server (every inference queues on
one lock); ``tests/benchmarks/bench_server.py`` compares the two.
"""

from __future__ import annotations

import os
import queue
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
        runtime: the TFLite runtime (default: :func:`edge_runner.core.runtime.load_runtime`).

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
    ) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an integer of 1 or more, received {size!r}")
        runtime = runtime if runtime is not None else load_runtime()
        first = Classifier(model_path, num_threads=num_threads, runtime=runtime)
        # The others reuse the contract already read and checked by the first.
        members = [first] + [
            Classifier(model_path, num_threads=num_threads, runtime=runtime, spec=first.spec) for _ in range(size - 1)
        ]
        self.path = Path(model_path)
        self.size = size
        self.num_threads = num_threads
        self.template = first
        self._idle: queue.Queue[Classifier] = queue.Queue()
        for member in members:
            self._idle.put(member)

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[Classifier]:
        """Borrow a classifier for the duration of a ``with`` block.

        Raises ``TimeoutError`` when none is free within ``timeout`` seconds.
        """
        try:
            member = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no interpreter became free within {timeout} s (all {self.size} busy)") from None
        try:
            yield member
        finally:
            self._idle.put(member)

    @property
    def idle(self) -> int:
        """How many classifiers are free right now (approximate under concurrency)."""
        return self._idle.qsize()
