"""The kit's one preprocessing: a photo in, the model's raw RGB pixels out.

Training, int8 calibration, the converter's accuracy check, the runner and the
web server all call :func:`preprocess`, so a model never sees pixels prepared
differently from those it was trained on. Normalisation is *not* done here: it
lives inside the model graph (a ``Rescaling`` layer), so this stays
``decode → EXIF orientation → RGB → (crop) → resize``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..common.console import EXIT_FAILED
from .spec import InputSpec

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]
# Anything :func:`to_input` (and ``Classifier.classify_image``) accepts: an encoded photo, a
# Pillow image or a camera frame (``uint8`` ``(H, W, 3)`` RGB).
ImageInput = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
# JPEG draft decoding (DCT scaling by 1/2, 1/4 or 1/8) is only asked to go down
# to this multiple of the input size, so the final resize still has enough
# pixels to antialias from; `convert` measures that it costs no accuracy.
DRAFT_MARGIN = 2


class ImageError(ValueError):
    """An input that cannot be turned into pixels; the message names the input and the reason."""

    exit_status = EXIT_FAILED  # a failed input: the rest of a batch goes on


@dataclass(frozen=True)
class Pixels:
    """A preprocessed image.

    Attributes:
        array: ``uint8`` array of shape ``(height, width, 3)``, RGB, values 0–255.
        source: where it came from (a path, or a name given by the caller).
        original_size: ``(width, height)`` of the decoded photo after EXIF orientation.
    """

    array: np.ndarray
    source: str
    original_size: tuple[int, int]


def describe(source: ImageSource, name: str | None = None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<bytes>" if isinstance(source, bytes) else "<stream>"


def open_image(source: ImageSource, *, draft_size: tuple[int, int] | None = None, name: str | None = None) -> Image.Image:
    """Decode an image, apply its EXIF orientation and return it in RGB mode.

    Args:
        source: a path, the file's bytes, or a binary stream.
        draft_size: ``(width, height)``; when given, a JPEG much larger than this
            is decoded at reduced size (never below it).
        name: how to name the input in errors (default: the path).

    Raises:
        ImageError: ``"<name>: <reason>"`` for a missing, empty, truncated, non-image
            or oversized (decompression bomb) input.
    """
    label = describe(source, name)
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                raise ImageError(f"{label}: is a directory, not an image")
            if path.stat().st_size == 0:
                raise ImageError(f"{label}: empty file (0 bytes)")
            handle: BinaryIO = open(path, "rb")
        elif isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise ImageError(f"{label}: empty file (0 bytes)")
            handle = io.BytesIO(bytes(source))
        else:
            handle = source
        with handle:
            image = Image.open(handle)
            _check_pixel_count(image, label)
            if draft_size is not None and image.format == "JPEG":
                side = max(draft_size) * DRAFT_MARGIN  # square: EXIF may swap width and height
                image.draft("RGB", (side, side))
            image.load()
            # In place: an upright photo (most of them) is not copied.
            ImageOps.exif_transpose(image, in_place=True)
            return to_rgb(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except PermissionError:
        raise ImageError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image (no decoder recognises its content)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/ValueError.
        reason = str(exc).strip() or type(exc).__name__
        raise ImageError(f"{label}: corrupt or truncated image data ({reason})") from None


def _check_pixel_count(image: Image.Image, label: str) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit and width * height > limit:
        raise ImageError(
            f"{label}: refused as a possible decompression bomb ({width}x{height} = {width * height} pixels, "
            f"limit {limit})"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    16/32-bit integer and float images are scaled to 0–255 (Pillow's own
    ``convert`` would clip them); transparent images are composited on white.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image)
        # 16-bit data stored in mode "I" still only spans 0..65535.
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        array = np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max(initial=0.0) <= 1.0 else 255.0
        array = np.clip(array * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def fit(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Crop (if the contract says so) and resize an RGB image to the model's input.

    Returns a ``uint8`` array of shape ``(spec.height, spec.width, 3)``.
    """
    if spec.crop == "center":
        target = spec.width / spec.height
        width, height = image.size
        if width / height > target:
            new_width = round(height * target)
            left = (width - new_width) // 2
            image = image.crop((left, 0, left + new_width, height))
        else:
            new_height = round(width / target)
            top = (height - new_height) // 2
            image = image.crop((0, top, width, top + new_height))
    if image.size != spec.size:
        image = image.resize(spec.size, resample=_RESAMPLE[spec.resize])
    return np.asarray(image, dtype=np.uint8)


