"""Stage "evaluate" of a training run: save ``model.keras``, reload it as a user would, and measure it.

On the validation photos (and the held-out sources): accuracy and the confusion matrix, with a background class the
threshold table and the recommended threshold, and the figures per source. With ``--rescue-limit`` the teacher's
head is then built into the model's output at that threshold (:mod:`train.model.rescue`), and the result saved and
measured again; with ``--distance-veto`` the veto is built in after it (:mod:`train.model.veto`), and measured again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runner.common.run_layout import RunLayout
from edge_runner.core.spec import InputSpec

from .config import TrainConfig
from .data.dataset import Dataset, Journal
from .errors import TrainError
from .output import save_model
from .progress import predict_rows

if TYPE_CHECKING:
    from .model.network import Network
    from .model.veto import Veto
    from .model.teacher import Taught
    from .report.evaluate import Evaluation
    from .report.thresholds import ThresholdTable

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    """The outcome of stage "evaluate": what was saved and how it did on the validation photos.

    Attributes:
        spec: the contract, with the recommended threshold when there is a background class.
        export: the inference model that was saved; ``saved``: the same, reloaded from ``model.keras``.
        evaluation: accuracy, loss, confusion matrix … of ``saved`` on the validation split.
        thresholds: recall and false alarms per threshold (background class only), or None.
        per_source: figures per source on the validation and held-out photos, and the
            background photos still mistaken for a class (:func:`train.report.breakdown.breakdown`).
    """

    spec: InputSpec
    export: Any
    saved: Any
    evaluation: "Evaluation"
    thresholds: "ThresholdTable | None"
    per_source: dict[str, Any]


def evaluate_saved_model(config: TrainConfig, network: "Network", data: Dataset, spec: InputSpec, journal: Journal, *,
                         export: Any = None, threshold: float | None = None, built: str = "") -> Evaluated:
    """Save ``model.keras`` and ``labels.txt``, reload the model and evaluate it on the validation photos.

    ``export``: the model to save (default: ``network``'s inference model); ``threshold``: keep this recommended
    threshold instead of choosing one, because ``built`` (what was built into the model, e.g. the rescue) uses it.
    """
    import keras

    from .report.breakdown import breakdown
    from .report.evaluate import evaluate_probabilities
    from .model.network import export_model
    from .report.thresholds import threshold_table

    start = time.perf_counter()
    layout = RunLayout(Path(config.out))
    export = export if export is not None else export_model(network)
    save_model(export, layout.model)
    spec.save_labels(layout.labels)
    # Evaluate what was written, reloaded as a user would load it.
    saved = keras.saving.load_model(layout.model)
    probabilities = predict_rows(saved, data.decoded.array, data.val_rows, config.batch_size, config.verbose >= 1)
    held = None
    if len(data.holdout_rows):
        held = predict_rows(saved, data.decoded.array, data.holdout_rows, config.batch_size, config.verbose >= 1,
                            "evaluate held-out sources")
    journal.timings["evaluate"] = journal.timings.get("evaluate", 0.0) + time.perf_counter() - start

    split = data.split
    evaluation = evaluate_probabilities(probabilities, data.y_val, split.labels)
    thresholds = None
    if split.background_label is not None:
        thresholds = threshold_table(probabilities, data.y_val, split.labels, split.background_label, config.max_false_alarm,
                                     config.max_recall_loss)
        if threshold is not None:
            thresholds = replace(thresholds, recommended=threshold,
                                 rule=f"{thresholds.rule}; then {built} was built in at {threshold:g}, which it keeps")
        spec = replace(spec, threshold=thresholds.recommended)
        _log_thresholds(thresholds)
        if data.class_weights and threshold is None:
            journal.notes.append(
                f"Imbalance: each training photo was weighted by n / (K * n_class) in the loss (class weights "
                f"{data.class_weights}), so the {split.background_label!r} class counts as much as each real class."
            )
    per_source = breakdown(split, probabilities, held, spec.threshold)
    _log_per_source(per_source)
    return Evaluated(spec=spec, export=export, saved=saved, evaluation=evaluation, thresholds=thresholds,
                     per_source=per_source)


def evaluate_rescued_model(config: TrainConfig, network: "Network", data: Dataset, evaluated: Evaluated,
                           taught: "Taught", journal: Journal) -> Evaluated:
    """Build the teacher's head into ``evaluated``'s model as a rescue at its threshold, then save and evaluate it."""
    from .model.rescue import build_rescued

    spec = evaluated.spec
    interest = tuple(i for i, label in enumerate(spec.labels) if spec.is_detection(label))
    rescued = build_rescued(evaluated.saved, taught.coef, taught.intercept, interest, spec.threshold,
                            config.rescue_limit)
    spec = replace(spec, rescue={"threshold": spec.threshold, "limit": config.rescue_limit, "teacher": taught.teacher})
    log.info("rescue: %s's head built into the model at threshold %g, limit %g", taught.teacher, spec.threshold,
             config.rescue_limit)
    before = evaluated.evaluation.accuracy
    after = evaluate_saved_model(config, network, data, spec, journal, export=rescued, threshold=spec.threshold,
                                 built="the rescue (--rescue-limit)")
    journal.notes.append(
        f"Rescue: a photo the model did not call {' or '.join(spec.interest_labels)} at {spec.threshold:g} became the "
        f"class a head fitted to {taught.teacher} gave {config.rescue_limit:g} or more (train/README.md); validation "
        f"accuracy {100 * before:.2f}% before it, {100 * after.evaluation.accuracy:.2f}% with it.")
    return after


def evaluate_vetoed_model(config: TrainConfig, network: "Network", data: Dataset, trained: Dataset,
                          evaluated: Evaluated, journal: Journal) -> tuple[Evaluated, "Veto"]:
    """Fit the distance veto (``--distance-veto``) on ``trained``'s training photos of interest and ``data``'s
    validation ones, build it into ``evaluated``'s model (after any rescue), then save and evaluate it."""
    import keras

    from .model.veto import build_vetoed, fit_veto

    start = time.perf_counter()
    spec = evaluated.spec
    interest = tuple(i for i, label in enumerate(spec.labels) if spec.is_detection(label))
    embed = keras.Model(evaluated.saved.inputs, evaluated.saved.get_layer("pool").output)
    rows, first = np.unique(trained.train_rows, return_index=True)  # each photo once (multi-worker repeats some)
    classes = trained.y_train[first]
    of_interest = np.isin(classes, interest)
    rows, classes = rows[of_interest], classes[of_interest]
    checked = data.val_rows[np.isin(data.y_val, interest)]
    if len(rows) < 2 * len(interest) or not len(checked) or len(np.unique(classes)) < len(interest):
        raise TrainError(f"--distance-veto {config.distance_veto:g}: too few photos of {list(spec.interest_labels)} "
                         f"({len(rows)} training, {len(checked)} validation) to measure a distance")
    progress = config.verbose >= 1
    features = predict_rows(embed, trained.decoded.array, rows, config.batch_size, progress, "distance veto: features")
    checked_features = predict_rows(embed, data.decoded.array, checked, config.batch_size, progress,
                                    "distance veto: validation features")
    index = {label: n for n, label in enumerate(interest)}
    veto = fit_veto(features, np.array([index[int(c)] for c in classes]), checked_features, config.distance_veto)
    journal.timings["distance_veto"] = time.perf_counter() - start
    log.info("distance veto: %d directions from %d training photos; the limit keeps %g of %d validation photos of "
             "interest", veto.directions, veto.photos, veto.keep, veto.checked)
    spec = replace(spec, distance_veto=veto.contract())
    before = evaluated.evaluation.accuracy
    vetoed = build_vetoed(evaluated.saved, veto, interest)
    after = evaluate_saved_model(config, network, data, spec, journal, export=vetoed, threshold=spec.threshold,
                                 built="the distance veto (--distance-veto)")
    journal.notes.append(
        f"Distance veto: a photo called {' or '.join(spec.interest_labels)} became {spec.background_label!r} when its "
        f"features lay farther from the training photos of interest than {100 * veto.keep:g}% of the validation ones "
        f"(train/README.md); validation accuracy {100 * before:.2f}% before it, {100 * after.evaluation.accuracy:.2f}% "
        "with it. convert makes no int8 file of it (the veto would be lost): ship the float16 one.")
    return after, veto


def _log_per_source(per_source: dict[str, Any]) -> None:
    for figures in per_source["sources"]:
        recall = ", ".join(f"{label} {100 * value:.1f}%" for label, value in figures["recall"].items())
        alarm = "" if figures["false_alarm"] is None else f", false alarms {100 * figures['false_alarm']:.1f}%"
        log.info("  %-10s %-32s %5d photos: right %.1f%%%s%s", figures["part"], figures["source"], figures["photos"],
                 100 * figures["accuracy"], f" ({recall})" if recall else "", alarm)


def _log_thresholds(table: Any) -> None:
    for row in table.rows:
        log.info(
            "  threshold %.2f: recall %.2f%% (%d/%d), false alarms %.2f%% (%d/%d)%s",
            row.threshold, 100 * row.recall, row.correct, row.positives, 100 * row.false_alarm, row.false_alarms,
            row.negatives, "  <- recommended" if row.threshold == table.recommended else "",
        )
