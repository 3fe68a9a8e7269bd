"""Grad-CAM for the kit's Keras classifiers, whatever the backbone.

The target is the last layer with a 4-D output ``(None, h, w, c)`` with
``h, w > 1``, found by walking the model graph in order and descending into
nested sub-models (the exported model holds the backbone as one layer), so
MobileNetV2's ``out_relu``, MobileNetV3's last activation and EfficientNet's
``top_activation`` are all found without naming them.

Explained score: the class's *logit margin*, ``z_c - mean(z_j, j != c)``, taken
before the softmax when the model ends in a ``Dense`` with a softmax
(the kit's head). For two classes that is the log-odds. The softmax
probability saturates at 1.0 in float32 for confident photos, and its gradient
then vanishes, so the maps would be noise exactly where the model is surest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf


class GradCamError(ValueError):
    """A model Grad-CAM cannot explain (no 4-D feature map, or a layer used twice)."""


@dataclass(frozen=True)
class FeatureLayer:
    """Where the target feature map lives: ``path`` = the nested models from outside in, then the layer."""

    path: tuple[Any, ...]

    @property
    def layer(self) -> Any:
        return self.path[-1]

    @property
    def name(self) -> str:
        return "/".join(item.name for item in self.path)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.layer.output.shape[1:])


@dataclass(frozen=True)
class GradCam:
    """One Grad-CAM map.

    Attributes:
        grid: float32 ``(h, w)`` ≥ 0: the class-weighted feature map after ReLU, in the
            feature layer's units (not normalised; :func:`edge_runner.explain.heatmap.normalize` scales it).
        class_index: the explained class.
        score: its softmax probability (0–1).
        probabilities: float32 ``(num_classes,)``.
    """

    grid: np.ndarray
    class_index: int
    score: float
    probabilities: np.ndarray


def _is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model) and hasattr(layer, "layers")


def _is_feature_map(layer: Any) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1


def find_feature_layer(model: Any) -> FeatureLayer:
    """The last layer with a spatial 4-D output, descending into nested models.

    Raises:
        GradCamError: the model has no such layer (e.g. a dense-only network).
    """

    def last_in(container: Any) -> tuple[Any, ...] | None:
        for layer in reversed(container.layers):
            if _is_model(layer):
                inner = last_in(layer)
                if inner is not None:
                    return (layer, *inner)
            elif not isinstance(layer, keras.layers.InputLayer) and _is_feature_map(layer):
                return (layer,)
        return None

    found = last_in(model)
    if found is None:
        raise GradCamError(f"model {model.name!r}: no layer with a 4-D (batch, height, width, channels) output to explain")
    return FeatureLayer(found)


def _single_node(model: Any, layer: Any) -> Any:
    """The one call of ``layer`` inside ``model``'s graph."""
    own = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    nodes = [node for node in layer._inbound_nodes if id(node) in own]
    if len(nodes) != 1:
        raise GradCamError(f"layer {layer.name!r} is called {len(nodes)} times in {model.name!r}; Grad-CAM needs exactly one")
    return nodes[0]


def _split(model: Any, path: tuple[Any, ...]) -> Callable[[Any], tuple[Any, Any]]:
    """A function ``x -> (feature map, model output)`` that runs ``model`` once, exposing the feature map."""
    if len(path) == 1:
        both = keras.Model(model.inputs, [path[0].output, model.output])
        return lambda x: tuple(both(x, training=False))
    sub = path[0]
    node = _single_node(model, sub)
    inputs = node.input_tensors
    outputs = node.output_tensors
    before = keras.Model(model.inputs, inputs[0] if len(inputs) == 1 else inputs)
    after = keras.Model(outputs[0] if len(outputs) == 1 else outputs, model.output)
    inner = _split(sub, path[1:])

    def run(x: Any) -> tuple[Any, Any]:
        features, middle = inner(before(x, training=False))
        return features, after(middle, training=False)

    return run


def _logit_head(model: Any) -> tuple[Any, Any] | None:
    """(model minus its last Dense-softmax layer, that layer) when the model ends in one, else None."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Dense) and activation is keras.activations.softmax:
        node = _single_node(model, last)
        return keras.Model(model.inputs, node.input_tensors[0]), last
    return None


class GradCamExplainer:
    """Builds the split graph once; :meth:`explain` then costs one forward and one backward pass."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.feature = find_feature_layer(model)
        head = _logit_head(model)
        if head is not None:
            trunk, self._dense = head
            self._run = _split(trunk, self.feature.path)
        else:
            self._dense = None
            self._run = _split(model, self.feature.path)

    def _logits_and_probs(self, output: Any) -> tuple[Any, Any]:
        if self._dense is None:
            probs = output
            return tf.math.log(tf.clip_by_value(probs, 1e-12, 1.0)), probs
        logits = tf.matmul(output, self._dense.kernel) + (self._dense.bias if self._dense.use_bias else 0.0)
        return logits, tf.nn.softmax(logits)

    def scores(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """float32 ``(N, K)`` logit margins ``z_c - mean(z_j, j != c)`` of raw 0–255 images ``(N, H, W, 3)``.

        The same score Grad-CAM explains (the deletion check measures its drop).
        """
        from edge_runner.explain.occlusion import margins

        rows = []
        for start in range(0, len(images), batch_size):
            batch = tf.convert_to_tensor(np.asarray(images[start:start + batch_size], dtype=np.float32))
            _, output = self._run(batch)
            logits, _ = self._logits_and_probs(output)
            rows.append(margins(np.asarray(logits, dtype=np.float32)))
        return np.concatenate(rows)

    def explain(self, pixels: np.ndarray, class_index: int | None = None) -> GradCam:
        """Grad-CAM of one image.

        Args:
            pixels: ``uint8`` or float ``(H, W, 3)`` raw 0–255 RGB (the model's input).
            class_index: the class to explain (default: the top-1 answer).
        """
        batch = tf.convert_to_tensor(np.asarray(pixels, dtype=np.float32)[np.newaxis])
        with tf.GradientTape() as tape:
            features, output = self._run(batch)
            tape.watch(features)
            logits, probs = self._logits_and_probs(output)
            index = int(tf.argmax(probs[0])) if class_index is None else int(class_index)
            count = int(logits.shape[-1])
            others = (tf.reduce_sum(logits[0]) - logits[0, index]) / max(1, count - 1)
            margin = logits[0, index] - (others if count > 1 else 0.0)
        grads = tape.gradient(margin, features)
        if grads is None:
            raise GradCamError(f"no gradient from the score to {self.feature.name}")
        weights = tf.reduce_mean(grads[0], axis=(0, 1))
        cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
        probabilities = probs[0].numpy().astype(np.float32)
        return GradCam(cam.numpy().astype(np.float32), index, float(probabilities[index]), probabilities)
