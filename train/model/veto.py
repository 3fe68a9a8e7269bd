"""The distance veto inside the model's one output: a photo the model calls a class of interest becomes the
background when its features lie far from every class of interest it was trained on (``--distance-veto KEEP``).

Fine-tuned on a few sources, the model calls some photos unlike any it was trained on a pet: face close-ups, a
llama. Their pooled features (the classifier's input, ``C`` numbers) lie far from the training pets', in directions
where the training pets hardly vary (Lee et al., 2018; train/README.md, "A strict mode"). From the training
photos of each class of interest ``k``: the mean ``mu_k`` and one shared covariance; ``A`` (``C x R``) whitens its
``R`` least-varying directions. With ``D`` the limit that keeps the share ``KEEP`` of the validation photos of
interest::

    d      = min over k of  sum(clip(A (f - mu_k), -CLIP, CLIP) ** 2) / D
    vetoed = the best label of p is a class of interest  and  d > 1
    p'     = 1 on the background, 0 on the others                         where vetoed, else p

It costs one ``C x R`` layer on features the model computes anyway (``R`` = 512: about 655,000 multiply-adds
against MobileNetV2's 300 million). The rule is a select, like the rescue (:mod:`train.model.rescue`), so every
runner and app gets it with no code of its own. It holds in float32 and float16 files. ``convert`` makes no
integer file of it: measured, the int8 file loses most of the veto while it passes the accuracy gate
(train/README.md, "A strict mode"). The contract records ``KEEP``, ``R`` and ``D`` (``distance_veto``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# The least-varying directions kept: where photos unlike the training ones stand out (train/README.md).
DIRECTIONS = 512
# Each whitened direction counts at most this many standard deviations: one wild feature cannot veto alone.
CLIP = 8.0
# Added to the covariance's diagonal, as a share of its mean variance: its smallest directions stay invertible.
RIDGE = 1e-3


@dataclass(frozen=True)
class Veto:
    """A fitted distance veto.

    Attributes:
        projection: float32 ``(C, R)``, ``A``: the whitened least-varying directions of the shared covariance.
        centres: float32 ``(K, R)``, ``A mu_k`` for each class of interest ``k`` (in label order).
        limit: ``D`` (> 0), the squared whitened distance above which a photo is vetoed.
        keep: the share of the validation photos of interest within the limit (``--distance-veto``).
        photos: training photos the means and covariance come from; ``checked``: validation photos of interest.
    """

    projection: np.ndarray
    centres: np.ndarray
    limit: float
    keep: float
    photos: int
    checked: int

    @property
    def directions(self) -> int:
        return int(self.projection.shape[1])

    def contract(self) -> dict[str, Any]:
        """The contract's ``distance_veto`` record."""
        return {"keep": self.keep, "directions": self.directions, "limit": round(float(self.limit), 4)}

    def distances(self, features: np.ndarray) -> np.ndarray:
        """float32 ``(n,)``: ``d`` of features ``(n, C)`` (above 1: vetoed when called a class of interest)."""
        z = features.astype(np.float32) @ self.projection
        squared = [np.square(np.clip(z - centre, -CLIP, CLIP)).sum(1) for centre in self.centres]
        return np.min(squared, axis=0) / self.limit


def fit_veto(features: np.ndarray, classes: np.ndarray, checked: np.ndarray, keep: float) -> Veto:
    """Fit the veto on the training photos of interest and set its limit on the validation photos of interest.

    Args:
        features: float32 ``(n, C)``, the model's pooled features of the training photos of interest.
        classes: int ``(n,)``, each photo's class among the classes of interest, ``0 … K-1``.
        checked: float32 ``(m, C)``, the pooled features of the validation photos of interest.
        keep: 0.5–1 (exclusive): the share of ``checked`` the limit keeps.

    Returns:
        The veto with ``min(DIRECTIONS, C)`` directions.
    """
    features = features.astype(np.float64)
    means = np.stack([features[classes == k].mean(0) for k in range(int(classes.max()) + 1)])
    centred = features - means[classes]
    covariance = centred.T @ centred / len(centred)
    covariance += RIDGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    variances, vectors = np.linalg.eigh(covariance)  # ascending: the least-varying directions first
    r = min(DIRECTIONS, len(variances))
    projection = (vectors[:, :r] / np.sqrt(variances[:r])).astype(np.float32)
    unit = Veto(projection, (means @ projection).astype(np.float32), 1.0, keep, len(features), len(checked))
    return replace(unit, limit=max(float(np.quantile(unit.distances(checked), keep)), 1e-6))


def build_vetoed(saved: Any, veto: Veto, interest: tuple[int, ...]) -> Any:
    """``saved`` (image → ``p`` ``(None, K)``, with a ``pool`` layer) with the veto in its one output.

    Args:
        interest: indices of the labels of interest (every label but the background one, which is the only other).

    Returns:
        A Keras model, image ``(None, S, S, 3)`` float32 0–255 → ``(None, K)``: ``p``, or the background one-hot
        on vetoed photos.
    """
    import keras
    from keras import ops

    pooled = saved.get_layer("pool").output
    project = keras.layers.Dense(veto.directions, use_bias=False, name="veto")
    z = project(pooled)
    p = saved.outputs[0]
    k = int(p.shape[-1])
    interest_mask = np.array([[1.0 if i in interest else 0.0 for i in range(k)]], np.float32)
    background_mask = 1.0 - interest_mask
    squared = []
    for centre in veto.centres:
        step = ops.clip(z - centre[None], -CLIP, CLIP)
        squared.append(ops.sum(step * step, axis=1, keepdims=True))  # MUL, which TFLite has in int8 (SQUARE not)
    nearest = squared[0]
    for other in squared[1:]:
        nearest = ops.minimum(nearest, other)
    # Masks instead of slices, as in the rescue: probabilities are >= 0, so the best of a group is a masked maximum.
    called = ops.greater_equal(ops.max(p * interest_mask, axis=1, keepdims=True),
                               ops.max(p * background_mask, axis=1, keepdims=True))
    vetoed = ops.logical_and(called, ops.greater(nearest, veto.limit))
    output = ops.where(vetoed, 0.0 * p + background_mask, p)
    model = keras.Model(saved.inputs, output, name=saved.name)
    project.set_weights([veto.projection])
    return model
