"""Finding and loading the model for the command lines: ``--model``, ``$EDGEKIT_MODEL`` or the shipped model.

:func:`add_model_arguments` is the one argument group every runner command shares
(``-m/--model``, ``--runtime``, ``--threads``, ``-v/--verbose``); :func:`resolve_model`
picks the file, :func:`load_classifier` loads it (runtime warnings become ``PROG: warning:``
lines) and :func:`describe_classifier` is what ``--verbose`` says about it. A model that
cannot load raises an error whose class carries its exit status (2), reported by
:func:`edge_runner.common.console.report_error`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .assets import shipped_model
from ..common.argtypes import RUNTIME_CHOICES, positive_int
from ..common.console import PROG, UsageError, print_warning

if TYPE_CHECKING:
    from .model import Classifier

MODEL_ENV = "EDGEKIT_MODEL"
SHIPPED_MODEL_NAME = "cats_dogs_int8.tflite"


def add_model_arguments(
    parser: argparse.ArgumentParser, *, threads_default: int | None = None,
) -> argparse._ArgumentGroup:
    """Add the runner commands' shared ``model`` group: ``-m/--model``, ``--runtime``, ``--threads``, ``-v/--verbose``."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", "-m", metavar="MODEL.tflite",
        help="the .tflite model (its input contract is embedded or beside it as NAME.contract.json); "
        f"default: ${MODEL_ENV}, else the shipped models/{SHIPPED_MODEL_NAME}",
    )
    group.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, default=None,
        help="use exactly this TFLite runtime (default: the first importable, in this order)",
    )
    default = "the runtime's choice, 1 for LiteRT" if threads_default is None else "%(default)s"
    group.add_argument(
        "--threads", type=positive_int, default=threads_default, metavar="N",
        help=f"threads per interpreter (default: {default})",
    )
    group.add_argument("--verbose", "-v", action="store_true", help="say which runtime, model and settings are used")
    return group


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
    """Load the model (warnings become ``PROG: warning:`` lines); errors propagate (reported by :func:`~edge_runner.common.console.report_error`)."""
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
        describe_classifier(classifier)
    return classifier


def describe_classifier(classifier: Classifier) -> None:
    """``--verbose``: the runtime, the model (variant, size, input, labels) and the interpreter threads, on stderr."""
    spec, runtime, threads = classifier.spec, classifier.runtime, classifier.num_threads
    print(f"runtime: {runtime.name} {runtime.version}", file=sys.stderr)
    print(
        f"model: {classifier.path} ({classifier.variant}, {classifier.size_bytes / 1e6:.2f} MB, "
        f"input {spec.width}x{spec.height} {classifier.input_dtype}, labels: {', '.join(spec.labels)})",
        file=sys.stderr,
    )
    print(f"interpreter threads: {threads if threads is not None else 'runtime default'}", file=sys.stderr)
