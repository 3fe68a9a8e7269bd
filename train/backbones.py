"""The backbone registry: which pretrained networks ``train`` can fine-tune.

Each entry says how to build the network without its classifier top and how
raw 0–255 RGB pixels are normalised for it *inside the graph*, so a saved model
always takes raw pixels. Adding a backbone is one :class:`Backbone` entry.

Importing this module does not import TensorFlow (the CLI checks its arguments
before paying for that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# Keras' own ImageNet checkpoints for MobileNetV2 exist for these input sizes;
# other sizes load the 224 px weights (Keras warns), which still fine-tune well.
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
MOBILENET_V3_ALPHAS = (0.75, 1.0)


def _rescale_minus_one_to_one() -> Any:
    """``x / 127.5 - 1``: MobileNetV2's ImageNet normalisation as a layer."""
    import keras

    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalization")


@dataclass(frozen=True)
class Backbone:
    """One registry entry.

    Attributes:
        name: the ``--backbone`` value.
        application: the ``keras.applications`` constructor's name.
        alphas: allowed width multipliers (``(1.0,)`` for networks without one).
        normalization: builds the layer that maps raw 0–255 pixels to what the
            network expects, or ``None`` when the network normalises inside itself.
        extra_kwargs: further keyword arguments for the constructor.
        min_size: the smallest input side the network accepts.
        builder: builds the network instead of ``keras.applications`` (``builder(image_size=, weights=)``).
        pretrained: whether ImageNet weights exist (``False``: only ``--weights none``).
    """

    name: str
    application: str
    alphas: tuple[float, ...] = (1.0,)
    normalization: Callable[[], Any] | None = None
    extra_kwargs: tuple[tuple[str, Any], ...] = ()
    min_size: int = 32
    builder: Callable[..., Any] | None = None
    pretrained: bool = True

    def tag(self, alpha: float, image_size: int) -> str:
        """The contract's ``backbone`` string, e.g. ``"mobilenet_v2_1.0_224"``."""
        if len(self.alphas) == 1:
            return f"{self.name}_{image_size}"
        return f"{self.name}_{_alpha_text(alpha)}_{image_size}"

    def build(self, image_size: int, alpha: float, weights: str | None) -> Any:
        """The network without its top: ``(None, S, S, 3)`` → ``(None, h, w, C)`` feature map.

        Args:
            weights: ``"imagenet"`` (Keras download), a path to a weights file, or ``None``.
        """
        import keras

        if self.builder is not None:
            return self.builder(image_size=image_size, weights=weights)
        constructor = getattr(keras.applications, self.application)
        kwargs = dict(self.extra_kwargs)
        if len(self.alphas) > 1:
            kwargs["alpha"] = alpha
        return constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **kwargs)


# The from-scratch baseline: (filters per stage); each stage is Conv(3x3, stride 2)
# → BN → ReLU → Conv(3x3) → BN → ReLU, so 128 px ends at 8x8x128 (about 0.29 M weights).
BASELINE_STAGES = (16, 32, 64, 128)


def build_baseline_cnn(image_size: int, weights: str | None) -> Any:
    """A small Conv/BatchNorm/ReLU stack trained from scratch: ``(None, S, S, 3)`` in [-1, 1] → ``(None, S/16, S/16, 128)``.

    It is the "train your own CNN" approach as a candidate of ``python -m train compare``,
    so a comparison shows what ImageNet pretraining buys. It has no pretrained weights.
    """
    import keras

    if weights is not None:
        raise ValueError("the baseline CNN has no pretrained weights; it trains from scratch (use --weights none)")
    inputs = keras.Input((image_size, image_size, 3), name="baseline_input")
    x = inputs
    for stage, filters in enumerate(BASELINE_STAGES, start=1):
        for conv, stride in enumerate((2, 1), start=1):
            x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"stage{stage}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(name=f"stage{stage}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"stage{stage}_relu{conv}")(x)
    return keras.Model(inputs, x, name="baseline_cnn")


def _alpha_text(alpha: float) -> str:
    text = f"{alpha:g}"
    return text if "." in text else f"{text}.0"


BACKBONES: dict[str, Backbone] = {
    entry.name: entry
    for entry in (
        Backbone("mobilenet_v2", "MobileNetV2", MOBILENET_V2_ALPHAS, _rescale_minus_one_to_one),
        # MobileNetV3 and EfficientNet carry their own Rescaling/Normalization layers.
        Backbone(
            "mobilenet_v3_small",
            "MobileNetV3Small",
            MOBILENET_V3_ALPHAS,
            None,
            (("include_preprocessing", True), ("minimalistic", False)),
        ),
        Backbone(
            "mobilenet_v3_large",
            "MobileNetV3Large",
            MOBILENET_V3_ALPHAS,
            None,
            (("include_preprocessing", True), ("minimalistic", False)),
        ),
        Backbone("efficientnet_b0", "EfficientNetB0"),
        Backbone("baseline", "", normalization=_rescale_minus_one_to_one, builder=build_baseline_cnn,
                 pretrained=False),
    )
}


def get_backbone(name: str) -> Backbone:
    from .errors import ConfigError

    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"--backbone must be one of {sorted(BACKBONES)}, received {name!r}") from None
