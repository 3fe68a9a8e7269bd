"""Keeping TensorFlow's start-up and converter log lines off the user's terminal.

TensorFlow prints absl/oneDNN/CUDA notices on import and the converter prints a
screenful per call, straight from C++ to file descriptors 1 and 2, where
``TF_CPP_MIN_LOG_LEVEL`` does not reach them all. Exceptions still propagate.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # see edge_runner.native_log: failures still raise


def silenced(function: Callable[[], Any]) -> Any:
    """Call ``function()`` with fds 1 and 2 (and Python's stdout and warnings) sent to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            return function()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def import_tensorflow() -> Any:
    """``import tensorflow`` without its INFO start-up notices (warnings and errors still show); returns the module."""
    from edge_runner.native_log import import_quietly

    return import_quietly("tensorflow")


def quiet_classifier(*args: Any, **kwargs: Any) -> Any:
    """``edge_runner.Classifier(*args, **kwargs)`` without LiteRT's "Created ... XNNPACK delegate" INFO line."""
    from edge_runner.model import Classifier
    from edge_runner.native_log import LITERT_NOISE, filtered_stderr

    with filtered_stderr(LITERT_NOISE):
        return Classifier(*args, **kwargs)
