"""Frames from a camera or a video file, as RGB ``uint8`` arrays.

:func:`open_camera` picks the capture library: picamera2 on a Raspberry Pi
(when it is importable and a camera is attached), else OpenCV's
``VideoCapture`` for USB/V4L2 cameras, video files and stream URLs. Both libraries
are imported lazily, so classifying photos never pays for them; OpenCV is the
``camera`` extra (``pip install .[camera]``), picamera2 comes from apt on
Raspberry Pi OS.

The runner's ``--camera``, the watcher and the web server's live view all read frames
through the :class:`FrameSource` protocol; the loop that classifies them is
:mod:`edge_runner.watcher.frames`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..common.console import EXIT_FAILED

CAMERA_INSTALL_HINT = "pip install .[camera]  (or: pip install opencv-python-headless)"


class CameraError(RuntimeError):
    """A camera or video that cannot be opened or read; the message names the device and the problem."""

    exit_status = EXIT_FAILED


@runtime_checkable
class FrameSource(Protocol):
    """A stream of frames; also a context manager that closes it.

    Attributes:
        name: how to call the source in messages, e.g. ``"camera 0"``, ``"picamera2"``, ``"video.mp4"``.
    """

    name: str

    def read(self) -> np.ndarray | None:
        """The next frame: RGB ``uint8`` ``(H, W, 3)``; ``None`` at the end of the stream or when the camera dropped out."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc_info: object) -> None: ...


class _Source:
    """Shared behaviour: context manager, and why the stream ended."""

    name: str = "camera"
    #: ``True`` for a video file, whose end is normal; ``False`` for a camera or stream.
    is_file: bool = False
    #: set when :meth:`read` returns ``None``: what happened, for the user.
    end_reason: str | None = None

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


def _import_cv2(device: str) -> Any:
    # OpenCV logs a WARN line per backend it tries for a missing camera; the
    # CameraError says it once, clearly. An explicit OPENCV_LOG_LEVEL still wins.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        return importlib.import_module("cv2")
    except ImportError as exc:
        raise CameraError(f"{device}: OpenCV is not installed ({exc}); install it with: {CAMERA_INSTALL_HINT}") from None


class OpenCVSource(_Source):
    """Frames from ``cv2.VideoCapture``: a device index, a video file or a stream URL.

    OpenCV delivers BGR; :meth:`read` returns RGB.
    """

    def __init__(self, target: int | str, size: tuple[int, int] | None = None) -> None:
        if isinstance(target, int):
            self.name = f"camera {target}"
        else:
            self.name = str(target)
            path = Path(target)
            # A URL or a device node (/dev/video2) is live; anything else must be a video file.
            self.is_file = "://" not in str(target) and not path.is_char_device()
            if self.is_file and not path.is_file():
                reason = "is a directory, not a video" if path.is_dir() else "no such video file or camera"
                raise CameraError(f"{self.name}: {reason}")
        self._cv2 = cv2 = _import_cv2(self.name)
        if isinstance(target, int) and sys.platform.startswith("linux") and not Path(f"/dev/video{target}").exists():
            raise CameraError(f"{self.name}: no camera found (/dev/video{target} does not exist)")
        self._frames = 0
        self._capture = cv2.VideoCapture(target if isinstance(target, int) else str(target))
        if not self._capture.isOpened():
            self._capture.release()
            if isinstance(target, int):
                raise CameraError(
                    f"{self.name}: cannot open the camera (no device at /dev/video{target}, "
                    "or it is busy or not permitted; try another index with --camera N)"
                )
            if self.is_file:
                raise CameraError(f"{self.name}: cannot open it as a video (unsupported format or codec, or corrupt)")
            raise CameraError(f"{self.name}: cannot open the stream")
        if size is not None and not self.is_file:
            # A request: drivers pick their nearest supported mode.
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(size[0]))
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(size[1]))

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        try:
            ok, frame = self._capture.read()
        except self._cv2.error as exc:  # a driver error mid-stream is a drop-out, not a crash
            ok, frame = False, None
            self.end_reason = f"the capture failed ({str(exc).strip()})"
        if not ok or frame is None:
            if self.end_reason is None:
                if self.is_file:
                    self.end_reason = "end of video" if self._frames else "no frame could be decoded from it"
                else:
                    self.end_reason = (
                        f"the camera stopped delivering frames after {self._frames}"
                        if self._frames
                        else "the camera opened but delivered no frame (on a Raspberry Pi camera module, "
                        "install picamera2: sudo apt install python3-picamera2)"
                    )
            return None
        self._frames += 1
        return _bgr_to_rgb(frame, self._cv2)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def position_s(self) -> float | None:
        """The time stamp of the frame last read, in seconds from the start of a video file
        (``CAP_PROP_POS_MSEC``); ``None`` for a live source or when the container has none."""
        if self._capture is None or not self.is_file:
            return None
        msec = self._capture.get(self._cv2.CAP_PROP_POS_MSEC)
        return msec / 1000.0 if msec is not None and msec >= 0 else None

    def frame_rate(self) -> float | None:
        """The container's frames per second, or ``None`` when it does not say."""
        if self._capture is None:
            return None
        fps = self._capture.get(self._cv2.CAP_PROP_FPS)
        return float(fps) if fps and 0 < fps < 1000 else None


