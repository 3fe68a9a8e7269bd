"""A second opinion for "nothing recognised": a companion classifier names what a background answer looks like.

``--looks-like MODEL.tflite`` loads any image classifier beside the main model (for example
an ImageNet classifier). When the main model's answer is not a detection (its background
label, or ``unknown`` below the threshold), the photo goes through the companion too and
its best labels scoring at least ``--looks-like-floor`` are named::

    elephant.jpg  nothing recognised  (other 0.996; looks like: Indian elephant 53%, tusker 34%)
    {"label": "other", ..., "looks_like": {"label": "Indian elephant", "score": 0.53, "top_k": [...]}}

Photos called a pet never run it (unless a :class:`Veto` asks for it), so it costs nothing on
detections. A :class:`Rescue` works the other way: a photo that is not a detection becomes one when the
companion clearly sees one of the main model's labels (a dog breed the main model answered ``other`` for).
The companion's own "background" output (and its contract's background label) is never named. A label line
lists synonyms after commas (``raccoon, coon``): the first is shown.

Loading (:mod:`edge_runner.core.companion_loader`; the flags: :mod:`edge_runner.core.companion_flags`) checks the
file once, with one line naming the flag: a file, a TFLite model, one ``(1, H, W, 3)`` image input and one
``(1, N)`` probability output, as many labels as outputs. Its input size is its own; its
pixels come from the kit's one preprocessing (:func:`edge_runner.core.image.preprocess`),
reused from the main model's when both take the same size. A model with an edgekit contract
is fed as the kit's models are; any other must take integer pixels (uint8/int8 input, the
normalisation in its quantisation: see :data:`edge_runner.core.model.RAW_TENSOR_INPUT`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .image import to_input
from .model import Classifier, LabelScore, ModelError
from .spec import UNKNOWN_LABEL

if TYPE_CHECKING:
    from .image import ImageInput
    from .model import Prediction
    from .spec import InputSpec

# The default floor: the companion must give its best label at least this probability to be named. On the 426
# ImageNet sample photos of `other/` the ImageNet classifier's name is right for 84% of them at 0.1 (99% named),
# 85% at 0.2 (96% named), 89% at 0.3 (88%): 0.2 drops the near-ties of a 1,000-way model and keeps nearly every
# real answer (tests/benchmarks/bench_looks_like.py; README: "What it is not").
DEFAULT_FLOOR = 0.2
MOST_NAMED = 3  # labels named at most (all at or above the floor)
BACKGROUND_NAMES = frozenset({"background"})  # a companion's own "nothing" output, never named
# The camera: name a background scene at most this often (a scene lasts seconds; every frame would double the cost).
CAMERA_EVERY_S = 1.0


class CompanionError(ModelError):
    """A ``--looks-like`` model or labels file that cannot be used; the message names the flag and the file."""


@dataclass(frozen=True)
class LooksLike:
    """What a "nothing recognised" photo looks like to the companion.

    Attributes:
        label: the best label's name (its first synonym), never the companion's background.
        score: its probability, 0–1, at least the floor.
        top_k: up to :data:`MOST_NAMED` labels at or above the floor, best first (``label`` first).
    """

    label: str
    score: float
    top_k: tuple[LabelScore, ...]

    def to_dict(self) -> dict:
        """The ``"looks_like"`` object of ``--json`` and the web API."""
        return {
            "label": self.label,
            "score": round(float(self.score), 6),
            "top_k": [{"label": item.label, "score": round(float(item.score), 6)} for item in self.top_k],
        }

    def text(self) -> str:
        """``raccoon 71%`` (``, badger 24%`` for each further label above the floor)."""
        return ", ".join(f"{item.label} {item.score * 100:.0f}%" for item in self.top_k)


def looks_like_dict(looks: LooksLike | None) -> dict | None:
    """``looks.to_dict()``, or ``None`` (JSON ``null``: the companion ran or could run, and named nothing)."""
    return looks.to_dict() if looks is not None else None


@dataclass(frozen=True)
class Veto:
    """``--looks-like-veto P``: a detection the companion does not back becomes "nothing recognised".

    Attributes:
        classes: the companion's outputs that count as "something of interest" (for the ImageNet model and a pet
            detector: its dog breeds and domestic cats, ``152-269,282-286``).
        limit: 0–1; a detection whose companion mass on ``classes`` is below it is vetoed.
        only_for: ``--looks-like-veto-only-for``: veto only when the companion's best guess outside ``classes``
            (and its background output) is one of these outputs, e.g. the ImageNet model's other animals, so that
            a cat it calls a carton or a bucket stays a cat; ``None``: whatever it guesses.
    """

    classes: tuple[int, ...]
    limit: float
    only_for: frozenset[int] | None = None

    def mass(self, probabilities: np.ndarray) -> float:
        """The companion's probability on :attr:`classes` (float32 ``(N,)`` in, 0–1 out)."""
        return float(probabilities[list(self.classes)].sum())

    def acts_on(self, probabilities: np.ndarray, skip: frozenset[int]) -> bool:
        """Whether the companion's best guess in float32 ``(N,)`` ``probabilities`` outside :attr:`classes` and
        ``skip`` (outputs that name nothing) is one of :attr:`only_for` (always true without it)."""
        if self.only_for is None:
            return True
        rivals = probabilities.copy()
        rivals[list(self.classes)] = -1.0
        rivals[list(skip)] = -1.0
        return int(np.argmax(rivals)) in self.only_for


