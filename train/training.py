"""``run_training``: a folder of labelled photos in, a model, its contract and a report out.

The run is a short sequence of stages, each in its own module (each with progress bars):

1. data (:mod:`train.data.dataset`): find the photos, decode them once with the runner's
   preprocessing (unreadable ones skipped and listed), split, write ``config.json``,
   ``split.json`` and ``skipped.txt``;
2. model (:mod:`train.model.network`): the pretrained backbone with a new head;
3. fit (:mod:`train.fitting.phases`): phase 1 trains the head on the frozen backbone's features,
   computed once; phase 2 fine-tunes the top of the backbone at a low learning rate
   (BatchNorm in inference mode); every epoch is checkpointed, so ``--resume`` continues;
   then, with ``--teacher``, a head fitted to an ImageNet classifier's view of the training photos
   (:mod:`train.model.teacher`), folded into the classifier with ``--prior-weight``;
4. evaluate (:mod:`train.evaluation`): the saved model is reloaded as a user would and run on the
   validation photos; with a background class, the threshold table and the recommended threshold; with
   ``--rescue-limit``, the teacher's head is then built into the model's output at that threshold
   (:mod:`train.model.rescue`), saved and evaluated again; with ``--distance-veto``, the distance veto
   after it (:mod:`train.model.veto`), saved and evaluated again;
5. report: the contract, plots, ``report.md`` and ``report.json``.

Where each file goes is :class:`edge_runner.common.run_layout.RunLayout`'s, shared with ``convert``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runner.common.run_layout import RunLayout
from edge_runner.common.native_log import import_quietly
from edge_runner.core.spec import InputSpec

from .backbones import get_backbone
from .config import TEACHER_CHOICES, TrainConfig, TrainResult
from .data.folders import Candidates, find_candidates
from .data.sources import parse_root
from .data.dataset import Dataset, Journal, default_name, load_dataset
from .data.pixels import decode_photos
from .fitting import distributed
from .output import prepare_out_dir
from .errors import ConfigError
from .evaluation import Evaluated, evaluate_rescued_model, evaluate_saved_model, evaluate_vetoed_model

if TYPE_CHECKING:
    from .fitting.fit import EpochHook
    from .model.network import Network
    from .fitting.phases import Fitted
    from .model.teacher import Taught
    from .model.veto import Veto

log = logging.getLogger(__name__)


def run_training(config: TrainConfig, *, on_epoch_end: "EpochHook | None" = None) -> TrainResult:
    """Train a classifier as ``config`` says and write everything into ``config.out``.

    Args:
        on_epoch_end: optional ``hook(phase, epoch, logs)`` called after each
            epoch's checkpoint is written (``epoch`` from 1).

    Raises:
        ConfigError, DataError, TrainError: with a one-line message naming the problem.
    """
    started = time.perf_counter()
    config = resolve_paths(config.validate())
    session = distributed.join_cluster(config)  # --strategy multi-worker: TF_CONFIG, before any other TensorFlow op
    if session is not None:
        config = session.local_config(config)  # a worker other than the chief writes into a temporary folder
    journal = Journal()
    candidates = find_candidates(config.data, labels_from_filename=config.labels_from_filename,
                                 background=config.background, background_label=config.background_label,
                                 source_by=config.source_by, holdout=config.holdout_sources)
    if config.init_from:
        from .retrain import check_labels, describe

        check_labels(config, candidates.labels)
        log.info("%s", describe(config))
    resumed = prepare_out_dir(config)
    if session is not None:
        resumed = session.agree_resumed(resumed)
    spec = contract_for(config, candidates)
    if config.distance_veto and spec.background_label is None:
        raise ConfigError(f"--distance-veto {config.distance_veto:g} answers a vetoed photo with the background class: "
                          "give --background DIR (or a class folder named 'other' or 'background')")
    from .model.teacher import fit_teacher, fold_into, plan_teacher

    teacher = plan_teacher(config, spec)  # before the long part: a teacher that cannot be had stops the run now
    # --strategy multi-worker: this worker decodes, and trains and validates on, its share of the photos only
    data = distributed.shard(load_dataset(config, candidates, spec, journal,
                                          decode=distributed.decode_function(decode_photos)))
    strategy, network = build_model(config, data)

    from .fitting.phases import fit_phases
    from .report.plots import write_plots

    fitted = fit_phases(config, network, data, strategy, resumed=resumed, journal=journal, on_epoch_end=on_epoch_end)
    trained = data  # --strategy multi-worker: the chief's share of the training photos, which the teacher sees
    if session is not None:
        chief_data = session.finish(data, spec, config, journal)  # the chief: every validation and held-out photo
        if chief_data is None:
            return session.worker_result(data, fitted, time.perf_counter() - started)
        data = chief_data
    taught = None
    if teacher is not None:
        start = time.perf_counter()
        rows = np.unique(trained.train_rows)  # each photo once (multi-worker pads a share with repeats)
        taught = fit_teacher(teacher, network, trained.decoded.array, rows, spec.labels, config.batch_size,
                             config.verbose >= 1)
        if taught is not None and config.prior_weight:
            fold_into(network.inference.get_layer("classifier"), taught.coef, taught.intercept, config.prior_weight)
        journal.timings["teacher"] = time.perf_counter() - start
    evaluated = evaluate_saved_model(config, network, data, spec, journal)
    if taught is not None and config.rescue_limit and evaluated.spec.threshold is not None:
        evaluated = evaluate_rescued_model(config, network, data, evaluated, taught, journal)
    veto = None
    if config.distance_veto:
        evaluated, veto = evaluate_vetoed_model(config, network, data, trained, evaluated, journal)
    layout = RunLayout(Path(config.out))
    evaluated.spec.save(layout.contract)
    files = write_plots(layout.root, evaluated.evaluation, fitted.states, _rows_of(data), [s.key for s in data.split.validation],
                        evaluated.thresholds, evaluated.saved)
    journal.timings["total"] = elapsed = time.perf_counter() - started
    write_training_report(config, data, network, fitted, evaluated, journal, files, taught, veto)
    return TrainResult(
        out_dir=layout.root,
        model_path=layout.model,
        contract_path=layout.contract,
        labels_path=layout.labels,
        split_path=layout.split,
        report_path=layout.report_json,
        val_accuracy=evaluated.evaluation.accuracy,
        val_loss=evaluated.evaluation.loss,
        elapsed_s=elapsed,
        timings=journal.timings,
        epochs={name: fitted.states[name].epoch for name in ("head", "fine_tune")},
        num_train=len(data.split.train),
        num_validation=len(data.split.validation),
        num_skipped=len(data.split.skipped),
        labels=data.split.labels,
    )


def resolve_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with absolute ``data``, ``out``, ``background`` and weights-file paths (``~`` expanded)."""

    def absolute(path: str) -> str:
        return str(Path(path).expanduser().resolve())

    def absolute_root(value: str) -> str:  # DIR or NAME=DIR (see train.data.sources.parse_root)
        root = parse_root(value, "data")
        named = root.name != root.root.name
        return f"{root.name}={root.root}" if named else absolute(value)

    return replace(
        config,
        data=[absolute_root(d) for d in config.data],
        out=absolute(config.out),
        background=[absolute_root(b) for b in config.background],
        weights=config.weights if config.weights in ("imagenet", "none") else absolute(config.weights),
        teacher=config.teacher if config.teacher in TEACHER_CHOICES else absolute(config.teacher),
    )


