"""Measuring a model on labelled photos, answer by answer, as the runner would answer.

A model is a ``.tflite`` (run by the runner's own :class:`edge_runner.core.model.Classifier`) or a
training run folder (its ``model.keras`` through :func:`convert.gate.accuracy.predict_keras`); both get
the same pixels from the kit's one decoder (:func:`convert.photos.decode`). Each photo's answer
is the runner's rule: the top label when its score is at least the threshold, else ``unknown``.
Every figure is computed from those answers and the probabilities (:class:`Evaluation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge_runner.core.photo import Photo
from edge_runner.core.spec import UNKNOWN_LABEL, InputSpec

from ..errors import ConvertError
from ..photos import Warn, decode, warn_stderr
from ..thresholds import THRESHOLDS, threshold_rows
from .sources import Source

# Photos decoded and scored at a time: memory stays at a few of them (0.15 MB each at 224 px).
CHUNK = 128


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score pixels.

    Attributes:
        path: the ``.tflite`` file or the training run folder.
        kind: ``"tflite"`` or ``"keras"``.
        spec: its contract (labels, input size, background label, recommended threshold).
        description: e.g. ``"int8 .tflite on ai-edge-litert 1.2.0"``.
        predict: uint8 ``(N, H, W, 3)`` RGB 0–255 → float32 ``(N, K)`` probabilities in label order.
    """

    path: Path
    kind: str
    spec: InputSpec
    description: str
    predict: Callable[[np.ndarray], np.ndarray]


def load_model(path: Path, *, threads: int | None = None, runtime: str | None = None) -> LoadedModel:
    """A ``.tflite`` file (the runner's ``Classifier``) or a training run folder (``model.keras``)."""
    path = Path(path)
    if path.is_dir():
        from ..gate.accuracy import predict_keras
        from ..source import load_keras_model, load_training_output

        source = load_training_output(path)
        model = load_keras_model(source)
        return LoadedModel(path, "keras", source.spec, "Keras model.keras (float32)", lambda px: predict_keras(model, px))
    if not path.is_file():
        raise ConvertError(f"MODEL: {path} is neither a .tflite file nor a training run folder "
                           "(the --out of `python -m train`)")
    from edge_runner.core.model import Classifier
    from edge_runner.common.native_log import LITERT_NOISE, filtered_stderr
    from edge_runner.core.runtime import load_runtime

    with filtered_stderr(LITERT_NOISE):  # LiteRT's XNNPACK start-up INFO line
        classifier = Classifier(path, num_threads=threads, runtime=load_runtime(runtime))

    def predict(pixels: np.ndarray) -> np.ndarray:
        out = np.zeros((len(pixels), classifier.spec.num_classes), np.float32)
        for i, one in enumerate(pixels):
            out[i] = classifier.probabilities(one)
        return out

    runtime_name = f"{classifier.runtime.name} {classifier.runtime.version}"
    return LoadedModel(path, "tflite", classifier.spec, f"{classifier.variant} .tflite on {runtime_name}", predict)


