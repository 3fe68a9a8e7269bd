"""Shared by the watcher tests: a colour model with a background class and clips written with OpenCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# RGB colours the colour model maps to its labels: red = cat, green = dog, blue = other (background).
RED, GREEN, BLUE = (220, 40, 40), (40, 200, 60), (40, 70, 220)
LABELS = ("cat", "dog", "other")
SIZE = 32


def build_colour_model(root: Path) -> Path:
    """A float32 ``.tflite`` whose top label is the frame's dominant colour channel (weights set by hand).

    Its contract names ``other`` as the background label, like a model trained with a background class.
    """
    from conftest import build_colour_keras, convert_tiny

    from edge_runner.core.spec import InputSpec, contract_path_for

    model = build_colour_keras(SIZE, sharpness=12.0)
    path = Path(root) / "colour_float32.tflite"
    path.write_bytes(convert_tiny(model, "float32", SIZE))
    InputSpec(labels=LABELS, height=SIZE, width=SIZE, name="colour", background_label="other").save(contract_path_for(path))
    return path


def write_clip(path: Path, colours: list[tuple[int, int, int]], fps: float = 10.0, size=(64, 48), seed: int = 0) -> Path:
    """An MJPG ``.avi`` with one frame per entry of ``colours`` (RGB), a little noise on each."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    for colour in colours:
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = colour
        frame += rng.integers(0, 20, frame.shape, dtype=np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def visit_clip(path: Path, before: int = 20, visit: int = 30, after: int = 20, colour=RED, fps: float = 10.0) -> Path:
    """Background, a visit of ``visit`` frames with one background glitch frame in its middle, background."""
    middle = [colour] * visit
    middle[visit // 2] = BLUE  # one wrong frame inside the visit must not split it
    return write_clip(path, [BLUE] * before + middle + [BLUE] * after, fps=fps)