@dataclass(frozen=True)
class Rescue:
    """``--looks-like-rescue P``: an answer that is not a detection becomes one when the companion sees it.

    Attributes:
        labels: ``((label, outputs), ...)``: each of the main model's labels of interest it may give, with the
            companion outputs that mean it (the ImageNet model and the kit's pet model: ``("cats", 282-286)``,
            ``("dogs", 152-269)``).
        limit: 0–1; the label whose outputs add up to the most becomes the answer when that mass reaches it.
    """

    labels: tuple[tuple[str, tuple[int, ...]], ...]
    limit: float

    def pick(self, probabilities: np.ndarray) -> tuple[str, float] | None:
        """``(label, mass)`` for float32 ``(N,)`` companion ``probabilities`` (mass 0–1), or ``None`` below the limit."""
        label, mass = max(((label, float(probabilities[list(outputs)].sum())) for label, outputs in self.labels),
                          key=lambda item: item[1])
        return (label, mass) if mass >= self.limit else None


@dataclass(frozen=True)
class Opinion:
    """What the companion adds to one answer.

    Attributes:
        prediction: the answer to report: the main model's, or with a veto its background label (``unknown``
            for a model without one), ``detected`` false.
        looks_like: what a photo that is not a detection looks like, or ``None``.
        vetoed: for a vetoed detection ``{"label", "score", "mass"}`` (the main model's answer and the companion's
            mass on the veto classes), else ``None``.
        rescued: for a rescued answer ``{"label", "score", "mass"}`` (the main model's answer, and the companion's
            mass on the new label's outputs, which is also the new answer's score), else ``None``.
    """

    prediction: Prediction
    looks_like: LooksLike | None = None
    vetoed: dict | None = None
    rescued: dict | None = None

    def annotate(self, record: dict, companion: Companion) -> dict:
        """Add ``"looks_like"`` (and with a veto ``"vetoed"``, with a rescue ``"rescued"``) to a ``--json`` / API
        ``record``; returns it."""
        record["looks_like"] = looks_like_dict(self.looks_like)
        if companion.veto is not None:
            record["vetoed"] = self.vetoed
        if companion.rescue is not None:
            record["rescued"] = self.rescued
        return record


