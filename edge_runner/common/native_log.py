"""What native libraries (TensorFlow, its converter, LiteRT) write straight to file descriptors 1 and 2.

Python's ``sys.stdout``/``sys.stderr`` and ``TF_CPP_MIN_LOG_LEVEL`` do not reach
all of it, so both tools here redirect the file descriptors themselves, around
one block or call:

- :func:`filtered_stderr` captures fd 2 and replays every line except the
  INFO-level ones, so warnings and errors (``W…``, ``E…``, ``F…`` lines, Python
  tracebacks) still reach the user, in order. For imports and interpreters:
  since TensorFlow 2.16 the "oneDNN custom operations are on" and "Could not
  find cuda drivers" lines come from absl's C++ logging before it is
  initialised, on every ``import tensorflow``, whatever the variable says.
- :func:`silenced` sends fds 1 and 2 (and Python's stdout and warnings) to
  /dev/null. For the TFLite converter and quantisation debugger, which print a
  screenful per call and report a failure by raising, so nothing is lost.

After start-up, the kit's commands keep ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it:
TensorFlow 2.21 logs harmless ERROR lines during training ("NodeDef mentions attribute
use_unbounded_threadpool ... Unknown attributes will be ignored", "failed call to cuInit"
without a GPU), and an error that stops the run is raised as a Python exception, which is
printed whatever the level. ``TF_CPP_MIN_LOG_LEVEL=0`` shows everything again.

Standard library only: TensorFlow is imported (by :func:`import_quietly`) only when asked for.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Callable, Iterator, Pattern, Sequence

# absl's C++ INFO lines ("I0000 00:00:1796163041.341537   21387 port.cc:153] ...") and the
# notice absl prints before its first line.
INFO_NOISE: tuple[Pattern[str], ...] = (
    re.compile(r"^I\d{4} [\d:.]+\s+\d+ \S+:\d+\] "),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
)
# LiteRT/TFLite's one INFO line per process, printed when the first interpreter is built.
LITERT_NOISE: tuple[Pattern[str], ...] = (re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),)
# TensorFlow's GPU build logs an ERROR when CUDA fails to start. On a machine with no NVIDIA
# driver at all that is the expected outcome (it then runs on the CPU), not an error.
NO_GPU_NOISE: tuple[Pattern[str], ...] = (re.compile(r"^E\d{4} [\d:.]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"),)


def has_nvidia_driver() -> bool:
    """True when the NVIDIA kernel driver is loaded (Linux: ``/proc/driver/nvidia``)."""
    return os.path.exists("/proc/driver/nvidia")


@contextlib.contextmanager
def filtered_stderr(drop: Sequence[Pattern[str]] = INFO_NOISE) -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards write its lines back, minus those matching ``drop``.

    A no-op when ``sys.stderr`` has no file descriptor (pytest's capture, IDEs).
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not any(p.search(line) for p in drop)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def quiet_tensorflow_logs(env: dict[str, str] | None = None) -> dict[str, str]:
    """Keep TensorFlow's C++ log lines out of the kit's output: ``TF_CPP_MIN_LOG_LEVEL=3`` unless already set.

    The kit's one place for this variable (see the module docstring for why 3 is safe).
    Sets it in ``os.environ`` by default, or in ``env`` (a child process's environment);
    returns the mapping changed. Call it before TensorFlow is imported.
    """
    target = os.environ if env is None else env
    target.setdefault(TF_LOG_LEVEL_ENV, "3")
    return target


def import_quietly(name: str = "tensorflow") -> Any:
    """``importlib.import_module(name)`` without the native INFO start-up lines; returns the module.

    For TensorFlow the devices are listed too, inside the filter, since that is when its GPU
    build tries CUDA (and, without an NVIDIA driver, logs the expected cuInit failure).
    """
    if name in sys.modules:
        return sys.modules[name]
    quiet_tensorflow_logs()
    drop = INFO_NOISE if has_nvidia_driver() else INFO_NOISE + NO_GPU_NOISE
    with filtered_stderr(drop):
        module = importlib.import_module(name)
        if name == "tensorflow":
            module.config.list_physical_devices()
    return module


def silenced(function: Callable[[], Any]) -> Any:
    """Call ``function()`` with fds 1 and 2 (and Python's stdout and warnings) sent to /dev/null; returns its result.

    Exceptions propagate. Unlike :func:`filtered_stderr` nothing is replayed: only
    for calls that report failure by raising (the TFLite converter).
    """
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
