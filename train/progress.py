"""Progress output that suits where it goes: a bar on a terminal, plain lines in a log.

On a terminal (stderr is a TTY) a stage shows a tqdm bar that disappears when it ends.
Redirected to a file, a journal or CI, a bar would write a carriage-return update per
step; there the stage writes nothing while it runs and one ``INFO`` line when it ends
(``decode photos: 3000 photos in 41.2 s``), and the epoch loop its own line per epoch.
:func:`predict_rows` runs a Keras model over photos in batches under such a bar.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import numpy as np

from tqdm import tqdm

log = logging.getLogger(__name__)


def on_terminal(stream: Any = None) -> bool:
    """True when ``stream`` (default ``sys.stderr``, where bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Progress:
    """One stage's progress: ``update(n)`` per step, ``close()`` (or ``with``) at the end.

    Args:
        total: steps in the stage.
        desc: what the stage is, e.g. ``"decode photos"``.
        unit: what a step counts, e.g. ``"photo"``.
        enabled: False for ``--quiet``: neither a bar nor a line.
        summary: write the end-of-stage line when there is no bar (off for the epoch bar, whose
            epoch line already says everything).
    """

    def __init__(self, total: int, desc: str, unit: str, *, enabled: bool = True, summary: bool = True):
        self.desc, self.unit = desc, unit
        self.bar_shown = enabled and on_terminal()
        self.line = enabled and summary and not self.bar_shown
        self.done = 0
        self.started = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.bar_shown, leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)

    def set_postfix(self, **values: Any) -> None:
        if self.bar_shown:
            self.bar.set_postfix(**values)

    def close(self) -> None:
        self.bar.close()
        if self.line:
            self.line = False
            plural = "" if self.done == 1 else "s"
            log.info("%s: %d %s%s in %.1f s", self.desc, self.done, self.unit, plural, time.perf_counter() - self.started)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.line = False  # the error says what happened; no "done" line
        self.close()


def configure_logging(verbose: int) -> logging.Handler:
    """Send the ``train`` logger's lines (one per stage and epoch) to stderr; returns the handler to remove later."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("train")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    return handler


def predict_rows(model: Any, pixels: np.ndarray, rows: np.ndarray, batch_size: int, progress: bool,
                 desc: str = "evaluate saved model") -> np.ndarray:
    """``model``'s outputs on raw 0–255 ``pixels[rows]``, in batches: ``float32`` ``(len(rows), K)``, e.g. the
    probabilities of a classifier or the pooled features of its embedding."""
    outputs = []
    with Progress(len(rows), desc, "photo", enabled=progress) as bar:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            outputs.append(np.asarray(model.predict_on_batch(np.asarray(pixels[chunk], dtype=np.float32))))
            bar.update(len(chunk))
    return np.concatenate(outputs).astype(np.float32)
