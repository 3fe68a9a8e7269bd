"""Tensor quantisation: the model's integer input and output tensors ↔ pixels and probabilities.

The interpreter gives each tensor's ``scale`` and ``zero_point``
(``real = scale * (q - zero_point)``); :class:`edge_runner.core.model.Classifier` and
:mod:`edge_runner.explain.occlusion` apply them here, so a float, uint8 or int8 model
all take the same 0–255 pixels and give the same float32 probabilities.
"""

from __future__ import annotations

import numpy as np


def quantize_input(pixels: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Cast raw 0–255 pixels to a model's input tensor type.

    ``scale`` and ``zero_point`` are the interpreter's own input quantisation
    parameters (``real = scale * (q - zero_point)``); they are ignored for float
    inputs. For the kit's int8 models they are 1.0 and 0 (uint8) or 1.0 and -128
    (int8), so pixels enter exactly; any other value is honoured, with rounding
    and clipping to the integer type.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return pixels.astype(dtype)
    if dtype == np.uint8 and pixels.dtype == np.uint8 and scale == 1.0 and zero_point == 0:
        return pixels  # the kit's int8 models: pixels enter as they are
    info = np.iinfo(dtype)
    if scale == 1.0:
        shifted = pixels.astype(np.int32) + int(zero_point)
    else:
        shifted = np.round(pixels.astype(np.float32) / np.float32(scale)).astype(np.int32) + int(zero_point)
    return np.clip(shifted, info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer output tensor → float32 probabilities (float outputs pass through)."""
    if values.dtype.kind == "f":
        return values.astype(np.float32)
    return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
