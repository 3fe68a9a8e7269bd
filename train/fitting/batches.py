"""The ``tf.data`` batches the training phases fit on and validate against.

Pixels and activations stay in one (often memory-mapped) array; batches gather
rows from it on the fly, so no copy of the training set is made per epoch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from ..camera import NONE, Degradation
from .fit import epoch_seed


class VirtualRows:
    """``array[rows]`` without copying: indexing maps through ``rows``."""

    def __init__(self, array: np.ndarray, rows: np.ndarray):
        self.array, self.rows = array, rows

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.array[self.rows[index]])

    def __len__(self) -> int:
        return len(self.rows)


def epoch_batches(
    arrays: list[np.ndarray],
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    seed: int,
    phase: str,
    rows: np.ndarray | None = None,
    degrade: Degradation = NONE,
) -> Callable[[int], tf.data.Dataset]:
    """``epoch -> tf.data.Dataset`` of ``(x float32, y int32, sample_weight float32)`` batches.

    Each epoch has its own order and (with several arrays = views) its own view
    per sample, both drawn from ``(seed, phase, epoch)``: a resumed run sees the
    same batches as an uninterrupted one. ``rows`` maps sample ``i`` to
    ``arrays[v][rows[i]]`` (default: the identity). ``degrade`` (``uint8`` pixel
    arrays only) gives its share of each batch's photos a fresh camera
    degradation (:class:`train.camera.Degradation`), drawn from the same seed.
    """
    count = len(labels)
    sample_shape = tuple(arrays[0].shape[1:])

    def gather(order: np.ndarray, views: np.ndarray, draws: np.ndarray):
        x = np.empty((len(order), *sample_shape), dtype=np.float32)
        source = order if rows is None else rows[order]
        for view in np.unique(views):
            mask = views == view
            x[mask] = arrays[int(view)][source[mask]]
        if degrade:
            x = degrade.apply(x.astype(np.uint8), np.random.default_rng(draws.tolist())).astype(np.float32)
        return x, labels[order], weights[order]

    def make(epoch: int) -> tf.data.Dataset:
        rng = np.random.default_rng(epoch_seed(seed, phase, epoch))
        order = rng.permutation(count)
        views = rng.integers(0, len(arrays), size=count)
        # Drawn last, and only when used, so that the order and views stay those of a run without degradations.
        draws = rng.integers(0, 2**31 - 1, size=count) if degrade else np.zeros(count, dtype=np.int64)
        dataset = tf.data.Dataset.from_tensor_slices((order, views, draws)).batch(batch_size)
        dataset = dataset.map(
            lambda o, v, d: tf.numpy_function(gather, [o, v, d], [tf.float32, tf.int32, tf.float32]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        dataset = dataset.map(
            lambda x, y, w: (tf.ensure_shape(x, (None, *sample_shape)), tf.ensure_shape(y, (None,)), tf.ensure_shape(w, (None,)))
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    return make


def fixed_batches(array: np.ndarray, labels: np.ndarray, batch_size: int, rows: np.ndarray | None = None) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(x float32, y int32)`` batches in order (for validation)."""
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
