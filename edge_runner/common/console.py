"""The command lines' shared conventions: exit codes, the error line and the argparse parser.

Every edgekit runner command (``python -m edge_runner``, ``… serve``, ``… watch``,
``edge_runner.deploy.device_check``) follows them:

* exit status ``EXIT_OK`` (0) all good, ``EXIT_FAILED`` (1) some inputs, the camera
  or the server failed, ``EXIT_USAGE`` (2) usage or model error (a missing or
  invalid model is always 2); 130 after Ctrl-C;
* errors are one line on stderr, ``PROG: error: message``, where PROG is
  ``edge_runner``, ``edge_runner serve`` or ``edge_runner watch``; warnings are
  ``PROG: warning: message``.

This module imports nothing of the package, so any module may use it without a cycle.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

PROG = "edge_runner"
SERVE_PROG = f"{PROG} serve"
WATCH_PROG = f"{PROG} watch"

# What a bare ``--camera`` (no SOURCE) means in the runner, ``serve`` and ``watch`` alike:
# the first camera (a Pi camera through picamera2 when installed, else OpenCV device 0).
DEFAULT_CAMERA = "0"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's value for SIGINT


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


def print_error(prog: str, message: str) -> None:
    """Write ``PROG: error: message`` to stderr (one line)."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def print_warning(prog: str, message: str) -> None:
    """Write ``PROG: warning: message`` to stderr (one line)."""
    print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are ``ERROR_PROG: error: …`` and exit 2.

    ``prog`` is what the usage line shows (``python -m edge_runner serve``);
    ``error_prog`` is the error lines' prefix (``edge_runner serve``).
    """

    def __init__(self, *args, error_prog: str = PROG, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.error_prog = error_prog

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.error_prog}: error: {message}\n")


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, needs_extra: str | None = None, prog: str = "",
) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit status when argparse ends the run (``--help``: 0, usage error: 2).

    A ``main(argv) -> int`` can then return instead of raising ``SystemExit``. With ``needs_extra``
    (e.g. ``"train"``), a missing optional dependency is one ``PROG: error:`` line naming the
    ``pip install`` that adds it, and exit 2 (``--help`` still works without it).
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by the parser
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if needs_extra is not None:
        from .extras import missing_extra

        missing = missing_extra(needs_extra)
        if missing:
            print_error(prog or getattr(parser, "error_prog", parser.prog), missing)
            return EXIT_USAGE
    return args
