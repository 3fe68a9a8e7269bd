"""Camera frames: OpenCV video files (written here), picamera2 (a fake module), drop-outs, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, run_runner

from edge_runner import Classifier
from edge_runner.watcher import camera as camera_module
from edge_runner.watcher.camera import CameraError, FrameSource, OpenCVSource, PiCameraSource, open_camera
from edge_runner.core.image import preprocess_array

cv2 = pytest.importorskip("cv2", reason="the camera tests need OpenCV (pip install .[camera])")

COLOURS = list(CLASS_COLOURS.values())  # red, green, blue (RGB)


def write_video(path, frames_per_colour=4, size=(96, 64), colours=COLOURS, seed=0):
    """An MJPG .avi of solid-ish colour frames (RGB ``colours``) with a moving bright square; returns the RGB frames."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    frames = []
    for c_index, colour in enumerate(colours):
        for i in range(frames_per_colour):
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = colour
            frame += rng.integers(0, 20, frame.shape, dtype=np.uint8)
            x = (i * 7 + c_index * 11) % (width - 16)
            frame[8:24, x : x + 16] = 250
            frames.append(frame)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return frames


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    return path, write_video(path)


run = run_runner  # python -m edge_runner, in-process (tests/conftest.py)


def test_video_frames_come_out_rgb(video):
    path, frames = video
    with open_camera(str(path)) as source:
        assert isinstance(source, FrameSource) and source.name == str(path)
        read = []
        while (frame := source.read()) is not None:
            assert frame.dtype == np.uint8 and frame.shape == (64, 96, 3)
            read.append(frame)
    assert len(read) == len(frames)
    for got, sent in zip(read, frames):
        # MJPG is lossy; a BGR/RGB swap would be off by ~150 on red and blue.
        assert np.abs(got[32:, :].astype(int).mean((0, 1)) - sent[32:, :].astype(int).mean((0, 1))).max() < 12
    assert source.end_reason == "end of video"


def test_camera_loop_on_a_video_file(tiny_models, video, capsys):
    path, _ = video
    model = tiny_models["int8"]
    code, out, err = run(["--camera", path, "--model", model, "--json"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["frame"] for r in records] == list(range(1, 13))
    assert all(set(r) == {"source", "label", "detected", "score", "top_k", "latency_ms", "frame", "fps"} for r in records)
    assert all(r["source"] == str(path) and r["fps"] > 0 for r in records)
    # The same frames through the API give the same labels and scores.
    classifier = Classifier(model, num_threads=1)
    with open_camera(str(path)) as source:
        for record in records:
            want = classifier.classify(preprocess_array(source.read(), classifier.spec))
            assert record["label"] == want.label
            assert record["score"] == pytest.approx(want.score, abs=1e-6)
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"{path}: 12 frames in ") and "mean" in summary and "FPS (end of video)" in summary