def _bgr_to_rgb(frame: np.ndarray, cv2: Any) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class PiCameraSource(_Source):
    """Frames from a Raspberry Pi camera through picamera2 (libcamera).

    Asks for a 3-channel ``RGB888`` stream near ``size``. picamera2 names formats
    after libcamera's little-endian pixel words, so ``RGB888`` arrives in numpy as
    ``[B, G, R]``; :meth:`read` reverses the channels to RGB.
    """

    def __init__(self, index: int = 0, size: tuple[int, int] | None = None, module: Any = None) -> None:
        self.name = "picamera2" if index == 0 else f"picamera2 camera {index}"
        picamera2 = module if module is not None else importlib.import_module("picamera2")
        self._frames = 0
        self._camera = None
        try:
            camera = picamera2.Picamera2(camera_num=index)
        except Exception as exc:  # picamera2 raises IndexError/RuntimeError for a missing camera
            raise CameraError(f"{self.name}: cannot open the camera ({exc or type(exc).__name__})") from None
        try:
            main: dict[str, Any] = {"format": "RGB888"}
            if size is not None:
                # libcamera's ISP likes even widths; it scales to the nearest mode.
                main["size"] = (int(size[0]) + int(size[0]) % 2, int(size[1]) + int(size[1]) % 2)
            camera.configure(camera.create_video_configuration(main=main))
            camera.start()
        except Exception as exc:
            _close_quietly(camera)
            raise CameraError(f"{self.name}: cannot start the camera ({exc or type(exc).__name__})") from None
        self._camera = camera

    def read(self) -> np.ndarray | None:
        if self._camera is None:
            return None
        try:
            frame = self._camera.capture_array("main")
        except Exception as exc:  # the camera went away (cable, power, libcamera error)
            self.end_reason = f"the camera stopped delivering frames after {self._frames} ({exc or type(exc).__name__})"
            return None
        if frame is None:
            self.end_reason = f"the camera stopped delivering frames after {self._frames}"
            return None
        self._frames += 1
        # [B, G, R] (and a padding byte for XRGB8888) -> R, G, B, made contiguous for Pillow.
        return np.ascontiguousarray(frame[..., 2::-1])

    def close(self) -> None:
        if self._camera is not None:
            _close_quietly(self._camera)
            self._camera = None


def _close_quietly(camera: Any) -> None:
    for method in ("stop", "close"):
        try:
            getattr(camera, method)()
        except Exception:
            pass


def _picamera2_module(index: int) -> Any | None:
    """picamera2 when it is importable and lists a camera at ``index``, else ``None`` (use OpenCV)."""
    try:
        module = importlib.import_module("picamera2")
    except Exception:  # ImportError, or libcamera failing to load on a non-Pi
        return None
    try:
        cameras = module.Picamera2.global_camera_info()
    except Exception:
        return None
    return module if len(cameras) > index else None


def parse_source(source: str | int | None) -> int | str:
    """``None``/``"0"``/``0`` → device 0; ``"1"`` → device 1; anything else → a path or URL."""
    if source is None:
        return 0
    if isinstance(source, bool):
        raise CameraError(f"camera source must be a device index, a video path or a URL, received {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise CameraError(f"camera {source}: a device index must be 0 or more")
        return source
    text = str(source).strip()
    if text.isdigit():
        return int(text)
    if not text:
        return 0
    return text


def open_camera(source: str | int | None = None, size: tuple[int, int] | None = None) -> FrameSource:
    """Open a camera, a video file or a stream.

    Args:
        source: ``None``, ``"0"`` or ``0`` for the default camera; another index
            (``1`` or ``"1"``) for another camera; a path for a video file; a URL
            (``rtsp://…``) for a network stream.
        size: ``(width, height)`` to ask the camera for (e.g. near the model's input);
            ignored for files.

    Returns:
        An open :class:`FrameSource` (close it, or use it in a ``with`` block).

    Raises:
        CameraError: naming the device and what went wrong (no camera, no OpenCV, unreadable file).
    """
    target = parse_source(source)
    if isinstance(target, int):
        module = _picamera2_module(target)
        if module is not None:
            return PiCameraSource(target, size, module=module)
    return OpenCVSource(target, size)
