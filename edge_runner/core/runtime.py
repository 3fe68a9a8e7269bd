"""The one place that imports a TFLite runtime.

Order of preference: ``ai_edge_litert`` (LiteRT, maintained, fast XNNPACK
kernels) → ``tflite_runtime`` (frozen at 2.14, slow, numpy 1 only) →
``tensorflow.lite`` (works, but costs ~1.6 s of import on a laptop and never
belongs on a Pi).
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..common.console import EXIT_USAGE

RUNTIMES = ("ai-edge-litert", "tflite-runtime", "tensorflow")
INSTALL_HINT = "pip install .[edge]  (or: pip install ai-edge-litert)"


class RuntimeUnavailable(RuntimeError):
    """No usable TFLite runtime, or the one found cannot run here."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class Runtime:
    """A TFLite runtime that was imported successfully.

    Attributes:
        name: one of ``RUNTIMES``.
        version: the package version, or ``"unknown"``.
        interpreter_class: the runtime's ``Interpreter`` class.
    """

    name: str
    version: str
    interpreter_class: Callable[..., Any]

    def make_interpreter(self, model_content: bytes, num_threads: int | None = None) -> Any:
        """Create an interpreter for a model already read into memory.

        Raises ``RuntimeUnavailable`` for the known tflite-runtime/numpy 2 clash and
        ``ValueError`` when the bytes are not a TFLite model.
        """
        try:
            return self.interpreter_class(model_content=model_content, num_threads=num_threads)
        except SystemError as exc:
            # tflite-runtime 2.14's extension was built against numpy 1.x; under
            # numpy 2 it fails to create any interpreter with a bare SystemError.
            if self.name == "tflite-runtime" and int(np.__version__.split(".")[0]) >= 2:
                raise RuntimeUnavailable(
                    f"tflite-runtime {self.version} was built for numpy 1.x and cannot load models "
                    f"under numpy {np.__version__} (it fails with a bare SystemError). "
                    f"Install LiteRT instead: {INSTALL_HINT}; or pin `pip install 'numpy<2'`"
                ) from exc
            raise


def _import_litert() -> Runtime:
    import ai_edge_litert  # type: ignore[import-not-found]
    from ai_edge_litert import interpreter as module  # type: ignore[import-not-found]

    return Runtime("ai-edge-litert", _version("ai-edge-litert", ai_edge_litert), module.Interpreter)


def _import_tflite_runtime() -> Runtime:
    import tflite_runtime  # type: ignore[import-not-found]
    from tflite_runtime import interpreter as module  # type: ignore[import-not-found]

    return Runtime("tflite-runtime", _version("tflite-runtime", tflite_runtime), module.Interpreter)


def _import_tensorflow() -> Runtime:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = importlib.import_module("tensorflow")
    return Runtime("tensorflow", getattr(tf, "__version__", "unknown"), tf.lite.Interpreter)


_IMPORTERS: dict[str, Callable[[], Runtime]] = {
    "ai-edge-litert": _import_litert,
    "tflite-runtime": _import_tflite_runtime,
    "tensorflow": _import_tensorflow,
}
_loaded: dict[str, Runtime] = {}


def _version(dist: str, package: Any = None) -> str:
    # The package's own __version__ first: importing importlib.metadata costs
    # ~25 ms of the runner's cold start.
    version = getattr(package, "__version__", None)
    if isinstance(version, str) and version:
        return version
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def load_runtime(prefer: str | None = None) -> Runtime:
    """Import the first available runtime (or exactly ``prefer``) and return it.

    ``prefer`` may also come from the ``EDGEKIT_RUNTIME`` environment variable,
    which tests use to pin a runtime. Raises ``RuntimeUnavailable`` naming what
    to ``pip install`` when none can be imported.
    """
    prefer = prefer or os.environ.get("EDGEKIT_RUNTIME") or None
    if prefer is not None and prefer not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, received {prefer!r}")
    order = (prefer,) if prefer else RUNTIMES
    failures = []
    for name in order:
        if name in _loaded:
            return _loaded[name]
        try:
            runtime = _IMPORTERS[name]()
        except ImportError as exc:
            failures.append(f"{name}: {exc}")
            continue
        if runtime.name == "tflite-runtime":
            warnings.warn(
                "using tflite-runtime, which is frozen at 2.14 and much slower than LiteRT "
                "(MobileNetV2-224 int8: 59 ms vs 3.2 ms per image on one x86 thread); "
                f"for speed: {INSTALL_HINT}",
                RuntimeWarning,
                stacklevel=2,
            )
        _loaded[name] = runtime
        return runtime
    wanted = f"the runtime {prefer!r}" if prefer else "a TFLite runtime (ai-edge-litert, tflite-runtime or tensorflow)"
    raise RuntimeUnavailable(f"cannot import {wanted}; install one with: {INSTALL_HINT} ({'; '.join(failures)})")
