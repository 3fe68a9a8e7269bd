"""Finding and loading the model for the command lines: ``--model``, ``$EDGEKIT_MODEL`` or the shipped model.

:func:`resolve_model` picks the file, :func:`load_classifier` loads it (runtime
warnings become ``PROG: warning:`` lines), and :func:`report_model_error` turns
the known model/runtime/contract errors into one ``PROG: error:`` line and the
exit status of :mod:`edge_runner.common.console` (2 for a missing or invalid model).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .assets import shipped_model
from ..common.console import EXIT_FAILED, EXIT_USAGE, PROG, UsageError, print_error, print_warning

if TYPE_CHECKING:
    from .model import Classifier

MODEL_ENV = "EDGEKIT_MODEL"
SHIPPED_MODEL_NAME = "cats_dogs_int8.tflite"


def shipped_model_path() -> Path:
    """The installed ``edgekit_models/cats_dogs_int8.tflite`` (``<repo>/models/`` in a checkout; it may not exist)."""
    return shipped_model(SHIPPED_MODEL_NAME)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """The model to load: ``--model``, else ``$EDGEKIT_MODEL``, else the shipped model if present.

    Raises ``UsageError`` saying ``--model`` is required when none applies.
    """
    if model:
        return Path(model)
    from_env = os.environ.get(MODEL_ENV, "").strip()
    if from_env:
        return Path(from_env)
    shipped = shipped_model_path()
    if shipped.is_file():
        return shipped
    raise UsageError(
        f"--model is required: no model given, ${MODEL_ENV} is not set, and there is no shipped model at {shipped}"
    )


def quiet_native_info():
    """A block without LiteRT's start-up INFO line on fd 2; every other native message passes (see ``native_log``)."""
    from ..common.native_log import LITERT_NOISE, filtered_stderr

    return filtered_stderr(LITERT_NOISE)


def load_classifier(
    model: Path, threads: int | None, runtime_name: str | None, verbose: bool, *, prog: str = PROG,
) -> Classifier:
    """Load the model (warnings become ``PROG: warning:`` lines); errors propagate (see :func:`report_model_error`)."""
    from .model import Classifier
    from .runtime import load_runtime

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with quiet_native_info():
                runtime = load_runtime(runtime_name)
                classifier = Classifier(model, num_threads=threads, runtime=runtime)
        finally:  # shown even when loading fails: a warning may explain the failure
            for warning in caught:
                print_warning(prog, str(warning.message))
    if verbose:
        spec = classifier.spec
        print(f"runtime: {runtime.name} {runtime.version}", file=sys.stderr)
        print(
            f"model: {model} ({classifier.variant}, {classifier.size_bytes / 1e6:.2f} MB, "
            f"input {spec.width}x{spec.height} {classifier.input_dtype}, labels: {', '.join(spec.labels)})",
            file=sys.stderr,
        )
        print(f"interpreter threads: {threads if threads is not None else 'runtime default'}", file=sys.stderr)
    return classifier


def report_model_error(exc: Exception, prog: str = PROG) -> int:
    """Known errors → one ``PROG: error:`` line and the exit status; anything else is a bug and is re-raised.

    A missing or invalid model, contract or runtime is a model error (2); an
    unreadable photo or a failed benchmark is a failed input (1).
    """
    from ..cli.benchmark import BenchmarkError
    from .image import ImageError
    from .model import ModelError
    from .runtime import RuntimeUnavailable
    from .spec import ContractError

    if isinstance(exc, (ModelError, ContractError, RuntimeUnavailable)):
        print_error(prog, str(exc))
        return EXIT_USAGE
    if isinstance(exc, (ImageError, BenchmarkError)):
        print_error(prog, str(exc))
        return EXIT_FAILED
    raise exc
