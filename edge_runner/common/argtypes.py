"""argparse value types shared by the runner's command lines, with one message shape.

Each type names what it expects and what it received, e.g.
``--top-k: must be a positive integer, received 0``.
"""

from __future__ import annotations

import argparse
from typing import Callable, TypeVar

T = TypeVar("T", int, float)


def bounded(cast: Callable[[str], T], accept: Callable[[T], bool], expected: str) -> Callable[[str], T]:
    """An argparse ``type=``: ``cast`` the text, then require ``accept(value)``."""

    def parse(text: str) -> T:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, received {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, received {value}")
        return value

    parse.__name__ = expected  # argparse quotes a type's name in its own messages
    return parse


positive_int = bounded(int, lambda v: v >= 1, "a positive integer")
non_negative_int = bounded(int, lambda v: v >= 0, "an integer >= 0")
probability = bounded(float, lambda v: 0.0 <= v <= 1.0, "a number from 0 to 1")
port = bounded(int, lambda v: 0 <= v <= 65535, "a port number from 0 to 65535")
positive_float = bounded(float, lambda v: v > 0, "a number > 0")

# The TFLite runtimes ``--runtime`` accepts, in the order they are tried (== runtime.RUNTIMES, without importing numpy).
RUNTIME_CHOICES = ("ai-edge-litert", "tflite-runtime", "tensorflow")


def thread_counts(text: str) -> tuple[int, ...]:
    """An argparse ``type=``: ``"1,2,4"`` → ``(1, 2, 4)``, each count from 1 to 64 (repeats and blanks dropped)."""
    try:
        values = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        values = ()
    if not values or any(not 1 <= value <= 64 for value in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated thread counts from 1 to 64, received {text!r}")
    return values
