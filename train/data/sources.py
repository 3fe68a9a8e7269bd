"""Where photos come from: the roots given with ``--data`` / ``--background`` and their sources.

A model trained on one source learns that source's look (lighting, framing,
breeds, photo style) as much as its classes, so every photo carries the name of
its *source* and the report gives its figures per source. A source can be held
out whole (``--holdout-source``): never trained on, only measured.

* Each root is a source named by its folder (``--data photos``: ``photos``), or
  by the name given as ``--data NAME=DIR``.
* With ``--source-by prefix`` the file-name prefix splits a root further, as in
  folders that gather several collections with the collection in each name
  (``oxford_Bengal_12.jpg`` → ``more_pets:oxford``). The prefix is the leading
  letters and digits before the first ``_`` or ``-``. A root where fewer than half
  the photos have one, or where they give more than :data:`MAX_PREFIXES` different
  ones (ImageNet's ``n01440764_tench.jpg``), keeps its folder's name.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from convert.evaluation.sources import Source, source_argument

from ..errors import DataError

# More distinct prefixes than this in one root: they name items, not collections.
MAX_PREFIXES = 20
_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9]*)[_-]")


def parse_root(value: str | os.PathLike[str], kind: str) -> Source:
    """``"DIR"`` or ``"NAME=DIR"`` → a :class:`convert.evaluation.sources.Source` (the folder is checked by the caller)."""
    name, path = source_argument(str(value))
    path = path.expanduser()
    return Source(name, path.resolve() if path.exists() else path, kind)


def check_unique(roots: Sequence[Source]) -> None:
    """Raise ``DataError`` when two roots share a source name."""
    seen: dict[str, Source] = {}
    for root in roots:
        if root.name in seen:
            raise DataError(
                f"{root.flag} {root.root}: the source name {root.name!r} is also {seen[root.name].flag} "
                f"{seen[root.name].root}; name one of them with NAME=DIR"
            )
        seen[root.name] = root


def prefix_of(path: str | os.PathLike[str]) -> str | None:
    """``oxford_Bengal_12.jpg`` → ``"oxford"``; ``cat.12.jpg`` → ``None``."""
    match = _PREFIX.match(Path(path).name)
    return match.group(1) if match else None


def source_names(root: Source, paths: Iterable[str], source_by: str) -> dict[str, str]:
    """``{path: source}`` for the photos of ``root`` (see the module docstring for the rule)."""
    paths = list(paths)
    if source_by == "prefix" and paths:
        prefixes = {path: prefix_of(path) for path in paths}
        counted = Counter(p for p in prefixes.values() if p)
        if sum(counted.values()) * 2 >= len(paths) and len(counted) <= MAX_PREFIXES:
            return {path: f"{root.name}:{prefix}" if prefix else root.name for path, prefix in prefixes.items()}
    return dict.fromkeys(paths, root.name)


def held_out(source: str, holdout: Iterable[str]) -> bool:
    """Whether ``source`` is one of ``holdout``, or lies in a root named there (``people`` holds ``people:lfw``)."""
    return any(source == name or source.startswith(name + ":") for name in holdout)


def check_holdout(holdout: Sequence[str], sources: Iterable[str]) -> None:
    """Raise ``DataError`` for a ``--holdout-source`` that names no source."""
    known = sorted(set(sources))
    for name in holdout:
        if not any(held_out(source, [name]) for source in known):
            raise DataError(f"--holdout-source {name}: no such source (sources: {known})")