def test_camera_loop_text_output_and_max_frames(tiny_models, video, capsys):
    path, _ = video
    code, out, err = run(["--camera", path, "--model", tiny_models["float32"], "--max-frames", "5"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 5
    # Each line is the classifier's own answer on that frame.
    classifier = Classifier(tiny_models["float32"])
    with open_camera(str(path)) as source:
        for n, line in enumerate(lines, 1):
            frame, label, score, fps = line.split("  ")
            want = classifier.classify(preprocess_array(source.read(), classifier.spec))
            assert (frame, label, score) == (f"frame {n}", want.label, f"{want.score:.3f}")
            assert fps.endswith(" fps") and float(fps.removesuffix(" fps")) > 0
    assert "5 frames" in err


def test_missing_video_and_non_video(tiny_models, tmp_path, capsys):
    code, out, err = run(["--camera", tmp_path / "nope.mp4", "--model", tiny_models["int8"]], capsys)
    assert code == 1 and out == ""
    assert err.strip() == f"edge_runner: error: {tmp_path / 'nope.mp4'}: no such video file or camera"
    fake = tmp_path / "fake.avi"
    fake.write_text("not a video")
    code, out, err = run(["--camera", fake, "--model", tiny_models["int8"]], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"edge_runner: error: {fake}: ") and len(err.splitlines()) == 1


def test_no_camera_names_the_device(tiny_models, capsys, monkeypatch):
    monkeypatch.setattr(camera_module, "_picamera2_module", lambda index: None)
    index = next(i for i in range(7, 64) if not os.path.exists(f"/dev/video{i}"))
    code, out, err = run(["--camera", str(index), "--model", tiny_models["int8"]], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"edge_runner: error: camera {index}: ")
    assert len(err.splitlines()) == 1, err
    with pytest.raises(CameraError, match=f"camera {index}"):
        open_camera(index)


def test_missing_opencv_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    with pytest.raises(CameraError, match=r"OpenCV is not installed .* pip install \.\[camera\]"):
        open_camera(str(video))


class ScriptedSource:
    """A FrameSource that gives ``frames`` frames, then drops out (``None``) or raises ``KeyboardInterrupt``."""

    is_file = False

    def __init__(self, frames, then="drop"):
        self.name, self.remaining, self.then, self.closed = "camera 0", frames, then, False
        self.end_reason = None

    def read(self):
        if self.remaining == 0:
            if self.then == "interrupt":
                raise KeyboardInterrupt
            self.end_reason = "the camera stopped delivering frames after 3"
            return None
        self.remaining -= 1
        return np.full((48, 64, 3), 200, np.uint8)

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_camera_dropping_out_mid_stream_ends_cleanly(tiny_models, capsys, monkeypatch):
    source = ScriptedSource(3, then="drop")
    monkeypatch.setattr(camera_module, "open_camera", lambda src, size=None: source)
    code, out, err = run(["--camera", "--model", tiny_models["int8"]], capsys)
    assert code == 1
    assert len(out.splitlines()) == 3
    lines = err.strip().splitlines()
    assert lines[0] == "edge_runner: error: camera 0: the camera stopped delivering frames after 3"
    assert lines[1].startswith("camera 0: 3 frames in ")
    assert source.closed


def test_opencv_error_mid_stream_is_a_drop_out(video):
    path, _ = video
    source = OpenCVSource(str(path))
    assert source.read() is not None

    class Failing:
        def read(self):
            raise cv2.error("VIDIOC_DQBUF: No such device")

        def release(self):
            pass

    source._capture.release()
    source._capture = Failing()
    source.is_file = False
    assert source.read() is None
    assert "the capture failed" in source.end_reason and "No such device" in source.end_reason
    source.close()


def test_ctrl_c_ends_with_a_summary(tiny_models, capsys, monkeypatch):
    source = ScriptedSource(4, then="interrupt")
    monkeypatch.setattr(camera_module, "open_camera", lambda src, size=None: source)
    code, out, err = run(["--camera", "0", "--model", tiny_models["int8"], "--json"], capsys)
    assert code == 0
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [1, 2, 3, 4]
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("camera 0: 4 frames in ") and summary.endswith("FPS (interrupted)")
    assert source.closed


def test_real_sigint_in_a_subprocess(tiny_models, tmp_path):
    """A real Ctrl-C (SIGINT) while the loop runs: exit 0, a summary, no traceback."""
    path = tmp_path / "long.avi"
    write_video(path, frames_per_colour=1500, size=(32, 32))
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_runner", "--camera", str(path), "--model", str(tiny_models["int8"]), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        # As from a terminal: a job started in the background (`make test &`, some CI
        # runners) inherits SIGINT ignored, and Python then leaves it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = json.loads(process.stdout.readline())
    assert first["frame"] == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"{path}: ") and summary.endswith("FPS (interrupted)"), err
    frames = int(summary.split(": ")[1].split(" frames")[0])
    assert 1 <= frames < 4500


def make_fake_picamera2(cameras=1, fail_after=None):
    """A stand-in for the picamera2 module: ``capture_array`` returns BGR frames like ``RGB888`` does."""
    state = {"configured": None, "started": False, "closed": False, "captures": 0}

    class Picamera2:
        def __init__(self, camera_num=0):
            if camera_num >= cameras:
                raise IndexError("list index out of range")
            self.camera_num = camera_num

        @staticmethod
        def global_camera_info():
            return [{"Model": "imx708", "Num": i} for i in range(cameras)]

        def create_video_configuration(self, main):
            return {"main": dict(main)}

        def configure(self, config):
            state["configured"] = config

        def start(self):
            state["started"] = True

        def capture_array(self, stream="main"):
            state["captures"] += 1
            if fail_after is not None and state["captures"] > fail_after:
                raise RuntimeError("Camera frontend has timed out!")
            width, height = state["configured"]["main"]["size"]
            frame = np.zeros((height, width, 3), np.uint8)
            frame[..., 0] = 10  # B
            frame[..., 1] = 20  # G
            frame[..., 2] = 230  # R: a red scene, in RGB888's [B, G, R] byte order
            return frame

        def stop(self):
            state["started"] = False

        def close(self):
            state["closed"] = True

    module = types.ModuleType("picamera2")
    module.Picamera2 = Picamera2
    return module, state


def test_picamera2_is_used_on_a_pi_and_frames_are_rgb(monkeypatch):
    module, state = make_fake_picamera2()
    monkeypatch.setitem(sys.modules, "picamera2", module)
    with open_camera(None, size=(224, 224)) as source:
        assert isinstance(source, PiCameraSource) and source.name == "picamera2"
        assert state["configured"]["main"] == {"format": "RGB888", "size": (224, 224)}
        assert state["started"]
        frame = source.read()
        assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8 and frame.flags["C_CONTIGUOUS"]
        assert tuple(frame[0, 0]) == (230, 20, 10)  # red first
    assert state["closed"]


def test_picamera2_drop_out_and_fallbacks(monkeypatch, video):
    module, state = make_fake_picamera2(fail_after=2)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    with open_camera("0", size=(95, 63)) as source:
        assert state["configured"]["main"]["size"] == (96, 64)  # even sizes for the ISP
        assert source.read() is not None and source.read() is not None
        assert source.read() is None
        assert source.end_reason.startswith("the camera stopped delivering frames after 2 (Camera frontend has timed out!)")
    # A video path never goes to picamera2, even on a Pi.
    path, _ = video
    with open_camera(str(path)) as source:
        assert isinstance(source, OpenCVSource)
    # picamera2 installed but listing no camera at that index: OpenCV is tried (and names the device).
    module, _ = make_fake_picamera2(cameras=1)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    index = next(i for i in range(7, 64) if not os.path.exists(f"/dev/video{i}"))
    with pytest.raises(CameraError, match=f"^camera {index}: "):
        open_camera(index)


def test_picamera2_open_failure_names_the_device():
    module, _ = make_fake_picamera2(cameras=0)
    with pytest.raises(CameraError, match=r"^picamera2 camera 2: cannot open the camera \(list index out of range\)"):
        PiCameraSource(2, module=module)


@pytest.mark.parametrize("given, parsed", [(None, 0), ("0", 0), (0, 0), ("1", 1), (2, 2), ("clip.mp4", "clip.mp4"), ("rtsp://cam/x", "rtsp://cam/x")])
def test_source_parsing(given, parsed):
    assert camera_module.parse_source(given) == parsed
