"""Which of edgekit's optional dependency sets (``pyproject.toml`` extras) are installed.

A device install (``pip install 'edgekit[edge,serve]'``) still gets the ``edgekit-train``,
``edgekit-convert`` and ``edgekit-pipeline`` commands; they check here first and say in one
line which extra to install, instead of failing later with an ImportError traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

# The import names of the `train` extra's distributions (TensorFlow, scikit-learn, ...).
TRAIN_MODULES = ("tensorflow", "sklearn", "matplotlib", "tqdm", "flatbuffers")


def missing_extra(extra: str, modules: Sequence[str] = TRAIN_MODULES) -> str | None:
    """``None`` when every module of ``modules`` can be imported, else a one-line message naming
    the missing ones and the ``pip install 'edgekit[EXTRA]'`` command (nothing is imported)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"the '{extra}' extra is not installed (no module {', '.join(missing)}): "
        f"pip install 'edgekit[{extra}]' (from a clone: pip install '.[{extra}]')"
    )
