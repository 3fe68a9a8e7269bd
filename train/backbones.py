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
    """

    name: str
    application: str
    alphas: tuple[float, ...] = (1.0,)
    normalization: Callable[[], Any] | None = None
    extra_kwargs: tuple[tuple[str, Any], ...] = ()
    min_size: int = 32

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

        constructor = getattr(keras.applications, self.application)
        kwargs = dict(self.extra_kwargs)
        if len(self.alphas) > 1:
            kwargs["alpha"] = alpha
        return constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **kwargs)


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
    )
}


def get_backbone(name: str) -> Backbone:
    from .errors import ConfigError

    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"--backbone must be one of {sorted(BACKBONES)}, received {name!r}") from None
