"""The rescue head inside the model's one output: a photo the model does not call a class of interest becomes one
when a head fitted to the teacher sees it clearly.

Fine-tuning on a few sources makes the head miss pets from elsewhere (a terrier from a breed site answered
``other``), though the features still hold what the ImageNet classifier knows of them (train/README.md, "A rescue
head of its own"). The teacher's regression (:func:`train.model.teacher.fit_teacher`) is such a head: ``q``, on the
same pooled features as the model's own ``p``. With the recommended threshold ``T`` and the limit ``L``::

    rescued = max(p over the labels of interest) < T  and  max(q over them) >= L
    p' = p                                                              where not rescued
    p' = s on q's best label of interest, 0 on the others, 1 - s on the background, where rescued
    s  = T + MARGIN + (1 - T - MARGIN) (max q - L) / (1 - L)            (in [T + MARGIN, 1])

A rescued photo's score is just above the threshold, so the runner, the browser app and any app that takes the best
label at ``T`` get the rescue with no code of their own. The model's own detections never change. It is built from
comparisons and a select (``LESS``, ``GREATER_EQUAL``, ``LOGICAL_AND``, ``SELECT_V2``), which TFLite quantises
to int8; ``MARGIN`` keeps a rescued score at or above ``T`` through a uint8 output (steps of 1/256). The contract
records ``T`` and ``L`` (``rescue``): a run of the runner at a threshold above ``T + MARGIN`` loses the rescue.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# How far above the threshold a rescued score starts: four uint8 output steps.
MARGIN = 4 / 256


def build_rescued(saved: Any, coef: np.ndarray, intercept: np.ndarray, interest: tuple[int, ...], threshold: float,
                  limit: float) -> Any:
    """``saved`` (the reloaded inference model: image → ``p`` ``(None, K)``) with the rescue in its one output.

    Args:
        coef, intercept: the teacher's regression, float32 ``(K, C)`` and ``(K,)`` (on the pooled features).
        interest: indices of the labels of interest (every label but the background one), in label order.
        threshold: ``T``, 0.5–1: the contract's recommended threshold.
        limit: ``L``, 0–1: the head's score from which a photo is rescued.

    Returns:
        A Keras model, image ``(None, S, S, 3)`` float32 0–255 → ``(None, K)`` (probabilities but on rescued photos).
    """
    import keras
    from keras import ops

    pooled = saved.get_layer("pool").output
    rescue_head = keras.layers.Dense(len(intercept), activation="softmax", name="rescue")
    q = rescue_head(pooled)
    p = saved.outputs[0]
    k = int(p.shape[-1])
    # Masks instead of slices and concatenations: probabilities are >= 0, so the best label of interest is the
    # maximum of p (or q) times the mask; and TFLite's quantiser would have to give every slice of a concatenation
    # one scale, which it cannot always do.
    interest_mask = np.array([[1.0 if i in interest else 0.0 for i in range(k)]], np.float32)
    background_mask = 1.0 - interest_mask
    q_interest = q * interest_mask
    p_max = ops.max(p * interest_mask, axis=1, keepdims=True)
    q_max = ops.max(q_interest, axis=1, keepdims=True)
    rescued = ops.logical_and(ops.less(p_max, threshold), ops.greater_equal(q_max, limit))
    score = threshold + MARGIN + (1.0 - threshold - MARGIN) * (q_max - limit) / (1.0 - limit)
    answer = ops.where(ops.greater_equal(q_interest, q_max), score, 0.0 * score) + (1.0 - score) * background_mask
    output = ops.where(rescued, answer, p)
    model = keras.Model(saved.inputs, output, name=saved.name)
    rescue_head.set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
    return model
