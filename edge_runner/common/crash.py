"""Named crash points for the kill-at-each-step tests: ``EDGEKIT_CRASH_AT=NAME`` ends the process there.

A power cut can stop the kit between any two writes. Code that must leave either the old
or the new state (the review queue, an export, a deployment) calls :func:`crash_point` with
a name between its steps; a test sets ``EDGEKIT_CRASH_AT`` to that name in a child process,
which then dies on the spot (``os._exit``: no ``finally``, no flush, no atexit, like the
power going off), and checks what is left on disk. Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os

CRASH_ENV = "EDGEKIT_CRASH_AT"
CRASH_EXIT_STATUS = 86


def crash_point(name: str) -> None:
    """End the process at once (exit status 86) when ``$EDGEKIT_CRASH_AT`` equals ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_EXIT_STATUS)