def preprocess(source: ImageSource, spec: InputSpec, *, draft: bool = True, name: str | None = None) -> Pixels:
    """Decode one photo into the model's raw input pixels.

    Args:
        source: a path, the file's bytes, or a binary stream.
        spec: the model's input contract (size, resize method, crop).
        draft: allow reduced-size JPEG decoding for photos much larger than the input.
        name: how to name the input in errors and results.

    Returns:
        ``Pixels`` whose ``array`` is ``uint8`` ``(spec.height, spec.width, 3)`` RGB in 0–255.

    Raises:
        ImageError: the input cannot be decoded (message names it and says why).
    """
    image = open_image(source, draft_size=spec.size if draft else None, name=name)
    original_size = image.size
    return Pixels(fit(image, spec), describe(source, name), original_size)


def preprocess_array(frame: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Fit a camera frame to the model's input: the camera path of :func:`preprocess`.

    Args:
        frame: ``numpy`` ``uint8`` array of shape ``(H, W, 3)``, RGB channel order (not
            OpenCV's BGR), values 0–255, any size.
        spec: the model's input contract (size, resize method, crop).

    Returns:
        ``uint8`` ``(spec.height, spec.width, 3)`` RGB in 0–255 (the frame itself, made
        contiguous, when it already has that size and the contract does not crop).

    Raises:
        ImageError: ``frame`` is not a ``uint8`` ``(H, W, 3)`` array.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ImageError(f"frame: expected a uint8 array of shape (H, W, 3), received {frame.dtype} {frame.shape}")
    if frame.shape[:2] == (spec.height, spec.width) and spec.crop == "none":
        return np.ascontiguousarray(frame)
    return fit(Image.fromarray(frame, mode="RGB"), spec)


def to_input(source: ImageInput, spec: InputSpec, *, draft: bool = True) -> np.ndarray:
    """The model's input pixels from a photo (path, bytes, stream), a Pillow image or a camera frame.

    Returns ``uint8`` ``(spec.height, spec.width, 3)`` RGB in 0–255: :func:`preprocess` for an
    encoded photo, :func:`to_rgb` + :func:`fit` for a Pillow image, :func:`preprocess_array`
    for an array. Raises ``ImageError`` for anything that cannot be turned into pixels.
    """
    if isinstance(source, np.ndarray):
        return preprocess_array(source, spec)
    if isinstance(source, Image.Image):
        return fit(to_rgb(source), spec)
    return preprocess(source, spec, draft=draft).array


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether the file name ends in one of ``IMAGE_SUFFIXES`` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _visible(name: str) -> bool:
    return not name.startswith(".")  # .DS_Store, ._IMG_1.jpg (macOS), .thumbnails/


def list_files(directory: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """The files in ``directory`` whatever their suffix, sorted by path text.

    Hidden files and folders (names starting with ``.``) are left out. With
    ``recursive`` the sub-folders are searched too, except folders reached through
    a symbolic link (so a link loop cannot trap the search); a symbolic link to a
    file counts as that file, a broken one as a file that will not decode.
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if _visible(d)] if recursive else []
        found.extend(Path(root, name) for name in files if _visible(name))
    return sorted(found, key=str)


def list_folders(directory: str | os.PathLike[str]) -> list[Path]:
    """The visible sub-folders of ``directory`` (symbolic links to folders included), sorted by name."""
    return sorted((p for p in Path(directory).iterdir() if p.is_dir() and _visible(p.name)), key=str)


def find_images(directory: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """The image files (``IMAGE_SUFFIXES``) of :func:`list_files`, sorted by path text.

    The kit's one photo finder: the runner's directory arguments, the converter's
    evaluation and calibration folders and the training data's class folders all
    count the same files.
    """
    return [path for path in list_files(directory, recursive=recursive) if is_image_path(path)]