class Companion:
    """A loaded companion classifier: :meth:`looks_like` names what a photo looks like, or ``None``;
    :meth:`review` adds that (and a :class:`Veto`) to a main model's answer.

    Thread-safe: it lends one of up to ``pool_size`` interpreters per call. ``calls`` counts its inferences.
    """

    def __init__(self, classifier: Classifier, names: tuple[str, ...], *, floor: float, skip: frozenset[int],
                 pool_size: int = 1, labels_from: str = "", veto: Veto | None = None,
                 rescue: Rescue | None = None) -> None:
        from .pool import ClassifierPool

        self.path = classifier.path
        self.spec = classifier.spec
        self.names = names
        self.floor = floor
        self.skip = skip
        self.labels_from = labels_from
        self.veto = veto
        self.rescue = rescue
        self.pool = ClassifierPool.around(classifier, size=max(1, pool_size))
        self.calls = 0
        self._count = threading.Lock()

    def shares_input(self, spec: InputSpec | None) -> bool:
        """Whether pixels prepared for ``spec`` are exactly this model's (same size, resize filter and crop)."""
        mine = self.spec
        return spec is not None and (spec.height, spec.width, spec.resize, spec.crop) == (
            mine.height, mine.width, mine.resize, mine.crop)

    def looks_like(self, source: ImageInput, *, pixels: np.ndarray | None = None,
                   spec: InputSpec | None = None) -> LooksLike | None:
        """Run the companion on one photo; its best labels at or above the floor, or ``None``.

        Args:
            source: the photo (path, bytes, Pillow image or ``uint8`` ``(H, W, 3)`` RGB frame), decoded
                again only when ``pixels`` cannot be reused.
            pixels: ``uint8`` ``(h, w, 3)`` already prepared for ``spec`` (the main model's), or ``None``.
            spec: the contract ``pixels`` were prepared for.

        Raises:
            ImageError: ``source`` cannot be decoded (only when it has to be).
        """
        return self.name(self.probabilities(source, pixels=pixels, spec=spec))

    def probabilities(self, source: ImageInput, *, pixels: np.ndarray | None = None,
                      spec: InputSpec | None = None) -> np.ndarray:
        """The companion's float32 ``(N,)`` probabilities for one photo (arguments as :meth:`looks_like`)."""
        if pixels is None or not self.shares_input(spec):
            pixels = to_input(source, self.spec)
        with self.pool.acquire() as model:
            probabilities = model.probabilities(pixels)
        with self._count:
            self.calls += 1
        return probabilities

    def review(self, prediction: Prediction, source: ImageInput, *, pixels: np.ndarray | None = None,
               spec: InputSpec | None = None) -> Opinion:
        """The companion's word on one answer of the main model (whose contract is ``spec``).

        Not a detection: what it looks like; with a :class:`Rescue`, the label it picks instead when it sees one
        (a detection then, whose score is the companion's mass). A detection: nothing, and the companion does not
        run, unless a :class:`Veto` is set; then a detection whose companion mass on the veto classes is below its
        limit (and, with ``only_for``, whose best other guess is one of those outputs) becomes the background label
        (``unknown`` without one), with what it looks like.
        """
        if not prediction.detected:
            probabilities = self.probabilities(source, pixels=pixels, spec=spec)
            picked = self.rescue.pick(probabilities) if self.rescue is not None else None
            if picked is None:
                return Opinion(prediction, self.name(probabilities))
            label, mass = picked
            rescued = {"label": prediction.label, "score": round(float(prediction.score), 6), "mass": round(mass, 6)}
            return Opinion(replace(prediction, label=label, score=mass, detected=True), rescued=rescued)
        if self.veto is None:
            return Opinion(prediction)
        probabilities = self.probabilities(source, pixels=pixels, spec=spec)
        if not self.vetoes(probabilities):
            return Opinion(prediction)
        mass = self.veto.mass(probabilities)
        background = spec.background_label if spec is not None else None
        answer = replace(prediction, label=background or UNKNOWN_LABEL, detected=False)
        vetoed = {"label": prediction.label, "score": round(float(prediction.score), 6), "mass": round(mass, 6)}
        return Opinion(answer, self.name(probabilities), vetoed)

    def vetoes(self, probabilities: np.ndarray) -> bool:
        """Whether its :class:`Veto` turns down a detection, given the companion's float32 ``(N,)`` probabilities
        (``False`` without a veto)."""
        veto = self.veto
        return veto is not None and veto.mass(probabilities) < veto.limit and veto.acts_on(probabilities, self.skip)

    def name(self, probabilities: np.ndarray) -> LooksLike | None:
        """The best labels of float32 ``(N,)`` ``probabilities``, background skipped, at or above the floor."""
        named = []
        for index in np.argsort(-probabilities, kind="stable"):
            score = float(probabilities[index])
            if score < self.floor or len(named) == MOST_NAMED:
                break
            if int(index) not in self.skip:
                named.append(LabelScore(self.names[index].split(",")[0].strip(), score))
        return LooksLike(named[0].label, named[0].score, tuple(named)) if named else None

    def describe(self) -> dict:
        """``GET /api/model``'s ``"looks_like"`` object and what ``--verbose`` says."""
        veto = None
        if self.veto is not None:
            veto = {"limit": self.veto.limit, "classes": len(self.veto.classes)}
            if self.veto.only_for is not None:
                veto["only_for"] = len(self.veto.only_for)
        rescue = None
        if self.rescue is not None:
            rescue = {"limit": self.rescue.limit, "labels": {label: len(outputs) for label, outputs in self.rescue.labels}}
        return {"file": self.path.name, "labels": len(self.names), "labels_from": self.labels_from,
                "floor": self.floor, "input": [self.spec.height, self.spec.width], "veto": veto, "rescue": rescue}


class Throttle:
    """A camera's companion: names a background scene at most once per ``every_s`` and repeats the last answer between.

    A detection forgets the answer, so the next background frame is named afresh.
    """

    def __init__(self, companion: Companion, every_s: float = CAMERA_EVERY_S) -> None:
        self.companion, self.every_s = companion, every_s
        self._last: tuple[float, LooksLike | None] | None = None

    def frame(self, frame: ImageInput, detected: bool, *, pixels: np.ndarray | None = None,
              spec: InputSpec | None = None, now: float | None = None) -> LooksLike | None:
        """The frame's :class:`LooksLike` (or ``None``); ``None`` for a detection. ``now``: ``time.monotonic()`` s."""
        if detected:
            self._last = None
            return None
        now = time.monotonic() if now is None else now
        if self._last is None or now - self._last[0] >= self.every_s:
            self._last = (now, self.companion.looks_like(frame, pixels=pixels, spec=spec))
        return self._last[1]