def contract_for(config: TrainConfig, candidates: Candidates) -> InputSpec:
    """The input contract of the model to train (no threshold yet: stage "evaluate" recommends one)."""
    return InputSpec(
        labels=candidates.labels,
        height=config.image_size,
        width=config.image_size,
        resize="bilinear",
        crop="none",
        name=config.name or default_name(candidates.labels, candidates.data_dir, candidates.background_label),
        backbone=get_backbone(config.backbone).tag(config.alpha, config.image_size),
        background_label=candidates.background_label,
    )


def build_model(config: TrainConfig, data: Dataset) -> tuple[Any, "Network"]:
    """Seed TensorFlow and build the network under the ``--strategy``; returns ``(strategy, network)``."""
    tf = import_quietly("tensorflow")  # without absl's INFO start-up lines on stderr
    import keras

    from .model.network import build_network

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = tf.distribute.MirroredStrategy() if config.strategy == "mirrored" else tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        log.info("strategy: MirroredStrategy over %d device(s)", strategy.num_replicas_in_sync)
    with strategy.scope():
        network = build_network(config, len(data.split.labels))
        if config.init_from:
            from .retrain import load_run_weights

            load_run_weights(network, config)
    log.info(
        "model: %s, %s weights; fine-tuning the top %d backbone layers (above %s)",
        network.backbone_tag,
        "no" if config.from_scratch else ("ImageNet" if config.weights == "imagenet" else Path(config.weights).name),
        network.fine_tuned_layers,
        network.cut_name,
    )
    return strategy, network


