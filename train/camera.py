"""Camera degradations of training views: what a door camera does to a photo.

A network fine-tuned on a few sources also learns their look (sharp, well lit, lightly compressed) as a cue for the
classes, and calls photos of another look by it. Giving a share of the random training views one degradation each
takes that cue away (``--degrade P``; measured in train/README.md, "Camera degradations"):

* ``blur``: a Gaussian blur, radius 0.6–2 px at the model's input size (motion, focus);
* ``dark``: 20–60% of the light, with sensor noise (σ 2–10 of 255) (dusk, a dim hallway);
* ``jpeg``: re-encoded at quality 8–39 (a camera's or an upload's compression);
* ``small``: shrunk to 40–99 px and enlarged back (a pet far away, a low-resolution camera);
* ``greyscale``: a night camera's infrared frame.

``--degrade-kind KIND`` (repeatable) keeps only some kinds: ``small`` alone is the kind that moved unseen
low-resolution face close-ups most, at a cost in other photos (train/README.md, "Which kind does it"). No TensorFlow:
Pillow and numpy on ``uint8`` pixels, before the Keras augmentation of the same view. Like ``train.backbones``, this
registry sits below ``train.config``, which checks the flags against it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .errors import ConfigError

KINDS = ("blur", "dark", "jpeg", "small", "greyscale")


def degrade(image: np.ndarray, rng: np.random.Generator, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """One degradation, of a kind drawn from ``kinds``, of a ``uint8`` ``(H, W, 3)`` RGB image (same shape)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "dark":
        light = image.astype(np.float32) * rng.uniform(0.2, 0.6)
        return (light + rng.normal(0.0, rng.uniform(2.0, 10.0), image.shape)).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(image)
    if kind == "blur":
        picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 2.0))))
    elif kind == "jpeg":
        encoded = io.BytesIO()
        picture.save(encoded, "JPEG", quality=int(rng.integers(8, 40)))
        picture = Image.open(io.BytesIO(encoded.getvalue())).convert("RGB")
    elif kind == "small":
        side = int(rng.integers(40, 100))
        picture = picture.resize((side, side), Image.BILINEAR).resize(picture.size, Image.BILINEAR)
    else:
        picture = ImageOps.grayscale(picture).convert("RGB")
    return np.asarray(picture, dtype=np.uint8)


def degrade_batch(batch: np.ndarray, share: float, rng: np.random.Generator,
                  kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """``uint8`` ``(B, H, W, 3)`` → the same, each image degraded (:func:`degrade`) with probability ``share``."""
    if share <= 0.0:
        return batch
    return np.stack([degrade(image, rng, kinds) if rng.random() < share else image for image in batch])


@dataclass(frozen=True)
class Degradation:
    """What ``--degrade P`` and ``--degrade-kind`` ask of a run: a share of the photos, each given one of ``kinds``.

    ``kinds`` are kept in :data:`KINDS`' order, without repeats, so that one choice always draws (and caches) alike.
    False when ``share`` is 0: nothing is degraded. Raises ``ConfigError`` for a choice of kinds without a share.
    """

    share: float = 0.0
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(kind for kind in KINDS if kind in self.kinds))
        if self.share <= 0.0 and self.kinds != KINDS:
            raise ConfigError(f"--degrade-kind {' '.join(self.kinds)} needs --degrade P (the share of the photos to "
                              "degrade), received --degrade 0")

    def __bool__(self) -> bool:
        return self.share > 0.0

    def apply(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """:func:`degrade_batch` of ``batch`` with this share and these kinds."""
        return degrade_batch(batch, self.share, rng, self.kinds)

    def key(self) -> dict[str, Any]:
        """What a cache key of degraded activations records (the same as before ``--degrade-kind`` for all kinds)."""
        return {"share": self.share, "kinds": list(self.kinds)}


NONE = Degradation()
