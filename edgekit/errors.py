"""The main job's one exception type (its own module so every stage raises it without an import cycle)."""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A stage failed (exit status 1); the message names the stage and what to look at."""
