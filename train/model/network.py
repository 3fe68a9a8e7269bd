"""The classifier: backbone, head, and the sub-models each training phase runs.

The saved (inference) model is::

    image (None, S, S, 3) float32 raw RGB 0–255
      → normalisation (e.g. Rescaling(1/127.5, offset=-1) for MobileNetV2)
      → backbone (BatchNorm in inference mode)
      → GlobalAveragePooling2D → Dropout → Dense(N, softmax)

Training never changes that graph; it runs sub-models that share its layers:

* ``head``: pooled features ``(None, C)`` → probabilities (phase 1 trains it on
  features computed once by the frozen backbone);
* ``bottom``: image → the activation at the *cut*, the block boundary below the
  fine-tuned layers (computed once per view in ``cached`` mode);
* ``fine_tune``: cut activation → probabilities (phase 2 trains its top layers);
* ``augmented``: augmentation layers → the inference model (``full`` mode and
  from-scratch training: every step runs the whole network).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import keras

from ..backbones import get_backbone
from ..config import TrainConfig
from ..errors import TrainError

log = logging.getLogger(__name__)

# Keras' MobileNetV2 keeps BatchNorm statistics with momentum 0.999, which needs
# thousands of steps to forget its initial (0, 1) statistics: a network trained
# from scratch for a few hundred steps then predicts one class in inference mode.
SCRATCH_BATCHNORM_MOMENTUM = 0.9

# Small geometric and photometric changes: a cat stays a cat. Rotation is a
# fraction of a full turn (0.05 ≈ ±18°).
AUGMENTATION = {"flip": "horizontal", "rotation": 0.05, "zoom": 0.1, "contrast": 0.1}


@dataclass
class Network:
    """The inference model and the sub-models that share its layers.

    Attributes:
        inference: ``image`` ``(None, S, S, 3)`` float32 0–255 → ``(None, N)`` softmax.
        base: the backbone (a nested model inside ``inference``).
        cut: index in ``base.layers`` of the last layer kept frozen while fine-tuning
            (0 = the input: everything is trained; the last layer: nothing is).
        cut_shape: the shape of one cached activation: the cut layer's output, or
            the pooled features ``(C,)`` when nothing above the cut is trained.
        fine_tuned_layers: how many backbone layers lie above the cut.
        bottom: image → cut activation ``(None, h, w, c)``, or ``None`` from scratch.
        pooled: cut activation → pooled features ``(None, C)`` through the (frozen) top.
        embed: image ``(None, S, S, 3)`` float32 0–255 → pooled features ``(None, C)``, the classifier's input.
        head: pooled features → probabilities.
        fine_tune: cut activation → probabilities.
        augmented: image → augmentation → ``inference`` (for ``full`` mode).
        normalization: the layer mapping 0–255 to the backbone's range, or ``None``.
        backbone_tag: the contract's ``backbone`` string.
        from_scratch: BatchNorm trains too (no pretrained statistics to keep).
    """

    inference: keras.Model
    base: keras.Model
    cut: int
    cut_shape: tuple[int, ...]
    fine_tuned_layers: int
    bottom: keras.Model | None
    pooled: keras.Model
    embed: keras.Model
    head: keras.Model
    fine_tune: keras.Model
    augmented: keras.Model
    normalization: Any
    backbone_tag: str
    from_scratch: bool

    @property
    def cut_name(self) -> str:
        return self.base.layers[self.cut].name

    @property
    def caches_pooled(self) -> bool:
        """Whether the cut is the backbone's output (the cached activations are the pooled features)."""
        return self.cut == len(self.base.layers) - 1

    @property
    def feature_size(self) -> int:
        return int(self.base.output.shape[-1])


def build_network(config: TrainConfig, num_classes: int) -> Network:
    """Build the classifier for ``config`` (call inside the distribution strategy's scope).

    Raises:
        TrainError: the weights cannot be downloaded or do not fit the backbone.
    """
    backbone = get_backbone(config.backbone)
    size = config.image_size
    base = _build_base(backbone, config)
    base.trainable = True

    inputs = keras.Input((size, size, 3), name="image", dtype="float32")
    normalization = backbone.normalization() if backbone.normalization else None
    x = normalization(inputs) if normalization is not None else inputs
    # Pretrained BatchNorm statistics are kept: the backbone always runs in
    # inference mode (also during fine-tuning). From scratch it must learn them.
    features = base(x) if config.from_scratch else base(x, training=False)
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    dropout = keras.layers.Dropout(config.dropout, seed=config.seed, name="dropout")
    classifier = keras.layers.Dense(num_classes, activation="softmax", name="classifier")
    pooled_image = pool(features)
    outputs = classifier(dropout(pooled_image))
    inference = keras.Model(inputs, outputs, name=_model_name(backbone.tag(config.alpha, size)))
    embed = keras.Model(inputs, pooled_image, name="embed")

    cut = 0 if config.from_scratch else choose_cut(base, config.fine_tune_layers if config.fine_tune_epochs else 0)
    cut_layer = base.layers[cut]
    last = len(base.layers) - 1

    feature_size = int(base.output.shape[-1])
    pooled_in = keras.Input((feature_size,), name="pooled")
    head = keras.Model(pooled_in, classifier(dropout(pooled_in)), name="head")

    if cut == last:
        # Nothing above the cut is trained: cache the pooled features themselves.
        cut_shape: tuple[int, ...] = (feature_size,)
        cut_in = keras.Input(cut_shape, name="activation")
        pooled = keras.Sequential([keras.Input(cut_shape)], name="pooled")  # identity
        fine_tune = head
    else:
        cut_shape = tuple(int(d) for d in cut_layer.output.shape[1:])
        cut_in = keras.Input(cut_shape, name="activation")
        if cut == 0:
            top_out = base(cut_in) if config.from_scratch else base(cut_in, training=False)
        else:
            top_out = keras.Model(cut_layer.output, base.output, name="top")(cut_in)
        pooled_features = pool(top_out)
        pooled = keras.Model(cut_in, pooled_features, name="pooled")
        fine_tune = keras.Model(cut_in, classifier(dropout(pooled_features)), name="fine_tune")

    bottom = None
    if not config.from_scratch:
        image_in = keras.Input((size, size, 3), name="image")
        y = normalization(image_in) if normalization is not None else image_in
        if cut == last:
            below = keras.layers.GlobalAveragePooling2D(name="bottom_pool")(base(y, training=False))
        else:
            below = keras.Model(base.input, cut_layer.output, name="bottom_backbone")(y, training=False)
        bottom = keras.Model(image_in, below, name="bottom")

    augmentation = make_augmentation(config.seed)
    image_in = keras.Input((size, size, 3), name="image")
    augmented = keras.Model(image_in, inference(augmentation(image_in)), name="augmented")

    network = Network(
        inference=inference,
        base=base,
        cut=cut,
        cut_shape=cut_shape,
        fine_tuned_layers=last - cut,
        bottom=bottom,
        pooled=pooled,
        embed=embed,
        head=head,
        fine_tune=fine_tune,
        augmented=augmented,
        normalization=normalization,
        backbone_tag=backbone.tag(config.alpha, size),
        from_scratch=config.from_scratch,
    )
    freeze_backbone(network)
    return network


