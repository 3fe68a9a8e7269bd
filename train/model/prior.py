"""The ImageNet prior: what the pretrained network knew about the labels, folded back into the fine-tuned head.

Fine-tuning on a few sources teaches the head where its photos came from as much as what is in them (a terrier
from another site answered ``other``). The knowledge is still in the features: a linear map of the fine-tuned
model's own pooled features finds the ImageNet classifier's dog breeds in them (train/README.md, footnote 14).
So after fitting:

1. an ImageNet classifier (``--prior imagenet``: the kit's known companion, downloaded once with checks) runs on
   each training photo; its outputs are summed into one mass per label (by default the range named as the label,
   ``cats`` and ``dogs`` of :mod:`edge_runner.core.catalog`; else ``--prior-as LABEL=RANGES``), the rest going
   to the background label;
2. a softmax regression (scikit-learn, L2) maps the fine-tuned model's pooled features of the same photos to
   those masses (soft labels, as weighted rows);
3. it is folded into the classifier: ``p' = softmax(z + β · z_prior)``, a product of experts. Both are linear on
   the same features, so this is the same ``Dense`` layer with other weights: the saved model keeps its graph, its
   size and its cost, and ``convert`` and the runner see nothing new.

The threshold is then chosen on the validation photos as before, on the folded model. Only training photos
are used (never validation or held-out ones). It is off by default: at the threshold the run's own rule picks,
it trades unseen pets for fewer unseen people and animals called a pet (train/README.md, "The ImageNet prior").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..progress import Progress

if TYPE_CHECKING:
    from edge_runner.core.spec import InputSpec

    from ..config import TrainConfig
    from .network import Network

log = logging.getLogger(__name__)

# L2 strength of the regression (scikit-learn's C: larger fits the teacher closer). Chosen in the fold runs of
# train/README.md (footnote 14): with C 1 it adds 3-5 times more non-pets called a pet for the same dogs found.
PRIOR_C = 0.2


@dataclass(frozen=True)
class PriorPlan:
    """Which classifier teaches, and what its outputs mean for each of the model's labels.

    Attributes:
        model: the teacher's ``.tflite`` (checked when loaded).
        labels: its labels file, or ``None`` (found as ``--looks-like`` finds them).
        name: how the report names it (``imagenet`` or the file's name).
        ranges: for each of the model's labels in output order, the teacher outputs summed into its mass;
            ``()`` for the background label, which takes what the others leave.
        weight: β, the prior's weight in the folded head (0–10).
    """

    model: Path
    labels: Path | None
    name: str
    ranges: tuple[tuple[int, ...], ...]
    weight: float


@dataclass(frozen=True)
class PriorFit:
    """What folding the prior did, for the report.

    Attributes:
        teacher, weight: as :class:`PriorPlan`'s ``name`` and ``weight``.
        photos: training photos it was fitted on.
        mass: the teacher's mean mass per label on them, ``{label: 0–1}``.
        agreement: share of those photos where the fitted regression's best label is the teacher's.
        seconds: time taken (features, teacher, regression).
    """

    teacher: str
    weight: float
    photos: int
    mass: dict[str, float]
    agreement: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "weight": self.weight, "photos": self.photos,
                "mass": {k: round(v, 4) for k, v in self.mass.items()}, "agreement": round(self.agreement, 4),
                "regularisation_C": PRIOR_C, "seconds": round(self.seconds, 1)}


def plan_prior(config: "TrainConfig", spec: "InputSpec") -> PriorPlan | None:
    """The prior ``config`` asks for, its teacher downloaded if need be; ``None`` when it is off (``--prior none``).

    ``--prior imagenet`` maps each label of interest to the ImageNet classifier's range of the same name (``cats``,
    ``dogs``) unless ``--prior-as`` says otherwise; a ``.tflite`` teacher needs ``--prior-as`` for every one.

    Raises:
        ConfigError: a label without outputs, an unknown range name, no background label, a failed download.
    """
    from edge_runner.core.catalog import IMAGENET, fetch, named_ranges
    from edge_runner.core.companion import CompanionError

    choice = config.prior
    if choice == "none" or config.prior_weight == 0:
        return None
    given = dict(_label_ranges(config.prior_as))
    unknown = sorted(set(given) - set(spec.interest_labels))
    if unknown:
        raise ConfigError(f"--prior-as {unknown[0]}: not one of the labels of interest {list(spec.interest_labels)}")
    if spec.background_label is None:
        raise ConfigError(f"--prior {choice}: needs a background label (the teacher's other outputs go to it)")
    known_teacher = choice == IMAGENET.name
    wanted = {label: given.get(label, label if known_teacher and label in IMAGENET.ranges else None)
              for label in spec.interest_labels}
    missing = [label for label, ranges in wanted.items() if ranges is None]
    if missing:
        hint = f"; {IMAGENET.name} names {named_ranges(IMAGENET)}" if known_teacher else ""
        raise ConfigError(f"--prior-as: no teacher outputs for the label {missing[0]!r}; give {missing[0]}=RANGES{hint}")
    try:
        indices = {label: _indices(ranges, IMAGENET.ranges if known_teacher else {}) for label, ranges in wanted.items()}
    except ValueError as exc:
        raise ConfigError(f"--prior-as: {exc}") from None
    ranges = tuple(indices.get(label, ()) for label in spec.labels)
    if not known_teacher:  # a .tflite file: TrainConfig.validate checked that it exists
        path = Path(choice).expanduser()
        return PriorPlan(path.resolve(), None, path.name, ranges, float(config.prior_weight))
    try:
        fetched = fetch(IMAGENET)
    except CompanionError as exc:
        reason = str(exc).split(": ", 1)[-1].replace("--looks-like", "--prior")
        raise ConfigError(f"--prior {IMAGENET.name}: {reason}") from None
    return PriorPlan(fetched.model, fetched.labels, IMAGENET.name, ranges, float(config.prior_weight))


def _label_ranges(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for text in values:
        label, equals, ranges = str(text).partition("=")
        if not equals or not label.strip() or not ranges.strip():
            raise ConfigError(f"--prior-as must be LABEL=RANGES such as dogs=152-269 or dogs=dogs, received {text!r}")
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
        raise ValueError(f"{ranges!r} is not a named range ({', '.join(named) or 'none without --prior imagenet'})")
    return result


def fold_prior(plan: PriorPlan, network: "Network", pixels: np.ndarray, rows: np.ndarray, labels: tuple[str, ...],
               batch_size: int, progress: bool) -> PriorFit | None:
    """Fit the regression on the training photos ``pixels[rows]`` and fold it into ``network``'s classifier.

    Args:
        pixels: ``uint8`` ``(N, S, S, 3)``, the decoded photos (the kit's preprocessing).
        rows: the training photos' indices into ``pixels``.
        labels: the model's labels, in output order (as ``plan.ranges``).

    Returns:
        What was done, or ``None`` when there are too few photos or labels to fit (nothing changed).
    """
    start = time.perf_counter()
    if len(rows) < 2 * len(labels):
        log.info("prior: skipped, %d training photos are too few", len(rows))
        return None
    masses = teacher_masses(plan, pixels, rows, progress)
    features = pooled_features(network, pixels, rows, batch_size, progress)
    present = masses.sum(0) > 0
    if present.sum() < 2:
        log.info("prior: skipped, the teacher sees fewer than two of the labels in the training photos")
        return None
    coef, intercept, predicted = fit_regression(features, masses)
    fold_into(network.inference.get_layer("classifier"), coef, intercept, plan.weight)
    agreement = float((predicted.argmax(1) == masses.argmax(1)).mean())
    fit = PriorFit(plan.name, plan.weight, len(rows), {label: float(m) for label, m in zip(labels, masses.mean(0))},
                   agreement, time.perf_counter() - start)
    log.info("prior: %s folded in at weight %g (%d training photos, the regression agrees with it on %.1f%%, %.0f s)",
             plan.name, plan.weight, fit.photos, 100 * agreement, fit.seconds)
    return fit


def fold_into(classifier: Any, coef: np.ndarray, intercept: np.ndarray, weight: float) -> None:
    """Add ``weight`` times the regression's logits to a softmax ``Dense`` layer's: ``p' ∝ p · q^weight``.

    ``coef`` float32 ``(K, C)`` and ``intercept`` ``(K,)`` as :func:`fit_regression` returns them; the layer's
    kernel is ``(C, K)``.
    """
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel + weight * coef.T.astype(kernel.dtype), bias + weight * intercept.astype(bias.dtype)])


def teacher_masses(plan: PriorPlan, pixels: np.ndarray, rows: np.ndarray, progress: bool) -> np.ndarray:
    """float32 ``(len(rows), K)``: the teacher's summed probabilities per label, each row summing to 1."""
    from edge_runner.core.companion import CompanionError
    from edge_runner.core.companion_loader import load_companion
    from edge_runner.core.image import to_input
    from edge_runner.core.loading import quiet_native_info
    from edge_runner.core.model import Classifier

    try:
        with quiet_native_info():
            companion = load_companion(plan.model, plan.labels)
    except CompanionError as exc:
        raise ConfigError(f"--prior {exc.args[0].removeprefix('--looks-like ')}") from None
    classifier = Classifier(companion.path, spec=companion.spec)  # one interpreter of its own, used from here only
    spec = classifier.spec
    same_size = pixels.shape[1:3] == (spec.height, spec.width)
    out = np.zeros((len(rows), len(plan.ranges)), np.float32)
    background = [i for i, r in enumerate(plan.ranges) if not r]
    with Progress(len(rows), "prior: teacher", "photo", enabled=progress) as bar:
        for n, row in enumerate(rows):
            photo = pixels[row] if same_size else to_input(np.asarray(pixels[row]), spec)
            p = classifier.probabilities(np.ascontiguousarray(photo))
            out[n] = [p[list(r)].sum() if r else 0.0 for r in plan.ranges]
            bar.update(1)
    out = out.clip(0, 1)
    out[:, background[0]] = np.clip(1.0 - out.sum(1), 0.0, 1.0)
    return out / np.maximum(out.sum(1, keepdims=True), 1e-6)


def pooled_features(network: "Network", pixels: np.ndarray, rows: np.ndarray, batch_size: int,
                    progress: bool) -> np.ndarray:
    """float32 ``(len(rows), C)``: the fine-tuned model's pooled features (the classifier's input) of ``pixels[rows]``."""
    outputs = []
    with Progress(len(rows), "prior: features", "photo", enabled=progress) as bar:
        for begin in range(0, len(rows), batch_size):
            chunk = rows[begin: begin + batch_size]
            outputs.append(np.asarray(network.embed.predict_on_batch(np.asarray(pixels[chunk], np.float32))))
            bar.update(len(chunk))
    return np.concatenate(outputs).astype(np.float32)


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
    model = LogisticRegression(C=PRIOR_C, max_iter=3000).fit(x[keep], y[keep], sample_weight=w[keep])
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
