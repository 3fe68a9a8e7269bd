"""The converter's two kinds of failure; each class carries its exit status (``exit_status``), which
:func:`edge_runner.common.console.report_error` turns into the one-line error of :mod:`convert.cli`."""

from __future__ import annotations


class ConvertError(ValueError):
    """Unusable input (exit status 2): a missing model or contract, an unknown variant,
    an evaluation or calibration set that cannot be used. The message is one line that
    names the file or argument, what is allowed and what was received."""

    exit_status = 2  # EXIT_USAGE of edge_runner.common.console.report_error


class ConversionFailed(RuntimeError):
    """A variant was produced but breaks an invariant (e.g. an int8 model whose input
    does not take raw pixels exactly); it is not written (exit status 1)."""

    exit_status = 1  # EXIT_FAILED
