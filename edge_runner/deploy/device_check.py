"""Check that this device can run edgekit: the runtime imports, the model loads and classifies, a camera opens.

    python edge_runner/deploy/device_check.py [--model M.tflite] [--camera SOURCE | --no-camera] [--json]

``install-pi.sh`` runs it after installing. The model check is fatal (exit 1);
the camera is reported, not required (photos and the web page work without one).
The latency printed is measured on *this* machine on a generated image.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import struct
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

# The values of edge_runner.common.console, repeated: this script runs before the package is importable (see main).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TIMED_RUNS = 10


@dataclass
class DeviceReport:
    """What the check found. ``ok`` is False only when the model cannot classify."""

    device: str
    os: str
    machine: str
    bits: int
    python: str
    runtime: str | None = None
    model: str | None = None
    label: str | None = None
    score: float | None = None
    latency_ms_median: float | None = None  # this machine, generated image, runtime's default threads
    web_server: str | None = None  # what `python -m edge_runner serve` (the systemd service) needs
    picamera2: str | None = None
    camera: str | None = None
    camera_ok: bool | None = None  # None: not checked
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.label is not None


def read_device_model() -> str:
    """``Raspberry Pi 5 Model B Rev 1.0`` from the device tree or cpuinfo; ``"unknown (not a Raspberry Pi?)"`` otherwise."""
    try:
        return Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ")
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                return value.strip()
    except OSError:
        pass
    return "unknown (not a Raspberry Pi?)"


def read_os_name(path: Path = Path("/etc/os-release")) -> str:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def generated_photo(size: tuple[int, int] = (640, 480), seed: int = 0) -> bytes:
    """A JPEG of smooth colour gradients with noise, ``size`` = (width, height); exercises decode and resize."""
    import numpy as np
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    rgb = np.clip(rgb + rng.integers(-20, 21, size=rgb.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def check_model(report: DeviceReport, model: str | None) -> object | None:
    """Load the model and classify a generated photo; fills ``report``; returns the classifier or None."""
    from edge_runner.common.console import UsageError
    from edge_runner.core.image import preprocess
    from edge_runner.core.loading import load_classifier, resolve_model
    from edge_runner.core.model import ModelError
    from edge_runner.core.runtime import RuntimeUnavailable
    from edge_runner.core.spec import ContractError

    try:
        path = resolve_model(model)
        classifier = load_classifier(path, threads=None, runtime_name=None, verbose=False)
    except RuntimeUnavailable as exc:
        report.problems.append(f"runtime: {exc}")
        return None
    except (UsageError, ModelError, ContractError) as exc:
        report.problems.append(f"model: {exc}")
        return None
    report.runtime = f"{classifier.runtime.name} {classifier.runtime.version}"
    report.model = f"{path} ({classifier.variant}, {classifier.size_bytes / 1e6:.2f} MB, labels: {', '.join(classifier.labels)})"
    pixels = preprocess(generated_photo(), classifier.spec, name="generated photo").array
    classifier.classify(pixels)  # the first call pays for the runtime's lazy set-up
    times = []
    for _ in range(TIMED_RUNS):
        prediction = classifier.classify(pixels)
        times.append(prediction.latency_ms)
    report.label, report.score = prediction.label, round(prediction.score, 6)
    report.latency_ms_median = round(statistics.median(times), 2)
    return classifier


def check_web_server(report: DeviceReport) -> None:
    """Whether the web page's libraries (the ``serve`` extra) import; reported, not required."""
    from importlib import import_module, metadata

    found = []
    for module, dist in (("flask", "flask"), ("waitress", "waitress")):
        try:
            import_module(module)
        except ImportError:
            report.web_server = f"not available: {dist} is not installed (pip install -e '.[serve]')"
            return
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(dist)
    report.web_server = "ready (" + ", ".join(found) + ")"


