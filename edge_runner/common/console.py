"""The command lines' shared conventions: exit codes, the error line and the argparse parser.

Every edgekit runner command (``python -m edge_runner``, ``… serve``, ``… watch``,
``edge_runner.deploy.device_check``) follows them:

* exit status ``EXIT_OK`` (0) all good, ``EXIT_FAILED`` (1) some inputs, the camera
  or the server failed, ``EXIT_USAGE`` (2) usage or model error (a missing or
  invalid model is always 2); 130 after Ctrl-C;
* errors are one line on stderr, ``PROG: error: message``, where PROG is
  ``edge_runner``, ``edge_runner serve`` or ``edge_runner watch``; warnings are
  ``PROG: warning: message``.

Two helpers every ``main()`` of the kit uses: :func:`dispatch` (the subcommand named by the
first word) and :func:`report_error` (the one exception → exit status mapping: an error class
says its own status in an ``exit_status`` attribute).
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Mapping, Sequence

PROG = "edge_runner"
SERVE_PROG = f"{PROG} serve"
WATCH_PROG = f"{PROG} watch"

# What a bare ``--camera`` (no SOURCE) means in the runner, ``serve`` and ``watch`` alike:
# the first camera (a Pi camera through picamera2 when installed, else OpenCV device 0).
DEFAULT_CAMERA = "0"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's value for SIGINT


class UsageError(Exception):
    """A command line that cannot run (exit status 2; the usage line is printed first)."""

    exit_status = EXIT_USAGE
    show_usage = True


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


def dispatch(argv: Sequence[str], subcommands: Mapping[str, str]) -> int | None:
    """Run the subcommand that ``argv[0]`` names and return its exit status; ``None`` when it names none.

    ``subcommands`` maps a word to the module whose ``main(argv) -> int`` runs it, e.g.
    ``{"serve": "edge_runner.web.server"}``; that module is imported only here, so a command
    that needs none of them never pays for importing them. Why not argparse subparsers: the
    runner's and the trainer's own arguments start without a command word
    (``python -m edge_runner photo.jpg``, ``python -m train --data …``), and a subparsers
    argument would read ``photo.jpg`` as an unknown command. A photo literally named ``serve``
    is given as ``./serve``.
    """
    if not argv or argv[0] not in subcommands:
        return None
    return import_module(subcommands[argv[0]]).main(list(argv[1:]))


def report_error(
    exc: BaseException, prog: str, *, parser: argparse.ArgumentParser | None = None, interrupted: str | None = None,
) -> int:
    """The kit's one exception → exit status mapping, used in every command's ``main()``.

    * an exception whose class has an ``exit_status`` attribute (``UsageError``, the runner's
      ``ModelError``/``ContractError``/``RuntimeUnavailable``/``ImageError``, ``ConvertError``,
      ``TrainError``, …) prints one ``PROG: error: message`` line (after the usage line when the
      class sets ``show_usage`` and ``parser`` is given) and returns that status;
    * ``KeyboardInterrupt`` prints ``PROG: interrupted`` (or ``interrupted``) and returns 130;
    * ``BrokenPipeError`` (``… | head``: the reader left) points stdout at /dev/null and returns 1;
    * anything else is a bug and is re-raised with its traceback.
    """
    if isinstance(exc, KeyboardInterrupt):
        print(interrupted or f"{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    status = getattr(exc, "exit_status", None)
    if not isinstance(status, int):
        raise exc
    if parser is not None and getattr(exc, "show_usage", False):
        parser.print_usage(sys.stderr)
    print_error(prog, str(exc))
    return status