def _model_name(tag: str) -> str:
    return "edgekit_" + "".join(c if c.isalnum() or c == "_" else "_" for c in tag)


def _build_base(backbone, config: TrainConfig) -> keras.Model:
    weights = None if config.init_from else config.weights_argument  # --init-from: RUN's model.keras sets them
    try:
        return backbone.build(config.image_size, float(config.alpha), weights)
    except Exception as exc:  # noqa: BLE001
        # Keras raises a bare Exception for a failed download, and OSError/ValueError
        # for an unreadable file or one whose layers or shapes do not fit.
        reason = " ".join(str(exc).split())[:300]
        if weights == "imagenet":
            raise TrainError(
                f"--weights imagenet: could not get Keras' ImageNet weights for {config.backbone} alpha {config.alpha} "
                f"({reason}); without internet pass --weights PATH to a local copy"
            ) from None
        if weights is None:
            raise TrainError(f"--backbone {config.backbone}: cannot build it ({reason})") from None
        raise TrainError(
            f"--weights {weights}: does not fit {config.backbone} alpha {config.alpha} without its top ({reason})"
        ) from None


def block_boundaries(base: keras.Model) -> list[int]:
    """Indices ``i`` of ``base.layers`` whose output is the only tensor flowing past layer ``i``.

    Cutting there splits the backbone into two models joined by one tensor
    (inside a residual block two tensors cross, so those cuts are not allowed).
    """
    layers = base.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    earliest_input = []
    for layer in layers:
        sources = [
            index[id(tensor._keras_history.operation)]
            for node in layer._inbound_nodes
            for tensor in node.input_tensors
            if id(tensor._keras_history.operation) in index
        ]
        earliest_input.append(min(sources, default=index[id(layer)]))
    boundaries = []
    lowest_later = len(layers)
    for i in range(len(layers) - 1, -1, -1):
        if lowest_later >= i:
            boundaries.append(i)
        lowest_later = min(lowest_later, earliest_input[i])
    return sorted(boundaries)


def choose_cut(base: keras.Model, fine_tune_layers: int) -> int:
    """The boundary with at least ``fine_tune_layers`` backbone layers above it (0 = train all)."""
    last = len(base.layers) - 1
    target = last - max(0, fine_tune_layers)
    if target <= 0:
        return 0
    return max(i for i in block_boundaries(base) if i <= target)


def freeze_backbone(network: Network) -> None:
    """Mark trainable the layers above the cut (all of them from scratch); BatchNorm stays frozen when pretrained."""
    for i, layer in enumerate(network.base.layers):
        if network.from_scratch:
            layer.trainable = True
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BATCHNORM_MOMENTUM
        else:
            layer.trainable = i > network.cut and not isinstance(layer, keras.layers.BatchNormalization)


def make_augmentation(seed: int, name: str = "augmentation") -> keras.Sequential:
    """Random flip, small rotation, zoom and contrast, active only when called with ``training=True``.

    Takes and returns float32 ``(None, H, W, 3)`` in 0–255.
    """
    return keras.Sequential(
        [
            keras.layers.RandomFlip(AUGMENTATION["flip"], seed=seed),
            keras.layers.RandomRotation(AUGMENTATION["rotation"], fill_mode="reflect", seed=seed + 1),
            keras.layers.RandomZoom(AUGMENTATION["zoom"], fill_mode="reflect", seed=seed + 2),
            keras.layers.RandomContrast(AUGMENTATION["contrast"], value_range=(0, 255), seed=seed + 3),
        ],
        name=name,
    )


def compile_for_training(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def trainable_parameter_count(model: keras.Model) -> int:
    return int(sum(int(keras.ops.size(v)) for v in model.trainable_variables))


def export_model(network: Network) -> keras.Model:
    """A fresh, uncompiled model over the inference graph (same layers): what ``model.keras`` holds."""
    inference = network.inference
    return keras.Model(inference.inputs, inference.outputs, name=inference.name)
