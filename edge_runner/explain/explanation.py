"""Explanations for the runner's command line and web API: decode once, occlude, draw, write.

``python -m edge_runner photo.jpg --explain DIR`` writes ``DIR/<photo stem>.explain.png``
(the occlusion map over the photo) and puts its path in the answer
(``"explanation"`` in ``--json``); ``POST /api/classify?explain=1`` adds
``"explanation": {"png": "data:image/png;base64,…", "grid": [[…]], …}`` to the answer
(see :meth:`edge_runner.explain.occlusion.OcclusionMap.to_dict` for the numbers).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from .heatmap import OVERLAY_MAX_SIDE, overlay, png_data_url, save_png
from ..core.image import ImageError, ImageSource, open_image, preprocess
from .occlusion import OcclusionMap, Occluder

if TYPE_CHECKING:
    from ..core.model import Classifier

SUFFIX = ".explain.png"
EXPLAIN_YES = ("1", "true", "yes")
EXPLAIN_NO = ("0", "false", "no", "")


@dataclass(frozen=True)
class Explanation:
    """An occlusion map and the photo with it drawn over (RGB, at most ``OVERLAY_MAX_SIDE`` px)."""

    map: OcclusionMap
    image: Image.Image

    def to_api(self) -> dict:
        """The web API's ``explanation`` object: the overlay as a PNG data URL plus the grid of numbers."""
        return {"png": png_data_url(self.image), **self.map.to_dict()}


def explain_source(occluder: Occluder, source: ImageSource, *, name: str | None = None, grid: int | None = None,
                   class_index: int | None = None) -> Explanation:
    """Decode ``source`` once, compute its occlusion map, draw the overlay on the photo.

    Raises:
        ImageError: the photo cannot be decoded (message names it).
    """
    spec = occluder.classifier.spec
    # The model gets exactly the pixels the answer was computed from; the drawing gets
    # its own decode at the overlay's size (a JPEG draft differs from the model's draft).
    pixels = preprocess(source, spec, name=name).array
    side = max(OVERLAY_MAX_SIDE, spec.width, spec.height)
    photo = open_image(source, draft_size=(side, side), name=name)
    options = {} if grid is None else {"grid": grid}
    result = occluder.explain(pixels, class_index=class_index, **options)
    return Explanation(result, overlay(photo, result.grid))


class ExplainWriter:
    """Writes ``DIR/<stem>.explain.png`` for each photo; names stay unique within one run (``stem-2`` …)."""

    def __init__(self, out_dir: str | os.PathLike[str], occluder: Occluder) -> None:
        self.out_dir = Path(out_dir)
        self.occluder = occluder
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def _name_for(self, source: str) -> Path:
        stem = Path(source).stem or "photo"
        with self._lock:
            name, n = stem, 1
            while name in self._used:
                n += 1
                name = f"{stem}-{n}"
            self._used.add(name)
        return self.out_dir / f"{name}{SUFFIX}"

    def write(self, source: str) -> Path:
        """Explain one photo file and write its overlay; returns the PNG's path.

        Raises:
            ImageError: the photo cannot be decoded; OSError: the PNG cannot be written.
        """
        explanation = explain_source(self.occluder, source)
        return save_png(explanation.image, self._name_for(source))

    def try_write(self, source: str) -> tuple[str | None, str | None]:
        """``(path, None)``, or ``(None, "PATH: reason")`` when the photo or the PNG fails (a batch goes on)."""
        try:
            return str(self.write(source)), None
        except ImageError as exc:
            return None, str(exc)
        except OSError as exc:  # a full disk or a vanished directory: this photo only
            return None, f"--explain {self.out_dir}: cannot write the overlay of {source} ({exc.strerror or exc})"


def open_writer(out_dir: str | os.PathLike[str], classifier: Classifier) -> ExplainWriter:
    """An :class:`ExplainWriter` into ``out_dir`` (created if needed).

    Raises:
        ValueError: ``out_dir`` is a file or cannot be created (message names ``--explain`` and the reason).
    """
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--explain {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--explain {path}: cannot create the directory ({exc.strerror or exc})") from None
    return ExplainWriter(path, make_occluder(classifier))


def make_occluder(classifier: Classifier) -> Occluder:
    """The occluder the runner and server use (default grid, patch and batch size)."""
    return Occluder(classifier)


def explain_requested(value: str | None) -> bool:
    """Whether the query value of ``explain`` asks for an explanation (absent: no).

    Raises:
        ValueError: a value that is neither yes nor no (names the allowed values and what was received).
    """
    if value is None:
        return False
    text = value.strip().lower()
    if text in EXPLAIN_YES:
        return True
    if text in EXPLAIN_NO:
        return False
    raise ValueError(f"explain must be one of {', '.join(EXPLAIN_YES + EXPLAIN_NO)}, received {value!r}")


# One occluder per served model, made at the first ?explain=1 (it holds its own interpreter).
_occluders: "weakref.WeakKeyDictionary[Classifier, Occluder]" = weakref.WeakKeyDictionary()
_occluders_lock = threading.Lock()


def explain_upload(classifier: Classifier, data: bytes, name: str) -> dict:
    """The web API's ``explanation`` object for an uploaded photo (already decoded once successfully).

    ``{"png": "data:image/png;base64,…", "grid": [[…]], "rows", "cols", "label", "score", "measure", …}``.
    """
    with _occluders_lock:
        occluder = _occluders.get(classifier)
        if occluder is None:
            occluder = _occluders[classifier] = make_occluder(classifier)
    return explain_source(occluder, data, name=name).to_api()