def write_training_report(config: TrainConfig, data: Dataset, network: "Network", fitted: "Fitted", evaluated: Evaluated,
                          journal: Journal, files: dict[str, str], taught: "Taught | None" = None,
                          veto: "Veto | None" = None) -> None:
    """``report.json`` and ``report.md`` of the run (``taught``: the teacher's head, ``veto``: the distance veto,
    when there was one)."""
    from .report.run_report import build_report, write_report

    report = build_report(
        config=config,
        split=data.split,
        evaluation=evaluated.evaluation,
        model_info={**_model_info(config, network, evaluated), "teacher": _teacher_info(config, taught, evaluated),
                    "distance_veto": None if veto is None else {**veto.contract(), "photos": veto.photos,
                                                                "checked": veto.checked}},
        phases=_phase_summary(config, fitted),
        timings=journal.timings,
        elapsed_s=journal.timings["total"],
        class_weights=data.class_weights,
        files=files,
        notes=journal.notes,
        thresholds=evaluated.thresholds,
        per_source=evaluated.per_source,
    )
    write_report(Path(config.out), report)


def _rows_of(data: Dataset) -> Any:
    from .fitting.batches import VirtualRows

    return VirtualRows(data.decoded.array, data.val_rows)


def _phase_summary(config: TrainConfig, fitted: "Fitted") -> dict[str, dict[str, Any]]:
    states = fitted.states
    return {
        name: {
            "ran": fitted.ran[name],
            "epochs": config.epochs if name == "head" else config.fine_tune_epochs,
            "epochs_run": states[name].epoch,
            "best_epoch": states[name].best_epoch,
            "best_val_loss": states[name].best_loss,
            "stopped_early": states[name].stopped_early,
            "seconds": round(states[name].seconds, 2),
            "learning_rate": config.learning_rate if name == "head" or config.from_scratch else config.fine_tune_learning_rate,
            "history": states[name].history,
        }
        for name in ("head", "fine_tune")
    }


def _model_info(config: TrainConfig, network: "Network", evaluated: Evaluated) -> dict[str, Any]:
    from .model.network import trainable_parameter_count

    return {
        "name": evaluated.spec.name,
        "backbone": network.backbone_tag,
        "weights": config.weights,
        "image_size": config.image_size,
        "cut_layer": network.cut_name,
        "fine_tuned_layers": network.fine_tuned_layers,
        "fine_tune_mode": "full (from scratch)" if config.from_scratch else config.fine_tune_mode,
        "augment_views": config.augment_views,
        "batchnorm": "trained (from scratch)" if config.from_scratch else "frozen, inference mode",
        "parameters": int(evaluated.export.count_params()),
        "trainable_parameters": {
            "head": trainable_parameter_count(network.head),
            "fine_tune": trainable_parameter_count(network.augmented if config.from_scratch else network.fine_tune),
        },
    }


def _teacher_info(config: TrainConfig, taught: "Taught | None", evaluated: Evaluated) -> dict[str, Any] | None:
    """``report.json``'s ``model.teacher``: the head's fit, and how it was used (rescue, prior)."""
    if taught is None:
        return None
    return {**taught.to_dict(), "rescue": evaluated.spec.rescue, "prior_weight": config.prior_weight}
