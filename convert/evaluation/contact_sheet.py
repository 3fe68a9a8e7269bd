"""A contact sheet: photos as thumbnails in a grid, each with a few caption lines below it (Pillow only).

``python -m convert evaluate`` draws the worst mistakes with it (``mistakes.png``): each
tile is the photo as the model saw it (the contract's resize) with its true label, the
model's answer and score, and the file name.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

THUMB = 160            # thumbnail side in pixels
LINE = 13              # caption line height in pixels (Pillow's default bitmap font)
PAD = 6                # margin around each tile
COLUMNS = 6
BACKGROUND, TEXT, ALERT = (255, 255, 255), (20, 20, 20), (180, 20, 20)


@dataclass(frozen=True)
class Tile:
    """One thumbnail: ``pixels`` uint8 ``(H, W, 3)`` RGB 0–255 (any size) and its caption lines (the first in red)."""

    pixels: np.ndarray
    caption: tuple[str, ...]


def cell_size(lines: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of one tile with ``lines`` caption lines."""
    return THUMB + 2 * PAD, THUMB + 2 * PAD + lines * LINE


def sheet_size(tiles: int, lines: int, columns: int = COLUMNS) -> tuple[int, int]:
    """``(width, height)`` of a sheet of ``tiles`` tiles: at most ``columns`` per row, as many rows as needed."""
    width, height = cell_size(lines)
    return min(tiles, columns) * width, math.ceil(tiles / columns) * height


def _fit(text: str, draw: ImageDraw.ImageDraw, font, width: int) -> str:
    """``text`` shortened with "..." in the middle until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 4:
        keep -= 1
        short = text[: keep // 2] + "..." + text[len(text) - (keep - keep // 2):]
        if draw.textlength(short, font=font) <= width:
            return short
    return text[:4]


def contact_sheet(tiles: Sequence[Tile], *, columns: int = COLUMNS, empty: str = "nothing to show") -> Image.Image:
    """The tiles in a grid (row by row), each thumbnail scaled to fit ``THUMB`` x ``THUMB``; RGB.

    With no tile, a small image saying ``empty``.
    """
    font = ImageFont.load_default()
    if not tiles:
        image = Image.new("RGB", cell_size(1), BACKGROUND)
        ImageDraw.Draw(image).text((PAD, PAD), empty, fill=TEXT, font=font)
        return image
    lines = max(len(tile.caption) for tile in tiles)
    cell_w, cell_h = cell_size(lines)
    sheet = Image.new("RGB", sheet_size(len(tiles), lines, columns), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for n, tile in enumerate(tiles):
        x, y = (n % columns) * cell_w + PAD, (n // columns) * cell_h + PAD
        thumb = Image.fromarray(np.ascontiguousarray(tile.pixels, dtype=np.uint8), "RGB")
        thumb.thumbnail((THUMB, THUMB))
        sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        for k, text in enumerate(tile.caption):
            draw.text((x, y + THUMB + 2 + k * LINE), _fit(text, draw, font, THUMB), fill=ALERT if k == 0 else TEXT,
                      font=font)
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
