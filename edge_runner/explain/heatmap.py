"""Drawing an explanation map over a photo (Pillow + numpy only, so it runs on the device).

A *map* here is a small float grid ``(rows, cols)`` that says how much each
region of the model's input mattered (occlusion drops, Grad-CAM activations).
The model's input is the whole photo resized without a crop (the contract's
``crop: none``), so grid cell ``(r, c)`` covers the same fraction of the
original photo and the map is simply stretched over it.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..common.files import write_atomic

# A perceptually ordered dark-blue → red → yellow ramp (anchor points of
# matplotlib's "inferno"), so "more important" reads as "hotter" in colour and
# in grey print; interpolated linearly between anchors.
_ANCHORS = np.array(
    [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)],
    dtype=np.float32,
)
# Largest side of the drawn overlay: enough to see the photo, small enough for a web answer.
OVERLAY_MAX_SIDE = 448


def normalize(grid: np.ndarray) -> np.ndarray:
    """``grid`` clipped at 0 and scaled to 0–1 by its maximum (all zeros stay zeros). float32, same shape."""
    values = np.clip(np.asarray(grid, dtype=np.float32), 0.0, None)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float grid ``(rows, cols)`` to ``size`` = ``(width, height)``; float32 ``(height, width)``.

    Cell centres map to cell centres (Pillow's convention), so the value of cell
    ``(r, c)`` lands at the middle of the image region that cell covers.
    """
    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError(f"grid must be 2-D (rows, cols), received shape {grid.shape}")
    image = Image.fromarray(grid, mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map 0–1 floats ``(H, W)`` to ``uint8`` RGB ``(H, W, 3)`` on the inferno-like ramp."""
    position = np.clip(values, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(_ANCHORS) - 1)
    t = (position - low)[..., None]
    return np.round(_ANCHORS[low] * (1 - t) + _ANCHORS[high] * t).astype(np.uint8)


def overlay(photo: Image.Image | np.ndarray, grid: np.ndarray, *, alpha: float = 0.5,
            max_side: int = OVERLAY_MAX_SIDE) -> Image.Image:
    """The photo with the normalised map blended over it, as an RGB image.

    Args:
        photo: a Pillow image (any size/aspect) or ``uint8`` ``(H, W, 3)`` RGB array.
        grid: the map ``(rows, cols)``; negative values count as 0.
        alpha: weight of the heat colours (0–1); where the map is 0 the photo shows
            through at ``1 - alpha / 2`` so unimportant regions stay readable.
        max_side: the result is at most this many pixels on its longer side.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in 0..1, received {alpha}")
    image = Image.fromarray(np.asarray(photo, dtype=np.uint8)) if isinstance(photo, np.ndarray) else photo.convert("RGB")
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    heat = normalize(upsample(grid, image.size))
    # Blend more heat where the map is high: hot regions pop out, cold ones keep the photo.
    weight = (alpha * (0.5 + 0.5 * heat))[..., None]
    mixed = np.asarray(image, dtype=np.float32) * (1 - weight) + colorize(heat).astype(np.float32) * weight
    return Image.fromarray(np.clip(np.round(mixed), 0, 255).astype(np.uint8), mode="RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def png_data_url(image: Image.Image) -> str:
    """``data:image/png;base64,…``: drops straight into an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write ``image`` as PNG atomically (never a half-written file)."""
    return write_atomic(path, png_bytes(image))