def check_picamera2(report: DeviceReport) -> None:
    """Say whether apt's picamera2 imports in this Python, and why not (the usual cause is a numpy 2 in the venv)."""
    try:
        import picamera2  # noqa: F401
    except ImportError:
        report.picamera2 = "not installed (Raspberry Pi OS: sudo apt install python3-picamera2)"
        return
    except Exception as exc:  # numpy ABI clashes raise ValueError at import
        report.picamera2 = f"installed but does not import: {type(exc).__name__}: {exc}"
        import numpy

        if "size changed" in str(exc) and int(numpy.__version__.split(".")[0]) >= 2:
            report.problems.append(
                f"picamera2: apt's simplejpeg was built for numpy 1.x but this environment has numpy {numpy.__version__}; "
                "reinstall with `bash edge_runner/deploy/install-pi.sh` (it keeps numpy<2 when apt's numpy is 1.x) "
                "or run `pip install --force-reinstall simplejpeg` in the venv"
            )
        return
    report.picamera2 = "imports"


def check_camera(report: DeviceReport, classifier, source: str | None) -> None:
    """Open the camera, read one frame and classify it; any failure is reported, not raised."""
    from edge_runner.watcher.camera import CameraError, open_camera
    from edge_runner.core.image import preprocess_array

    size = (classifier.spec.width, classifier.spec.height) if classifier is not None else None
    try:
        with open_camera(source, size) as camera:
            frame = camera.read()
            if frame is None:
                reason = getattr(camera, "end_reason", None) or "no frame"
                report.camera, report.camera_ok = f"{camera.name}: opened, but {reason}", False
                return
            described = f"{camera.name}: {frame.shape[1]}x{frame.shape[0]} frame"
            if classifier is not None:
                prediction = classifier.classify(preprocess_array(frame, classifier.spec))
                described += f", classified as {prediction.label} ({prediction.score:.3f})"
            report.camera, report.camera_ok = described, True
    except CameraError as exc:
        report.camera, report.camera_ok = f"not available: {exc}", False


def run_checks(model: str | None, camera: str | None, use_camera: bool) -> DeviceReport:
    report = DeviceReport(
        device=read_device_model(),
        os=read_os_name(),
        machine=platform.machine(),
        bits=struct.calcsize("P") * 8,
        python=platform.python_version(),
    )
    classifier = check_model(report, model)
    check_web_server(report)
    if use_camera:
        check_picamera2(report)
        check_camera(report, classifier, camera)
    return report


def format_report(report: DeviceReport) -> str:
    lines = [
        f"device:    {report.device}",
        f"os:        {report.os} ({report.machine}, {report.bits}-bit Python {report.python})",
        f"runtime:   {report.runtime or 'NOT AVAILABLE'}",
        f"model:     {report.model or 'NOT LOADED'}",
    ]
    if report.ok:
        lines.append(
            f"classify:  OK: a generated photo -> {report.label} ({report.score:.3f}); "
            f"median {report.latency_ms_median:.1f} ms per image on this machine"
        )
    lines.append(f"web page:  {report.web_server}")
    if report.camera is not None:
        lines.append(f"picamera2: {report.picamera2}")
        lines.append(f"camera:    {report.camera}" + ("" if report.camera_ok else "  (optional: photos and the web page work without it)"))
    lines += [f"problem:   {problem}" for problem in report.problems]
    lines.append("result:    " + ("OK" if report.ok else "FAILED: the model cannot classify on this device"))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="device_check.py", description="Check that this device can run edgekit's runner (model required, camera optional)."
    )
    parser.add_argument("--model", metavar="MODEL.tflite", help="default: $EDGEKIT_MODEL, else the shipped model")
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--camera", metavar="SOURCE", default=None, help="camera index, video file or URL (default: camera 0)")
    camera.add_argument("--no-camera", action="store_true", help="skip the camera check")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import edge_runner  # noqa: F401
    except ImportError:  # run from a clone before installing: use the package next to this file
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from edge_runner.common.native_log import quiet_tensorflow_logs

    quiet_tensorflow_logs()  # only when the tensorflow runtime is the one found
    report = run_checks(args.model, args.camera, not args.no_camera)
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}))
    else:
        print(format_report(report))
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
