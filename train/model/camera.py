"""Camera degradations of training views: what a door camera does to a photo.

A network fine-tuned on a few sources also learns their look (sharp, well lit, lightly compressed) as a cue for the
classes, and calls photos of another look by it. Giving a share of the random training views one degradation each
takes that cue away (``--degrade P``; measured in train/README.md, "Camera degradations"):

* ``blur``: a Gaussian blur, radius 0.6–2 px at the model's input size (motion, focus);
* ``dark``: 20–60% of the light, with sensor noise (σ 2–10 of 255) (dusk, a dim hallway);
* ``jpeg``: re-encoded at quality 8–39 (a camera's or an upload's compression);
* ``small``: shrunk to 40–99 px and enlarged back (a pet far away, a low-resolution camera);
* ``greyscale``: a night camera's infrared frame.

No TensorFlow: Pillow and numpy on ``uint8`` pixels, before the Keras augmentation of the same view.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

KINDS = ("blur", "dark", "jpeg", "small", "greyscale")


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One degradation, of a kind drawn from :data:`KINDS`, of a ``uint8`` ``(H, W, 3)`` RGB image (same shape)."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
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


def degrade_batch(batch: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``uint8`` ``(B, H, W, 3)`` → the same, each image degraded (:func:`degrade`) with probability ``share``."""
    if share <= 0.0:
        return batch
    return np.stack([degrade(image, rng) if rng.random() < share else image for image in batch])