def answer_labels(probabilities: np.ndarray, labels: Sequence[str], threshold: float) -> list[str]:
    """The runner's answers (:meth:`Classifier.classify`) for float ``(N, K)`` probabilities: top label or ``unknown``."""
    top = probabilities.argmax(axis=1)
    return [labels[i] if float(probabilities[n, i]) >= threshold else UNKNOWN_LABEL for n, i in enumerate(top)]


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` (0–1), or ``None`` when ``whole`` is 0."""
    return part / whole if whole else None


def _no_nan(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


@dataclass(frozen=True)
class Evaluation:
    """A model's answers on labelled photos and every figure derived from them.

    Attributes:
        model: the model's path; ``description`` what it is and what ran it.
        spec: its contract. ``threshold`` (0–1) the one in force, ``threshold_from`` where it came from.
        sources: the roots the photos came from.
        photos: the photos that decoded (``Photo``: path, true label, source), in order.
        probabilities: float32 ``(len(photos), K)`` in label order.
        answers: the runner's answer per photo (a label or ``"unknown"``).
        skipped: ``"PATH: reason"`` per photo that could not be decoded.
    """

    model: str
    description: str
    spec: InputSpec
    threshold: float
    threshold_from: str
    sources: tuple[Source, ...]
    photos: tuple[Photo, ...]
    probabilities: np.ndarray
    answers: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def scores(self) -> np.ndarray:
        """float ``(N,)``: each photo's top score (0–1), the one its answer carries."""
        return self.probabilities.max(axis=1).astype(np.float64)

    def indices(self, source: str | None = None) -> list[int]:
        return [i for i, p in enumerate(self.photos) if source is None or p.source == source]

    def class_figures(self, indices: Sequence[int]) -> dict:
        """Per true label: photos, right answers, recall, precision and the count of each wrong answer."""
        figures = {}
        for label in self.spec.labels:
            mine = [i for i in indices if self.photos[i].label == label]
            if not mine:
                continue
            answered = [i for i in indices if self.answers[i] == label]
            right = sum(self.answers[i] == label for i in mine)
            wrong: dict[str, int] = {}
            for i in mine:
                if self.answers[i] != label:
                    wrong[self.answers[i]] = wrong.get(self.answers[i], 0) + 1
            figures[label] = {
                "photos": len(mine), "right": right, "recall": rate(right, len(mine)),
                "answered": len(answered),
                "precision": rate(sum(self.photos[i].label == label for i in answered), len(answered)),
                "wrong_answers": dict(sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))),
            }
        return figures

    def false_alarms(self, indices: Sequence[int]) -> tuple[int, int]:
        """``(background photos given a real label, background photos)`` at the threshold in force."""
        background = [i for i in indices if self.photos[i].label == self.spec.background_label]
        alarms = sum(self.spec.is_detection(self.answers[i]) for i in background)
        return alarms, len(background)

    def threshold_rows(self, indices: Sequence[int]) -> list[dict]:
        """Recall of the real classes and false alarms per threshold (:data:`THRESHOLDS` and the one in force)."""
        thresholds = sorted(set(THRESHOLDS) | {self.threshold})
        labels = self.spec.labels
        background = labels.index(self.spec.background_label) if self.spec.background_label else -1
        truth = np.array([labels.index(self.photos[i].label) for i in indices], dtype=np.int64)
        rows = threshold_rows(self.probabilities[list(indices)], truth, background, thresholds)
        return [_no_nan(row.to_dict()) for row in rows]

    def figures(self, indices: Sequence[int]) -> dict:
        """Photos, accuracy, per-class figures, false alarms and the threshold table over ``indices``."""
        right = sum(self.answers[i] == self.photos[i].label for i in indices)
        out = {"photos": len(indices), "right": right, "accuracy": rate(right, len(indices)),
               "classes": self.class_figures(indices)}
        if self.spec.background_label is not None:
            alarms, negatives = self.false_alarms(indices)
            out.update(false_alarms=alarms, background_photos=negatives, false_alarm=rate(alarms, negatives))
        out["thresholds"] = self.threshold_rows(indices)
        return out

    def mistakes(self) -> list[int]:
        """Indices of the wrong answers, the most confident first (then by path)."""
        wrong = [i for i in range(len(self.photos)) if self.answers[i] != self.photos[i].label]
        scores = self.scores
        return sorted(wrong, key=lambda i: (-scores[i], str(self.photos[i].path)))

    def mistakes_by_kind(self) -> list[int]:
        """The mistakes in turns over their kind (source, true label, answer): the most confident of each kind, then
        the second of each, …; kinds in the order of their most confident mistake. A contact sheet in this order
        shows every kind of mistake, not only the one kind that saturates the scores."""
        rank: dict[tuple, int] = {}
        keyed = []
        for position, i in enumerate(self.mistakes()):
            kind = (self.photos[i].source, self.photos[i].label, self.answers[i])
            rank[kind] = rank.get(kind, -1) + 1
            keyed.append((rank[kind], position, i))
        return [i for _, _, i in sorted(keyed)]

    def to_dict(self) -> dict:
        """``evaluation.json``: everything above, rates as fractions 0–1 (``null`` when there is nothing to count);
        ``mistakes`` in the order of :meth:`mistakes_by_kind`."""
        scores = self.scores
        return {
            "model": self.model, "description": self.description, "labels": list(self.spec.labels),
            "background_label": self.spec.background_label, "threshold": self.threshold,
            "threshold_from": self.threshold_from, "skipped": list(self.skipped),
            **self.figures(self.indices()),
            "sources": [{**s.to_dict(), **self.figures(self.indices(s.name))} for s in self.sources],
            "mistakes": [{"path": str(self.photos[i].path), "source": self.photos[i].source,
                          "true": self.photos[i].label, "answer": self.answers[i], "score": round(float(scores[i]), 6)}
                         for i in self.mistakes_by_kind()],
        }


def threshold_in_force(spec: InputSpec, threshold: float | None) -> tuple[float, str]:
    """``--threshold`` when given, else the contract's recommended one, else 0 (the runner's default)."""
    if threshold is not None:
        return float(threshold), "--threshold"
    if spec.threshold is not None:
        return float(spec.threshold), "the model's contract"
    return 0.0, "none (the contract recommends none)"


def evaluate(model: LoadedModel, sources: Sequence[Source], photos: Sequence[Photo], *,
             threshold: float | None = None, warn: Warn = warn_stderr, progress: bool = True) -> Evaluation:
    """Decode ``photos`` ``CHUNK`` at a time, score them with ``model`` and answer at the threshold in force.

    An unreadable photo is skipped with one ``warn`` line naming it; ``ConvertError`` when none decodes.
    """
    spec = model.spec
    chosen, threshold_from = threshold_in_force(spec, threshold)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(photos), desc="evaluating", unit="photo", leave=False, disable=None)
    kept: list[Photo] = []
    probabilities: list[np.ndarray] = []
    skipped: list[str] = []
    for start in range(0, len(photos), CHUNK):
        chunk = photos[start: start + CHUNK]
        decoded = decode(chunk, spec, warn=warn)
        kept += decoded.photos  # type: ignore[arg-type] - decode returns the photos it was given
        skipped += decoded.skipped
        if len(decoded.photos):
            probabilities.append(model.predict(decoded.pixels))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if not kept:
        raise ConvertError(f"none of the {len(photos)} photos could be decoded (first: {skipped[0] if skipped else '-'})")
    probs = np.concatenate(probabilities).astype(np.float32)
    answers = tuple(answer_labels(probs, spec.labels, chosen))
    return Evaluation(str(model.path), model.description, spec, chosen, threshold_from, tuple(sources), tuple(kept),
                      probs, answers, tuple(skipped))

