"""Errors raised by ``train``; the CLI turns them into a one-line message and exit code 2."""

from __future__ import annotations


class TrainError(ValueError):
    """A training run that cannot go ahead; the message names the input and what is wrong."""


class ConfigError(TrainError):
    """An option out of range or inconsistent with the others (message names the flag)."""


class DataError(TrainError):
    """A data directory that cannot be trained on (missing, empty, one class, nothing readable...)."""
