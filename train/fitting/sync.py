"""The synchronised parts of a multi-worker epoch: the training step, validation and checkpoints.

Used by :mod:`train.fitting.distributed` through the hooks of :mod:`train.fitting.fit` (``Phase.train_epoch``,
``Phase.validate``) and :class:`train.fitting.fit.Checkpoints`. Every function here exchanges values with
the other workers, so all of them run it the same number of times, in the same order.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, Protocol

import keras
import numpy as np
import tensorflow as tf

from .fit import PHASES, Checkpoints, Phase, PhaseState

if TYPE_CHECKING:
    from .cluster import Cluster


class Session(Protocol):
    """What these functions use of a :class:`train.fitting.distributed.Session` (declared here: no import cycle)."""

    cluster: Cluster
    global_batch: int
    stats: Any  # its WorkerStats: steps, step_s, validate_s
    resumed_from: dict[str, int] | None


class SyncedCheckpoints(Checkpoints):
    """The chief's ``checkpoints/``, shared by broadcast: the chief reads and writes its files; the other
    workers write nothing and receive what the chief read (weights, optimizer state, ``state.json``)."""

    def __init__(self, directory: Any, session: Session):
        super().__init__(directory)
        self.session, self.cluster = session, session.cluster

    def load(self) -> dict[str, PhaseState]:
        mine = super().load() if self.cluster.is_chief else {name: PhaseState() for name in PHASES}
        data = self.cluster.broadcast_json({name: asdict(state) for name, state in mine.items()})
        states = {name: PhaseState(**data[name]) for name in PHASES}
        self.session.resumed_from = {name: states[name].epoch for name in PHASES}
        return states

    def save(self, states: dict[str, PhaseState]) -> None:
        if self.cluster.is_chief:
            super().save(states)

    def save_weights(self, model: keras.Model, name: str) -> str:
        return super().save_weights(model, name) if self.cluster.is_chief else name

    def save_optimizer(self, optimizer: keras.optimizers.Optimizer, name: str) -> str:
        return super().save_optimizer(optimizer, name) if self.cluster.is_chief else name

    def remove(self, *names: str | None) -> None:
        if self.cluster.is_chief:
            super().remove(*names)

    def load_weights(self, model: keras.Model, name: str) -> None:
        if self.cluster.is_chief:
            super().load_weights(model, name)
        broadcast_weights(self.session, model)

    def load_optimizer(self, optimizer: keras.optimizers.Optimizer, variables: list, name: str) -> None:
        if self.cluster.is_chief:
            super().load_optimizer(optimizer, variables, name)
        elif not optimizer.built:
            optimizer.build(variables)
        values = _broadcast_arrays(self.session, [np.asarray(v.numpy()) for v in optimizer.variables])
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)


def broadcast_weights(session: Session, model: keras.Model) -> None:
    """Give every worker the chief's weights of ``model``."""
    model.set_weights(_broadcast_arrays(session, model.get_weights()))


def _broadcast_arrays(session: Session, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The chief's ``arrays`` (same shapes everywhere), sent as one float64 buffer (exact for float32 and int32)."""
    if not arrays:
        return []
    flat = session.cluster.broadcast(np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays]))
    out, start = [], 0
    for array in arrays:
        out.append(flat[start : start + array.size].reshape(array.shape).astype(array.dtype))
        start += array.size
    return out


def epoch_trainer(session: Session, phase: Phase) -> Callable[[int, Any], dict[str, float]]:
    """``train_epoch(epoch, bar) -> {"loss", "accuracy"}``: one epoch of synchronised data-parallel steps.

    Each step: this worker's batch ``(x float32 (b, ...), y int32 (b,), w float32 (b,))`` through
    ``phase.train_model`` (training mode), the loss ``sum(w * cross-entropy) / B`` (``B`` the global
    batch, so the summed gradient is the global batch's mean, as ``fit`` with batch ``B`` would take),
    the gradients and ``[loss sum, hits, photos]`` summed over the workers in one all-reduce, the same
    Adam update on every worker.
    """
    cluster, model = session.cluster, phase.train_model
    optimizer, variables = model.optimizer, model.trainable_variables
    global_batch, workers = float(session.global_batch), float(cluster.num_workers)
    sum_op = tf.distribute.ReduceOp.SUM

    def replica(x, y, w):
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            per_photo = keras.losses.sparse_categorical_crossentropy(y, probabilities) * w
            loss = tf.reduce_sum(per_photo) / global_batch
            if model.losses:
                loss += tf.add_n(model.losses) / workers
        gradients = tape.gradient(loss, variables)
        sums = tf.stack([tf.reduce_sum(per_photo), _hits(y, probabilities), tf.cast(tf.size(y), tf.float32)])
        return tf.distribute.get_replica_context().all_reduce(sum_op, (gradients, sums))

    @tf.function
    def step(x, y, w):
        gradients, sums = cluster.strategy.run(replica, args=(x, y, w))
        optimizer.apply(gradients, variables)
        return sums

    synced = []

    def train_epoch(epoch: int, bar: Any) -> dict[str, float]:
        if not synced:  # identical replicas from the first step, whatever each worker built
            broadcast_weights(session, model)
            if not optimizer.built:
                optimizer.build(variables)
            synced.append(True)
        totals, steps, start = np.zeros(3), 0, time.perf_counter()
        with cluster.guard():
            for x, y, w in phase.train_data(epoch):
                totals += step(x, y, w).numpy()
                steps += 1
                bar.on_train_batch_end(steps - 1, {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]})
        bar.on_train_end()
        stats = session.stats
        stats.steps[phase.name] = stats.steps.get(phase.name, 0) + steps
        stats.step_s[phase.name] = stats.step_s.get(phase.name, 0.0) + time.perf_counter() - start
        return {"loss": float(totals[0] / totals[2]), "accuracy": float(totals[1] / totals[2])}

    return train_epoch


def validator(session: Session, phase: Phase) -> Callable[[], dict[str, float]]:
    """``validate() -> {"loss", "accuracy"}`` of ``phase.val_model`` over every worker's validation photos."""
    model = phase.val_model

    @tf.function(reduce_retracing=True)
    def sums(x, y):
        probabilities = model(x, training=False)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, probabilities))
        return tf.stack([loss, _hits(y, probabilities), tf.cast(tf.size(y), tf.float32)])

    def validate() -> dict[str, float]:
        start, totals = time.perf_counter(), np.zeros(3)
        for x, y in phase.val_data:
            totals += sums(x, y).numpy()
        totals = session.cluster.all_sum(totals)
        session.stats.validate_s += time.perf_counter() - start
        return {"loss": float(totals[0] / max(totals[2], 1)), "accuracy": float(totals[1] / max(totals[2], 1))}

    return validate


def _hits(y: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(y, tf.int32)), tf.float32))
