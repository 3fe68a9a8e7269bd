"""A teacher for the head: what an ImageNet classifier sees in the training photos, fitted on the model's features.

Fine-tuning on a few sources teaches the head where its photos came from as much as what is in them (a terrier
from another site answered ``other``). The knowledge is still in the features: a linear map of the fine-tuned
model's own pooled features finds the ImageNet classifier's dog breeds in them (train/README.md, "A rescue head of
its own"). So after fitting, with ``--teacher imagenet`` (the kit's known companion, downloaded once with checks):

1. the teacher runs on each training photo; its outputs are summed into one mass per label (by default the range
   named as the label, ``cats`` and ``dogs`` of :mod:`edge_runner.core.catalog`; else ``--teacher-as
   LABEL=RANGES``), the rest going to the background label;
2. a softmax regression (scikit-learn, L2) maps the fine-tuned model's pooled features of the same photos to
   those masses (soft labels, as weighted rows): :func:`fit_teacher`;
3. that head is used in one of two ways, or both:

   * ``--rescue-limit L`` (:mod:`train.model.rescue`): a photo the model does not call a class of interest at its
     threshold becomes the head's class when the head gives it ``L`` or more;
   * ``--prior-weight β``: folded into the classifier, ``p' = softmax(z + β · z_teacher)`` (:func:`fold_into`), a
     product of experts: the same ``Dense`` layer with other weights. Measured, off by default: at the threshold
     the run's own rule picks, it trades unseen pets for fewer unseen people and animals called a pet.

Only training photos are used (never validation or held-out ones).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..progress import Progress, predict_rows

if TYPE_CHECKING:
    from edge_runner.core.spec import InputSpec

    from ..config import TrainConfig
    from .network import Network

log = logging.getLogger(__name__)

# L2 strength of the regression (scikit-learn's C: larger fits the teacher closer). Chosen in the fold runs of
# train/README.md (footnote 14): with C 1 it adds 3-5 times more non-pets called a pet for the same dogs found.
TEACHER_C = 0.2


@dataclass(frozen=True)
class TeacherPlan:
    """Which classifier teaches, and what its outputs mean for each of the model's labels.

    Attributes:
        model: the teacher's ``.tflite`` (checked when loaded).
        labels: its labels file, or ``None`` (found as ``--looks-like`` finds them).
        name: how the report names it (``imagenet`` or the file's name).
        ranges: for each of the model's labels in output order, the teacher outputs summed into its mass;
            ``()`` for the background label, which takes what the others leave.
    """

    model: Path
    labels: Path | None
    name: str
    ranges: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Taught:
    """The teacher's head, fitted: float32 ``coef`` ``(K, C)`` and ``intercept`` ``(K,)`` on the pooled features.

    Attributes:
        teacher: :class:`TeacherPlan`'s ``name``.
        photos: training photos it was fitted on.
        mass: the teacher's mean mass per label on them, ``{label: 0–1}``.
        agreement: share of those photos where the head's best label is the teacher's.
        seconds: time taken (features, teacher, regression).
    """

    teacher: str
    coef: np.ndarray
    intercept: np.ndarray
    photos: int
    mass: dict[str, float]
    agreement: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "photos": self.photos, "mass": {k: round(v, 4) for k, v in self.mass.items()},
                "agreement": round(self.agreement, 4), "regularisation_C": TEACHER_C, "seconds": round(self.seconds, 1)}


def plan_teacher(config: "TrainConfig", spec: "InputSpec") -> TeacherPlan | None:
    """The teacher ``config`` asks for, downloaded if need be; ``None`` when there is none (``--teacher none``).

    ``--teacher imagenet`` maps each label of interest to the ImageNet classifier's range of the same name (``cats``,
    ``dogs``) unless ``--teacher-as`` says otherwise; a ``.tflite`` teacher needs ``--teacher-as`` for every one.

    Raises:
        ConfigError: a label without outputs, an unknown range name, no background label, a failed download.
    """
    from edge_runner.core.catalog import IMAGENET, fetch, named_ranges
    from edge_runner.core.companion import CompanionError

    choice = config.teacher
    if choice == "none":
        return None
    given = dict(_label_ranges(config.teacher_as))
    unknown = sorted(set(given) - set(spec.interest_labels))
    if unknown:
        raise ConfigError(f"--teacher-as {unknown[0]}: not one of the labels of interest {list(spec.interest_labels)}")
    if spec.background_label is None:
        raise ConfigError(f"--teacher {choice}: needs a background label (the teacher's other outputs go to it)")
    known_teacher = choice == IMAGENET.name
    wanted = {label: given.get(label, label if known_teacher and label in IMAGENET.ranges else None)
              for label in spec.interest_labels}
    missing = [label for label, ranges in wanted.items() if ranges is None]
    if missing:
        hint = f"; {IMAGENET.name} names {named_ranges(IMAGENET)}" if known_teacher else ""
        raise ConfigError(f"--teacher-as: no teacher outputs for the label {missing[0]!r}; give {missing[0]}=RANGES{hint}")
    try:
        indices = {label: _indices(ranges, IMAGENET.ranges if known_teacher else {}) for label, ranges in wanted.items()}
    except ValueError as exc:
        raise ConfigError(f"--teacher-as: {exc}") from None
    ranges = tuple(indices.get(label, ()) for label in spec.labels)
    if not known_teacher:  # a .tflite file: TrainConfig.validate checked that it exists
        path = Path(choice).expanduser()
        return TeacherPlan(path.resolve(), None, path.name, ranges)
    try:
        fetched = fetch(IMAGENET)
    except CompanionError as exc:
        reason = str(exc).split(": ", 1)[-1].replace("--looks-like", "--teacher")
        raise ConfigError(f"--teacher {IMAGENET.name}: {reason}") from None
    return TeacherPlan(fetched.model, fetched.labels, IMAGENET.name, ranges)


def _label_ranges(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for text in values:
        label, equals, ranges = str(text).partition("=")
        if not equals or not label.strip() or not ranges.strip():
            raise ConfigError(f"--teacher-as must be LABEL=RANGES such as dogs=152-269 or dogs=dogs, received {text!r}")
        pairs.append((label.strip(), ranges.strip()))
    return pairs


def _indices(ranges: str, named: dict[str, str]) -> tuple[int, ...]:
    """``"dogs"`` or ``"152-269,282"`` → output indices (named ranges resolved)."""
    from argparse import ArgumentTypeError

    from edge_runner.core.companion_flags import output_ranges

    text = ",".join(named.get(part.strip(), part.strip()) for part in ranges.split(","))
    try:
        result = output_ranges(text)
    except ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None
    if isinstance(result, str):
        raise ValueError(f"{ranges!r} is not a named range ({', '.join(named) or 'none without --teacher imagenet'})")
    return result


def fit_teacher(plan: TeacherPlan, network: "Network", pixels: np.ndarray, rows: np.ndarray, labels: tuple[str, ...],
                batch_size: int, progress: bool) -> Taught | None:
    """Fit the teacher's head on the training photos ``pixels[rows]`` (the model's weights are not changed).

    Args:
        pixels: ``uint8`` ``(N, S, S, 3)``, the decoded photos (the kit's preprocessing).
        rows: the training photos' indices into ``pixels``, each once.
        labels: the model's labels, in output order (as ``plan.ranges``).

    Returns:
        The head, or ``None`` when there are too few photos, or the teacher sees fewer than two labels in them.
    """
    start = time.perf_counter()
    if len(rows) < 2 * len(labels):
        log.info("teacher: skipped, %d training photos are too few", len(rows))
        return None
    masses = teacher_masses(plan, pixels, rows, progress)
    if (masses.sum(0) > 0).sum() < 2:
        log.info("teacher: skipped, it sees fewer than two of the labels in the training photos")
        return None
    # the fine-tuned model's pooled features (the classifier's input), float32 (len(rows), C)
    features = predict_rows(network.embed, pixels, rows, batch_size, progress, "teacher: features")
    coef, intercept, predicted = fit_regression(features, masses)
    agreement = float((predicted.argmax(1) == masses.argmax(1)).mean())
    taught = Taught(plan.name, coef, intercept, len(rows), {label: float(m) for label, m in zip(labels, masses.mean(0))},
                    agreement, time.perf_counter() - start)
    log.info("teacher: %s's head fitted on %d training photos (it agrees with the teacher on %.1f%% of them, %.0f s)",
             plan.name, taught.photos, 100 * agreement, taught.seconds)
    return taught


def fold_into(classifier: Any, coef: np.ndarray, intercept: np.ndarray, weight: float) -> None:
    """Add ``weight`` times the regression's logits to a softmax ``Dense`` layer's: ``p' ∝ p · q^weight``.

    ``coef`` float32 ``(K, C)`` and ``intercept`` ``(K,)`` as :func:`fit_regression` returns them; the layer's
    kernel is ``(C, K)``.
    """
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel + weight * coef.T.astype(kernel.dtype), bias + weight * intercept.astype(bias.dtype)])


def teacher_masses(plan: TeacherPlan, pixels: np.ndarray, rows: np.ndarray, progress: bool) -> np.ndarray:
    """float32 ``(len(rows), K)``: the teacher's summed probabilities per label, each row summing to 1."""
    from edge_runner.core.companion import CompanionError
    from edge_runner.core.companion_loader import load_companion
    from edge_runner.core.image import to_input
    from edge_runner.core.loading import quiet_native_info

    try:
        with quiet_native_info():
            companion = load_companion(plan.model, plan.labels)
    except CompanionError as exc:
        raise ConfigError(f"--teacher {exc.args[0].removeprefix('--looks-like ')}") from None
    spec = companion.spec
    same_size = pixels.shape[1:3] == (spec.height, spec.width)
    out = np.zeros((len(rows), len(plan.ranges)), np.float32)
    background = [i for i, r in enumerate(plan.ranges) if not r]
    with companion.pool.acquire() as classifier, Progress(len(rows), "teacher: its outputs", "photo",
                                                          enabled=progress) as bar:
        for n, row in enumerate(rows):
            photo = pixels[row] if same_size else to_input(np.asarray(pixels[row]), spec)
            p = classifier.probabilities(np.ascontiguousarray(photo))
            out[n] = [p[list(r)].sum() if r else 0.0 for r in plan.ranges]
            bar.update(1)
    out = out.clip(0, 1)
    out[:, background[0]] = np.clip(1.0 - out.sum(1), 0.0, 1.0)
    return out / np.maximum(out.sum(1, keepdims=True), 1e-6)


def fit_regression(features: np.ndarray, masses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A softmax regression of ``masses`` (soft labels, float32 ``(n, K)``) on ``features`` ``(n, C)``.

    Each photo is K rows, one per label, weighted by its mass (scikit-learn fits soft labels that way). A label the
    teacher never sees keeps zero weights (a very negative bias, so the fold leaves it to the head).

    Returns:
        ``(coef (K, C), intercept (K,), predicted (n, K))``.
    """
    from sklearn.linear_model import LogisticRegression

    n, k = masses.shape
    x = np.concatenate([features] * k)
    y = np.repeat(np.arange(k), n)
    w = masses.T.reshape(-1)
    keep = w > 1e-6
    model = LogisticRegression(C=TEACHER_C, max_iter=3000).fit(x[keep], y[keep], sample_weight=w[keep])
    coef = np.zeros((k, features.shape[1]), np.float32)
    intercept = np.full(k, -30.0, np.float32)  # a label absent from the fit: log-probability about -30
    if len(model.classes_) == 2:  # scikit-learn's binary form: one row for the second class against the first
        half = model.coef_[0] / 2
        coef[model.classes_] = np.stack([-half, half])
        intercept[model.classes_] = [-model.intercept_[0] / 2, model.intercept_[0] / 2]
    else:
        coef[model.classes_] = model.coef_
        intercept[model.classes_] = model.intercept_
    predicted = model.predict_proba(features)
    full = np.zeros((n, k), np.float32)
    full[:, model.classes_] = predicted
    return coef, intercept, full
