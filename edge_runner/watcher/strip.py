"""A visit told in a few frames: small thumbnails spread over its whole length, joined into one JPEG.

The best frame (the snapshot) shows *what* came; the strip shows what it did:
arriving, sitting, leaving. It must cost the camera loop next to nothing and
stay bounded however long a visit lasts, so :class:`ThumbnailStrip` keeps at
most ``2 * frames`` thumbnails: it takes one every ``interval`` seconds and,
when full, drops every other one and doubles the interval. A 10-second visit
and a 3-hour one both end with ``frames`` thumbnails spread evenly over it.
Only the frames it keeps are ever scaled down (one Pillow resize each).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_STRIP_FRAMES = 6
THUMB_WIDTH = 160
FIRST_INTERVAL_S = 0.25
GAP_PX = 2


class ThumbnailStrip:
    """Thumbnails of one visit, sampled over time with bounded memory.

    Args:
        frames: thumbnails in the final strip (>= 2).
        width: thumbnail width in pixels; the height keeps the frame's aspect ratio.
        interval_s: the first sampling interval; doubled each time the buffer fills.
    """

    def __init__(self, frames: int = DEFAULT_STRIP_FRAMES, *, width: int = THUMB_WIDTH,
                 interval_s: float = FIRST_INTERVAL_S) -> None:
        if frames < 2:
            raise ValueError(f"a strip needs at least 2 frames, received {frames}")
        self.frames, self.width, self.interval_s = frames, width, interval_s
        self._thumbs: list[tuple[float, np.ndarray]] = []
        self._next_t: float | None = None

    def __len__(self) -> int:
        return len(self._thumbs)

    def offer(self, t: float, frame: np.ndarray | None) -> bool:
        """Keep a thumbnail of ``frame`` (RGB ``uint8`` ``(H, W, 3)``) taken at ``t`` s if one is due; ``True`` if kept."""
        if frame is None or (self._next_t is not None and t < self._next_t):
            return False
        self._thumbs.append((t, thumbnail(frame, self.width)))
        if len(self._thumbs) > 2 * self.frames:
            self._thumbs = self._thumbs[::2]
            self.interval_s *= 2
        self._next_t = t + self.interval_s
        return True

    def image(self) -> np.ndarray | None:
        """The strip: ``frames`` thumbnails (fewer for a short visit) side by side, RGB ``uint8``; ``None`` if < 2."""
        if len(self._thumbs) < 2:
            return None
        picks = np.unique(np.linspace(0, len(self._thumbs) - 1, min(self.frames, len(self._thumbs))).round().astype(int))
        thumbs = [self._thumbs[i][1] for i in picks]
        height = min(thumb.shape[0] for thumb in thumbs)
        width = sum(thumb.shape[1] for thumb in thumbs) + GAP_PX * (len(thumbs) - 1)
        strip = np.zeros((height, width, 3), np.uint8)
        x = 0
        for thumb in thumbs:
            strip[:, x:x + thumb.shape[1]] = thumb[:height]
            x += thumb.shape[1] + GAP_PX
        return strip


def thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` (RGB ``uint8`` ``(H, W, 3)``) scaled to ``width`` pixels wide (never up), aspect ratio kept."""
    image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    if image.width > width:
        # reducing_gap: Pillow first shrinks by an integer factor (cheap), then resamples the rest.
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.BILINEAR,
                             reducing_gap=2.0)
    return np.asarray(image)
