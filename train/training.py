"""``run_training``: a folder of labelled photos in, a model, its contract and a report out.

Steps (each with a progress bar): find the photos → decode them once with the
runner's preprocessing (unreadable ones skipped and listed) → split → phase 1:
the frozen backbone's features are computed once and the head is trained on
them → phase 2: the top of the backbone is fine-tuned at a low learning rate
(BatchNorm in inference mode) → the saved model is reloaded and evaluated on
the validation photos → plots and report.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runner.native_log import import_quietly
from edge_runner.files import write_atomic
from edge_runner.spec import CONTRACT_FILENAME, LABELS_FILENAME, InputSpec

from .backbones import get_backbone
from .config import TrainConfig, TrainResult
from .data import DataSplit, find_candidates, split_samples
from .errors import ConfigError
from .pixels import decode_photos
from .progress import Progress

if TYPE_CHECKING:
    from .fit import EpochHook

log = logging.getLogger(__name__)

MODEL_FILENAME = "model.keras"
SPLIT_FILENAME = "split.json"
CONFIG_FILENAME = "config.json"
SKIPPED_FILENAME = "skipped.txt"
CHECKPOINT_DIR = "checkpoints"
PLOTS = {
    "training_curves": "training_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "roc": "roc.png",
    "worst_mistakes": "worst_mistakes.png",
    "gradcam": "gradcam.png",
    "thresholds": "thresholds.png",
}
# Files a run writes into --out; --overwrite removes exactly these (and checkpoints/).
RUN_FILES = (
    MODEL_FILENAME,
    CONTRACT_FILENAME,
    LABELS_FILENAME,
    SPLIT_FILENAME,
    CONFIG_FILENAME,
    SKIPPED_FILENAME,
    "report.json",
    "report.md",
    *PLOTS.values(),
)


def default_name(labels: tuple[str, ...], data_dir: Path, background_label: str | None = None) -> str:
    """``("cats", "dogs")`` → ``"cats_dogs"``; many or long labels → the data folder's name.

    The background class is left out of the name (``("cats", "dogs", "other")`` with
    background ``other`` → ``"cats_dogs"``): it says what the model looks for.
    """
    labels = tuple(label for label in labels if label != background_label) or labels
    joined = "_".join(labels)
    if len(labels) <= 3 and len(joined) <= 32:
        return joined
    return data_dir.name or "edgekit-classifier"


def prepare_out_dir(config: TrainConfig) -> bool:
    """Check ``--out`` against ``--resume``/``--overwrite``; returns whether a previous run is resumed.

    Nothing is written here (``--overwrite`` removes the previous run's files).

    Raises:
        ConfigError: ``--out`` is a file, holds another run without ``--resume``/``--overwrite``,
            or was trained with different options than the resumed run.
    """
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {config.out}: exists and is not a directory")
    previous = out / CONFIG_FILENAME
    state = out / CHECKPOINT_DIR / "state.json"
    # A run counts once it has finished an epoch or written a model; one that failed
    # before that (bad weights file, Ctrl-C while decoding) has nothing to lose.
    has_run = state.is_file() or (out / MODEL_FILENAME).is_file()
    if has_run and config.overwrite:
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        has_run = False
    if has_run and not config.resume:
        raise ConfigError(
            f"--out {config.out}: already holds a training run; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if has_run and previous.is_file():
        old = TrainConfig.load(previous)
        differences = config.differences(old)
        if differences:
            details = ", ".join(f"{key}: {getattr(old, key)!r} then, {getattr(config, key)!r} now" for key in differences)
            raise ConfigError(f"--resume: {config.out} was trained with other options ({details}); use the same options or a new --out")
    resumed = has_run and state.is_file()
    return resumed


def class_weights_for(split: DataSplit, config: TrainConfig) -> dict[str, float] | None:
    """``n / (K * n_class)`` per class when ``--class-weights on``, or ``auto`` and imbalanced."""
    ratio = split.imbalance()
    wanted = config.class_weights == "on" or (config.class_weights == "auto" and ratio >= config.imbalance_ratio)
    if not wanted:
        return None
    counts = split.counts("train")
    total = sum(counts.values())
    return {label: round(total / (len(counts) * count), 6) for label, count in counts.items()}


def run_training(config: TrainConfig, *, on_epoch_end: "EpochHook | None" = None) -> TrainResult:
    """Train a classifier as ``config`` says and write everything into ``config.out``.

    Args:
        on_epoch_end: optional ``hook(phase, epoch, logs)`` called after each
            epoch's checkpoint is written (``epoch`` from 1).

    Raises:
        ConfigError, DataError, TrainError: with a one-line message naming the problem.
    """
    started = time.perf_counter()
    config.validate()
    config = replace(
        config,
        data=str(Path(config.data).expanduser().resolve()),
        out=str(Path(config.out).expanduser().resolve()),
        background=None if config.background is None else str(Path(config.background).expanduser().resolve()),
        weights=config.weights if config.weights in ("imagenet", "none") else str(Path(config.weights).expanduser().resolve()),
    )
    out = Path(config.out)
    progress = config.verbose >= 1
    backbone = get_backbone(config.backbone)
    timings: dict[str, float] = {}
    notes: list[str] = []

    # -- data ------------------------------------------------------------------
    candidates = find_candidates(
        config.data,
        labels_from_filename=config.labels_from_filename,
        background=config.background,
        background_label=config.background_label,
    )
    resumed = prepare_out_dir(config)
    spec = InputSpec(
        labels=candidates.labels,
        height=config.image_size,
        width=config.image_size,
        resize="bilinear",
        crop="none",
        name=config.name or default_name(candidates.labels, Path(config.data), candidates.background_label),
        backbone=backbone.tag(config.alpha, config.image_size),
        background_label=candidates.background_label,
    )
    if candidates.background_label:
        log.info(
            "background class: %r (%s)",
            candidates.background_label,
            f"{len(candidates.background)} photos from {candidates.background_dir}" if candidates.background_dir else "a class folder",
        )
    log.info(
        "data: %d photos in %d classes (%s) under %s",
        len(candidates.all_samples),
        len(candidates.labels),
        candidates.layout,
        config.data,
    )
    cache_dir = _writable_dir(config.resolved_cache_dir(), "--cache-dir")
    decoded = decode_photos(
        [s.path for s in candidates.all_samples], spec, cache_dir=cache_dir, workers=config.workers, progress=progress
    )
    timings["decode"] = decoded.seconds
    split = split_samples(candidates, decoded.errors, validation_fraction=config.validation_fraction, seed=config.seed)
    _writable_dir(out, "--out")
    replace(config, resume=False, overwrite=False).save(out / CONFIG_FILENAME)
    split.save(out / SPLIT_FILENAME)
    write_atomic(out / SKIPPED_FILENAME, split.skipped_text().encode("utf-8"))
    _log_data(split, out)
    weights_by_class = class_weights_for(split, config)
    if split.imbalance() >= config.imbalance_ratio:
        log.warning(
            "warning: the training classes are imbalanced (largest/smallest = %.1f: %s); %s",
            split.imbalance(),
            split.counts("train"),
            f"using class weights {weights_by_class}" if weights_by_class else "class weights are off (--class-weights off)",
        )
    if split.skipped:
        notes.append(f"{len(split.skipped)} files were skipped (unreadable or not images); see {SKIPPED_FILENAME}.")

    # -- model -----------------------------------------------------------------
    tf = import_quietly("tensorflow")  # without absl's INFO start-up lines on stderr
    import keras

    from . import features as feats
    from .fit import PHASES, Checkpoints, Phase, PhaseState, run_phase
    from .model import build_network, compile_for_training, export_model, trainable_parameter_count

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = tf.distribute.MirroredStrategy() if config.strategy == "mirrored" else tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        log.info("strategy: MirroredStrategy over %d device(s)", strategy.num_replicas_in_sync)
    with strategy.scope():
        network = build_network(config, len(split.labels))
    log.info(
        "model: %s, %s weights; fine-tuning the top %d backbone layers (above %s)",
        network.backbone_tag,
        "no" if config.from_scratch else ("ImageNet" if config.weights == "imagenet" else Path(config.weights).name),
        network.fine_tuned_layers,
        network.cut_name,
    )

    train_rows = decoded.rows([s.path for s in split.train])
    val_rows = decoded.rows([s.path for s in split.validation])
    y_train = split.label_indices("train")
    y_val = split.label_indices("validation")
    sample_weights = np.ones(len(y_train), dtype=np.float32)
    if weights_by_class:
        sample_weights = np.array([weights_by_class[label] for label in split.labels], dtype=np.float32)[y_train]

    checkpoints = Checkpoints(out / CHECKPOINT_DIR)
    states = checkpoints.load() if resumed else {name: PhaseState() for name in PHASES}
    if resumed:
        notes.append("This run was resumed from a checkpoint; timings cover the last process only.")
    weights_id = feats.weights_identity(config.weights) if not config.from_scratch else "none"
    batch = config.batch_size

    def activations(rows: np.ndarray, view: int, role: str) -> np.ndarray:
        cache_file = feats.activation_cache_file(
            cache_dir, pixel_key=decoded.key, rows=rows, network=network, weights_id=weights_id, view=view, seed=config.seed
        )
        return feats.compute_activations(
            network,
            decoded.array,
            rows,
            view=view,
            seed=config.seed,
            batch_size=batch,
            cache_file=cache_file,
            desc=f"backbone features, {role}, view {view}",
            progress=progress,
        )

    run_head = not config.from_scratch and config.epochs > 0
    backbone_trainable = trainable_parameter_count(network.fine_tune) - trainable_parameter_count(network.head)
    run_fine_tune = config.fine_tune_epochs > 0 and (config.from_scratch or backbone_trainable > 0)
    if not config.from_scratch and config.fine_tune_epochs > 0 and not run_fine_tune:
        notes.append("No backbone layer with weights lies above the cut: the fine-tuning phase was skipped.")
    if config.from_scratch:
        notes.append("--weights none: no pretrained features to train a head on, so phase 1 was skipped; "
                     "phase 2 trained the whole network (BatchNorm included) at --learning-rate.")
    common = dict(states=states, checkpoints=checkpoints, weights_model=network.inference, seed=config.seed, progress=progress)
    random_models = [network.augmented, network.fine_tune, network.head]

    val_activations = None
    if not config.from_scratch and (run_head or run_fine_tune):
        start = time.perf_counter()
        view0 = activations(train_rows, 0, "training")
        val_activations = activations(val_rows, 0, "validation")
        timings["features"] = time.perf_counter() - start
    else:
        view0 = None

    if run_head:
        start = time.perf_counter()
        pooled_train = feats.pool_activations(network, view0, batch_size=batch, desc="pool features, training", progress=progress)
        pooled_val = feats.pool_activations(network, val_activations, batch_size=batch, desc="pool features, validation", progress=progress)
        with strategy.scope():
            compile_for_training(network.head, config.learning_rate)
        phase = Phase(
            name="head",
            train_model=network.head,
            train_data=_epoch_batches([pooled_train], y_train, sample_weights, batch, config.seed, "head"),
            steps=math.ceil(len(y_train) / batch),
            val_model=network.head,
            val_data=_fixed_batches(pooled_val, y_val, batch),
            epochs=config.epochs,
            patience=config.patience,
        )
        with strategy.scope():
            run_phase(phase, random_models=random_models, on_epoch_end=on_epoch_end, **common)
        timings["head_phase"] = time.perf_counter() - start + timings.get("features", 0.0)

    if run_fine_tune:
        start = time.perf_counter()
        if config.from_scratch:
            with strategy.scope():
                compile_for_training(network.augmented, config.learning_rate)
                compile_for_training(network.inference, config.learning_rate)
            train_model, val_model = network.augmented, network.inference
            train_data = _epoch_batches([decoded.array], y_train, sample_weights, batch, config.seed, "fine_tune", train_rows)
            val_data = _fixed_batches(decoded.array, y_val, batch, val_rows)
        elif config.fine_tune_mode == "full":
            with strategy.scope():
                compile_for_training(network.augmented, config.fine_tune_learning_rate)
                compile_for_training(network.fine_tune, config.fine_tune_learning_rate)
            train_model, val_model = network.augmented, network.fine_tune
            train_data = _epoch_batches([decoded.array], y_train, sample_weights, batch, config.seed, "fine_tune", train_rows)
            val_data = _fixed_batches(val_activations, y_val, batch)
            notes.append("Fine-tuning ran every step through the whole network with fresh augmentation (--fine-tune-mode full).")
        else:
            views = [view0] + [activations(train_rows, v, "training") for v in range(1, config.augment_views)]
            with strategy.scope():
                compile_for_training(network.fine_tune, config.fine_tune_learning_rate)
            train_model = val_model = network.fine_tune
            train_data = _epoch_batches(views, y_train, sample_weights, batch, config.seed, "fine_tune")
            val_data = _fixed_batches(val_activations, y_val, batch)
            notes.append(
                f"Fine-tuning trained the top layers on cached activations of {config.augment_views} fixed view(s) per "
                "training photo (the photo, its mirror image, then random flips/rotations/zooms/contrast), not on fresh "
                "augmentation every epoch (--fine-tune-mode cached)."
            )
        phase = Phase(
            name="fine_tune",
            train_model=train_model,
            train_data=train_data,
            steps=math.ceil(len(y_train) / batch),
            val_model=val_model,
            val_data=val_data,
            epochs=config.fine_tune_epochs,
            patience=config.patience,
        )
        with strategy.scope():
            run_phase(phase, random_models=random_models, on_epoch_end=on_epoch_end, **common)
        timings["fine_tune_phase"] = time.perf_counter() - start

    # -- outputs ---------------------------------------------------------------
    start = time.perf_counter()
    export = export_model(network)
    model_path = _save_model(export, out / MODEL_FILENAME)
    labels_path = spec.save_labels(out / LABELS_FILENAME)
    # Evaluate what was written, reloaded as a user would load it.
    saved = keras.saving.load_model(model_path)
    probabilities = _predict(saved, decoded.array, val_rows, batch, progress)
    timings["evaluate"] = time.perf_counter() - start

    from .evaluate import evaluate_probabilities
    from .report import build_report, write_report
    from .thresholds import threshold_table

    evaluation = evaluate_probabilities(probabilities, y_val, split.labels)
    thresholds = None
    if split.background_label is not None:
        thresholds = threshold_table(probabilities, y_val, split.labels, split.background_label, config.max_false_alarm)
        spec = replace(spec, threshold=thresholds.recommended)
        _log_thresholds(thresholds)
        if weights_by_class:
            notes.append(
                f"Imbalance: each training photo was weighted by n / (K * n_class) in the loss (class weights "
                f"{weights_by_class}), so the {split.background_label!r} class counts as much as each real class."
            )
    contract_path = spec.save(out / CONTRACT_FILENAME)
    files = _write_plots(out, evaluation, states, _VirtualRows(decoded.array, val_rows), [s.path for s in split.validation],
                         thresholds, saved)
    elapsed = time.perf_counter() - started
    timings["total"] = elapsed
    report = build_report(
        config=config,
        split=split,
        evaluation=evaluation,
        model_info=_model_info(config, network, spec, export),
        phases=_phase_summary(config, states, {"head": run_head, "fine_tune": run_fine_tune}),
        timings=timings,
        elapsed_s=elapsed,
        class_weights=weights_by_class,
        files=files,
        notes=notes,
        thresholds=thresholds,
    )
    report_path, _ = write_report(out, report)
    return TrainResult(
        out_dir=out,
        model_path=model_path,
        contract_path=contract_path,
        labels_path=labels_path,
        split_path=out / SPLIT_FILENAME,
        report_path=report_path,
        val_accuracy=evaluation.accuracy,
        val_loss=evaluation.loss,
        elapsed_s=elapsed,
        timings=timings,
        epochs={name: states[name].epoch for name in ("head", "fine_tune")},
        num_train=len(split.train),
        num_validation=len(split.validation),
        num_skipped=len(split.skipped),
        labels=split.labels,
    )


def _save_model(model: Any, path: Path) -> Path:
    """``model.save`` via a temporary ``.keras`` file and a rename: never a half-written model."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _log_thresholds(table: Any) -> None:
    for row in table.rows:
        log.info(
            "  threshold %.2f: recall %.2f%% (%d/%d), false alarms %.2f%% (%d/%d)%s",
            row.threshold, 100 * row.recall, row.correct, row.positives, 100 * row.false_alarm, row.false_alarms,
            row.negatives, "  <- recommended" if row.threshold == table.recommended else "",
        )


def _write_plots(out: Path, evaluation: Any, states: dict, pixels: Any, names: list[str], thresholds: Any = None,
                 model: Any = None) -> dict[str, str]:
    """The PNG plots; returns ``{kind: file name}`` of everything in ``out`` (for the report)."""
    from .plots import plot_confusion, plot_history, plot_mistakes, plot_roc, plot_thresholds

    files = {"model": MODEL_FILENAME, "contract": CONTRACT_FILENAME, "labels": LABELS_FILENAME, "split": SPLIT_FILENAME,
             "config": CONFIG_FILENAME, "skipped": SKIPPED_FILENAME, "checkpoints": CHECKPOINT_DIR + "/"}
    plot_history({name: states[name].history for name in ("head", "fine_tune")}, out / PLOTS["training_curves"])
    plot_confusion(evaluation, out / PLOTS["confusion_matrix"])
    files.update(training_curves=PLOTS["training_curves"], confusion_matrix=PLOTS["confusion_matrix"])
    if evaluation.roc_fpr.size:
        plot_roc(evaluation, out / PLOTS["roc"])
        files["roc"] = PLOTS["roc"]
    else:
        (out / PLOTS["roc"]).unlink(missing_ok=True)
    plot_mistakes(evaluation, pixels, names, out / PLOTS["worst_mistakes"])
    files["worst_mistakes"] = PLOTS["worst_mistakes"]
    if thresholds is not None:
        plot_thresholds(thresholds, out / PLOTS["thresholds"])
        files["thresholds"] = PLOTS["thresholds"]
    else:
        (out / PLOTS["thresholds"]).unlink(missing_ok=True)
    if model is not None:
        from .explain import write_report_grid

        files.update(write_report_grid(out, model, evaluation, pixels, names))
    return files


def _phase_summary(config: TrainConfig, states: dict, ran: dict[str, bool]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "ran": ran[name],
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


def _model_info(config: TrainConfig, network: Any, spec: InputSpec, export: Any) -> dict[str, Any]:
    from .model import trainable_parameter_count

    return {
        "name": spec.name,
        "backbone": network.backbone_tag,
        "weights": config.weights,
        "image_size": config.image_size,
        "cut_layer": network.cut_name,
        "fine_tuned_layers": network.fine_tuned_layers,
        "fine_tune_mode": "full (from scratch)" if config.from_scratch else config.fine_tune_mode,
        "augment_views": config.augment_views,
        "batchnorm": "trained (from scratch)" if config.from_scratch else "frozen, inference mode",
        "parameters": int(export.count_params()),
        "trainable_parameters": {
            "head": trainable_parameter_count(network.head),
            "fine_tune": trainable_parameter_count(network.augmented if config.from_scratch else network.fine_tune),
        },
    }


def _writable_dir(path: Path, flag: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def _log_data(split: DataSplit, out: Path) -> None:
    train, val = split.counts("train"), split.counts("validation")
    for label in split.labels:
        log.info("  %-20s %6d training, %5d validation photos", label, train[label], val[label])
    if split.skipped:
        log.warning("skipped %d unreadable or non-image files (listed in %s), e.g. %s",
                    len(split.skipped), out / SKIPPED_FILENAME, split.skipped[0].reason)


class _VirtualRows:
    """``array[rows]`` without copying: indexing maps through ``rows``."""

    def __init__(self, array: np.ndarray, rows: np.ndarray):
        self.array, self.rows = array, rows

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.array[self.rows[index]])

    def __len__(self) -> int:
        return len(self.rows)


def _epoch_batches(
    arrays: list[np.ndarray],
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    seed: int,
    phase: str,
    rows: np.ndarray | None = None,
):
    """``epoch -> tf.data.Dataset`` of ``(x float32, y int32, sample_weight float32)`` batches.

    Each epoch has its own order and (with several arrays = views) its own view
    per sample, both drawn from ``(seed, phase, epoch)``: a resumed run sees the
    same batches as an uninterrupted one. ``rows`` maps sample ``i`` to
    ``arrays[v][rows[i]]`` (default: the identity).
    """
    import tensorflow as tf

    from .fit import epoch_seed

    count = len(labels)
    sample_shape = tuple(arrays[0].shape[1:])

    def gather(order: np.ndarray, views: np.ndarray):
        x = np.empty((len(order), *sample_shape), dtype=np.float32)
        source = order if rows is None else rows[order]
        for view in np.unique(views):
            mask = views == view
            x[mask] = arrays[int(view)][source[mask]]
        return x, labels[order], weights[order]

    def make(epoch: int) -> tf.data.Dataset:
        rng = np.random.default_rng(epoch_seed(seed, phase, epoch))
        order = rng.permutation(count)
        views = rng.integers(0, len(arrays), size=count)
        dataset = tf.data.Dataset.from_tensor_slices((order, views)).batch(batch_size)
        dataset = dataset.map(
            lambda o, v: tf.numpy_function(gather, [o, v], [tf.float32, tf.int32, tf.float32]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        dataset = dataset.map(
            lambda x, y, w: (tf.ensure_shape(x, (None, *sample_shape)), tf.ensure_shape(y, (None,)), tf.ensure_shape(w, (None,)))
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    return make


def _fixed_batches(array: np.ndarray, labels: np.ndarray, batch_size: int, rows: np.ndarray | None = None):
    """A ``tf.data.Dataset`` of ``(x float32, y int32)`` batches in order (for validation)."""
    import tensorflow as tf

    sample_shape = tuple(array.shape[1:])
    source = np.arange(len(labels)) if rows is None else rows

    def gather(index: np.ndarray):
        return np.asarray(array[source[index]], dtype=np.float32), labels[index]

    dataset = tf.data.Dataset.range(len(labels)).batch(batch_size)
    dataset = dataset.map(
        lambda i: tf.numpy_function(gather, [i], [tf.float32, tf.int32]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.map(lambda x, y: (tf.ensure_shape(x, (None, *sample_shape)), tf.ensure_shape(y, (None,))))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _predict(model: Any, pixels: np.ndarray, rows: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
    """Softmax outputs ``float32`` ``(len(rows), K)`` of ``model`` on raw 0–255 ``pixels[rows]``."""
    outputs = []
    with Progress(len(rows), "evaluate saved model", "photo", enabled=progress) as bar:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            outputs.append(np.asarray(model.predict_on_batch(np.asarray(pixels[chunk], dtype=np.float32))))
            bar.update(len(chunk))
    return np.concatenate(outputs).astype(np.float32)
