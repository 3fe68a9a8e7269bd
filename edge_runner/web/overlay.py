"""Drawing for the live view: the label on a frame, a message card when there is no frame, JPEG encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def annotate(frame: np.ndarray, text: str, *, max_width: int = 640) -> Image.Image:
    """The frame scaled to at most ``max_width`` pixels wide with ``text`` on a dark band at the top.

    Args:
        frame: RGB ``uint8`` ``(H, W, 3)``.
        text: one line, e.g. ``"cat 97.3% · 14.8 fps"``.

    Returns:
        An RGB Pillow image ready to encode.
    """
    image = Image.fromarray(frame, mode="RGB")
    if image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), Image.Resampling.BILINEAR)
    font = _font(max(12, image.height // 16))
    draw = ImageDraw.Draw(image, "RGBA")
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(4, (bottom - top) // 3)
    draw.rectangle((0, 0, image.width, bottom - top + 2 * pad), fill=(0, 0, 0, 150))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    return image


def message_card(text: str, size: tuple[int, int] = (640, 360)) -> Image.Image:
    """A grey RGB card with ``text`` wrapped on it: what viewers see when there is no camera frame."""
    image = Image.new("RGB", size, (48, 48, 48))
    draw = ImageDraw.Draw(image)
    font = _font(max(12, size[1] // 20))
    words, lines, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) > size[0] - 32 and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    draw.multiline_text((16, 16), "\n".join(lines), font=font, fill=(240, 240, 240), spacing=6)
    return image


def encode_jpeg(image: Image.Image, quality: int = 80) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
