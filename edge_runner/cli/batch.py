"""Classify many photos: collect the inputs, decode ahead in threads, keep the order.

:func:`collect_inputs` turns the command line's files, directories (searched
recursively) and glob patterns into an ordered list of paths, with a
one-line error for each argument that names nothing usable.
:func:`classify_paths` decodes and classifies in a small thread pool, each thread with its own
interpreter, so decoding overlaps inference (Pillow and the TFLite runtime both
release the GIL); it yields one :class:`Result` per path in input order; a photo that cannot be
decoded becomes a ``Result`` with an ``error``, never an exception.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..core.decoder import decode_photo, map_in_order
from ..core.pool import ClassifierPool
from ..core.image import IMAGE_SUFFIXES, ImageError, find_images

if TYPE_CHECKING:
    from ..core.companion import Companion, LooksLike
    from ..core.model import Classifier, Prediction

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class CollectedInputs:
    """What the command-line arguments named.

    Attributes:
        paths: the files to classify, in argument order (directory and glob
            matches sorted), each once.
        errors: ``"ARG: reason"`` for each argument that named no usable file.
    """

    paths: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """One input's outcome: a ``prediction`` or an ``error`` (``"PATH: reason"``), never both.

    ``looks_like``: what a photo that is not a detection looks like to the ``--looks-like`` companion, if it named one;
    ``vetoed``: the detection ``--looks-like-veto`` turned into "nothing recognised" (``Opinion.vetoed``), else ``None``;
    ``rescued``: the answer ``--looks-like-rescue`` turned into a detection (``Opinion.rescued``), else ``None``.
    """

    source: str
    prediction: Prediction | None = None
    error: str | None = None
    looks_like: LooksLike | None = None
    vetoed: dict | None = None
    rescued: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def collect_inputs(arguments: Iterable[str]) -> CollectedInputs:
    """Expand files, directories (recursively) and glob patterns into image paths.

    A file named explicitly is taken whatever its suffix (decoding decides);
    directories and patterns contribute files with an image suffix
    (``IMAGE_SUFFIXES``), except that a pattern's direct file matches are taken as given.
    Globs support ``**`` (recursive). Each path appears once, at its first position.
    """
    paths: list[str] = []
    errors: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.normpath(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            paths.append(path)

    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            images = [str(image) for image in find_images(path)]
            if not images:
                errors.append(f"{argument}: no images in this directory (looked recursively for {suffixes})")
            for image in images:
                add(image)
        elif path.exists():
            add(argument)
        elif _GLOB_CHARS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            before = len(paths)
            for match in matches:
                if os.path.isdir(match):
                    for image in map(str, find_images(Path(match))):
                        add(image)
                else:
                    add(match)
            if len(paths) == before:
                errors.append(f"{argument}: no files match this pattern")
        else:
            errors.append(f"{argument}: no such file or directory")
    return CollectedInputs(paths, errors)


def classify_paths(
    classifier: Classifier,
    paths: Sequence[str],
    *,
    top_k: int = 3,
    threshold: float | None = None,
    workers: int = 2,
    draft: bool = True,
    companion: Companion | None = None,
) -> Iterator[Result]:
    """Classify ``paths``, yielding results in input order.

    With ``workers >= 1`` and more than one path, a pool of ``workers`` threads
    each decodes a photo and runs it through an interpreter of its own (``classifier``
    plus ``workers - 1`` copies, made on first use): while one thread decodes,
    another's interpreter runs, since Pillow and the TFLite runtime release the GIL.
    Several single-threaded interpreters use a few cores better than one
    multi-threaded interpreter fed by decoding threads: on 2 cores with
    MobileNetV2-224 int8, about 1.9x a naive decode-resize-invoke loop against
    1.3x (see ``tests/benchmarks/bench_runner.py``), at the cost of one
    interpreter (~11 MB for that model) per worker. At most ``2 * workers`` photos are
    in flight, so memory stays flat for any batch size.

    Args:
        classifier: the loaded model; copies share its runtime, contract and thread count.
        paths: image files (see :func:`collect_inputs`).
        top_k: how many best labels each prediction keeps.
        threshold: below this top score (0–1) the label is ``"unknown"``; ``None``: the contract's.
        workers: pool threads (and interpreters); ``0`` does everything in the calling thread.
        draft: let JPEGs much larger than the input decode at reduced size.
        companion: run on each photo that is not a detection, in the same worker (its pixels reused when
            it takes the same input); photos called something of interest never run it, unless it has a veto
            (:meth:`~edge_runner.core.companion.Companion.review`).

    Yields:
        One :class:`Result` per path, in the order of ``paths``; an undecodable
        photo gives a ``Result`` with ``error`` set, never an exception.
    """
    spec = classifier.spec

    def classify_one(path: str, model: Classifier) -> Result:
        decoded = decode_photo(path, spec, draft=draft)
        if not decoded.ok:
            return Result(path, error=decoded.error)
        prediction = model.classify(decoded.pixels, top_k=top_k, threshold=threshold)
        if companion is None:
            return Result(path, prediction=prediction)
        try:
            opinion = companion.review(prediction, path, pixels=decoded.pixels, spec=spec)
        except ImageError:  # decoded once already: a second decode for another input size failing changes nothing
            return Result(path, prediction=prediction)
        return Result(path, prediction=opinion.prediction, looks_like=opinion.looks_like, vetoed=opinion.vetoed,
                      rescued=opinion.rescued)

    if workers <= 0 or len(paths) <= 1:
        # One photo (the cold-start case) needs no pool: don't pay for importing or filling one.
        for path in paths:
            yield classify_one(path, classifier)
        return

    pool = ClassifierPool.around(classifier, size=workers)  # copies made on first use

    def task(path: str) -> Result:
        with pool.acquire() as model:
            return classify_one(path, model)

    yield from map_in_order(task, paths, workers=workers, name="edge_runner-batch")
