"""Errors raised by ``train``; each carries its exit status (2), which the CLI reports in one line."""

from __future__ import annotations


class TrainError(ValueError):
    """A training run that cannot go ahead; the message names the input and what is wrong."""

    exit_status = 2  # EXIT_USAGE of edge_runner.common.console.report_error


class ConfigError(TrainError):
    """An option out of range or inconsistent with the others (message names the flag)."""


class DataError(TrainError):
    """A data directory that cannot be trained on (missing, empty, one class, nothing readable...)."""
