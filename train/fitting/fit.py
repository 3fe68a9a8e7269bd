"""The epoch loop of one training phase: checkpoints, early stopping, resume.

Each epoch gets its own seeded data order (and view choice), and every random
layer's seed state is reset from ``(seed, phase, epoch)`` before the epoch, so a
run resumed from its last finished epoch continues exactly as an uninterrupted
one would. After every epoch the whole inference model's weights, the
optimizer's state and ``state.json`` are written atomically into
``checkpoints/``; files are named by epoch and ``state.json`` is written last,
so a process killed at any point leaves a consistent checkpoint.

Early stopping watches the validation loss; the best epoch's weights are
restored at the end of the phase.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from edge_runner.common.run_layout import STATE_FILENAME
from edge_runner.common.files import write_atomic, write_json

from ..errors import TrainError
from ..progress import Progress

log = logging.getLogger(__name__)

PHASES = ("head", "fine_tune")
STATE_FILE = STATE_FILENAME  # the layout of a run is edge_runner.common.run_layout.RunLayout

# on_epoch_end(phase, epoch, logs): called after an epoch's checkpoint is on disk
# (epoch counts from 1). Raising KeyboardInterrupt there simulates Ctrl-C.
EpochHook = Callable[[str, int, dict[str, float]], None]


@dataclass
class PhaseState:
    """Progress of one phase, as saved in ``checkpoints/state.json``."""

    epoch: int = 0  # epochs finished
    best_loss: float | None = None
    best_epoch: int = 0
    wait: int = 0
    done: bool = False
    stopped_early: bool = False
    seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    last_weights: str | None = None
    last_optimizer: str | None = None
    best_weights: str | None = None


@dataclass
class Phase:
    """One phase to run.

    Attributes:
        name: ``"head"`` or ``"fine_tune"``.
        train_model: the compiled model ``fit`` runs.
        train_data: ``epoch -> tf.data.Dataset`` of ``(x, y, sample_weight)`` batches.
        steps: batches per epoch (for the progress bar).
        val_model: the compiled model evaluated on ``val_data`` after each epoch.
        val_data: ``tf.data.Dataset`` of ``(x, y)`` batches.
        epochs: the number of epochs to reach.
        patience: epochs without a lower validation loss before stopping.
        train_epoch: ``(epoch, progress callback) -> logs`` instead of ``train_model.fit`` (multi-worker).
        validate: ``() -> {"loss", "accuracy"}`` instead of ``val_model.evaluate`` (multi-worker).
    """

    name: str
    train_model: keras.Model
    train_data: Callable[[int], tf.data.Dataset]
    steps: int
    val_model: keras.Model
    val_data: tf.data.Dataset
    epochs: int
    patience: int
    train_epoch: Callable[[int, Any], dict[str, float]] | None = None
    validate: Callable[[], dict[str, float]] | None = None


class Checkpoints:
    """``checkpoints/``: per-phase weights, optimizer state and ``state.json``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def load(self) -> dict[str, PhaseState]:
        path = self.directory / STATE_FILE
        if not path.is_file():
            return {name: PhaseState() for name in PHASES}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {name: PhaseState(**data.get(name, {})) for name in PHASES}
        except (OSError, ValueError, TypeError) as exc:
            raise TrainError(f"{path}: unreadable checkpoint state ({exc}); start again without --resume") from None

    def save(self, states: dict[str, PhaseState]) -> None:
        data = {name: asdict(state) for name, state in states.items()}
        write_json(self.directory / STATE_FILE, data, indent=1)

    def save_weights(self, model: keras.Model, name: str) -> str:
        """Write ``model``'s weights to ``name`` (ending ``.weights.h5``) atomically; returns ``name``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / name
        tmp = self.directory / f".tmp-{name}"
        model.save_weights(tmp)
        tmp.replace(final)
        return name

    def load_weights(self, model: keras.Model, name: str) -> None:
        path = self.directory / name
        if not path.is_file():
            raise TrainError(f"{path}: checkpoint missing; start again without --resume")
        model.load_weights(path)

    def save_optimizer(self, optimizer: keras.optimizers.Optimizer, name: str) -> str:
        buffer = io.BytesIO()
        values = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        np.savez(buffer, **values)
        write_atomic(self.directory / name, buffer.getvalue())
        return name

    def load_optimizer(self, optimizer: keras.optimizers.Optimizer, variables: list, name: str) -> None:
        path = self.directory / name
        with np.load(path) as saved:
            values = [saved[key] for key in sorted(saved.files)]
        if not optimizer.built:
            optimizer.build(variables)
        if len(values) != len(optimizer.variables):
            raise TrainError(f"{path}: optimizer state does not match this model; start again without --resume")
        for variable, value in zip(optimizer.variables, values):
            if tuple(variable.shape) != value.shape:
                raise TrainError(f"{path}: optimizer state does not match this model; start again without --resume")
            variable.assign(value)

    def remove(self, *names: str | None) -> None:
        for name in names:
            if name:
                (self.directory / name).unlink(missing_ok=True)


def reseed(models: list[keras.Model], seed: int) -> None:
    """Reset the state of every random layer (dropout, augmentation) under ``models`` from ``seed``."""
    seen: set[int] = set()
    counter = 0
    for model in models:
        for layer in _walk(model):
            for value in vars(layer).values():
                if isinstance(value, keras.random.SeedGenerator) and id(value) not in seen:
                    seen.add(id(value))
                    counter += 1
                    value.state.assign(np.array([(seed * 7919 + counter) % (2**31 - 1), 0], dtype=value.state.dtype))


def _walk(layer: Any):
    yield layer
    for child in getattr(layer, "layers", []) or []:
        yield from _walk(child)


def epoch_seed(seed: int, phase: str, epoch: int) -> int:
    """A seed for one epoch of one phase (``epoch`` counts from 0)."""
    return int(np.random.SeedSequence([seed, PHASES.index(phase), epoch]).generate_state(1)[0] % (2**31 - 1))


class _ProgressBar(keras.callbacks.Callback):
    """The steps of one epoch: a bar on a terminal only (in a log, the epoch's own line is enough)."""

    def __init__(self, total: int, desc: str, enabled: bool):
        super().__init__()
        self.bar = Progress(total, desc, "step", enabled=enabled, summary=False)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.bar.update(1)
        if logs:
            self.bar.set_postfix(loss=f"{logs.get('loss', math.nan):.4f}", acc=f"{logs.get('accuracy', math.nan):.4f}")

    def on_train_end(self, logs: dict | None = None) -> None:
        self.bar.close()


def run_phase(
    phase: Phase,
    *,
    states: dict[str, PhaseState],
    checkpoints: Checkpoints,
    weights_model: keras.Model,
    seed: int,
    random_models: list[keras.Model],
    progress: bool = True,
    on_epoch_end: EpochHook | None = None,
) -> PhaseState:
    """Train ``phase`` from where ``states[phase.name]`` left off; returns its final state.

    ``weights_model`` (the inference model, sharing every layer) is what is
    checkpointed and restored; on return it holds the best epoch's weights.
    """
    state = states[phase.name]
    if state.done:
        if state.best_weights:
            checkpoints.load_weights(weights_model, state.best_weights)
        return state
    optimizer = phase.train_model.optimizer
    if state.epoch > 0:
        checkpoints.load_weights(weights_model, state.last_weights)
        checkpoints.load_optimizer(optimizer, phase.train_model.trainable_variables, state.last_optimizer)
        log.info("%s: resuming after epoch %d of %d", phase.name, state.epoch, phase.epochs)

    title = "head" if phase.name == "head" else "fine-tune"
    for epoch in range(state.epoch, phase.epochs):
        if state.wait >= phase.patience:
            state.stopped_early = True
            break
        started = time.perf_counter()
        reseed(random_models, epoch_seed(seed, phase.name, epoch))
        bar = _ProgressBar(phase.steps, f"{title} epoch {epoch + 1}/{phase.epochs}", progress)
        if phase.train_epoch is not None:
            logs = phase.train_epoch(epoch, bar)
        else:
            history = phase.train_model.fit(
                phase.train_data(epoch), epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False, callbacks=[bar]
            )
            logs = {key: float(values[-1]) for key, values in history.history.items()}
        if phase.validate is not None:
            val = phase.validate()
        else:
            val = phase.val_model.evaluate(phase.val_data, verbose=0, return_dict=True)
        logs.update({f"val_{key}": float(value) for key, value in val.items()})
        for key, value in logs.items():
            state.history.setdefault(key, []).append(value)

        improved = state.best_loss is None or logs["val_loss"] < state.best_loss
        previous = (state.last_weights, state.last_optimizer, state.best_weights if improved else None)
        number = epoch + 1
        state.last_weights = checkpoints.save_weights(weights_model, f"{phase.name}-epoch-{number:03d}.weights.h5")
        state.last_optimizer = checkpoints.save_optimizer(optimizer, f"{phase.name}-epoch-{number:03d}.optimizer.npz")
        if improved:
            state.best_loss, state.best_epoch, state.wait = logs["val_loss"], number, 0
            state.best_weights = checkpoints.save_weights(weights_model, f"{phase.name}-best-{number:03d}.weights.h5")
        else:
            state.wait += 1
        state.epoch = number
        state.seconds += time.perf_counter() - started
        checkpoints.save(states)
        checkpoints.remove(*[name for name in previous if name not in (state.best_weights, state.last_weights)])
        log.info(
            "%s epoch %d/%d: loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f%s (%.1f s)",
            title,
            number,
            phase.epochs,
            logs.get("loss", math.nan),
            logs.get("accuracy", math.nan),
            logs["val_loss"],
            logs.get("val_accuracy", math.nan),
            " *best*" if improved else "",
            time.perf_counter() - started,
        )
        if on_epoch_end is not None:
            on_epoch_end(phase.name, number, logs)

    if state.stopped_early:
        log.info("%s: stopped early after epoch %d; best validation loss at epoch %d", phase.name, state.epoch, state.best_epoch)
    if state.best_weights:
        checkpoints.load_weights(weights_model, state.best_weights)
    state.done = True
    checkpoints.save(states)
    return state
