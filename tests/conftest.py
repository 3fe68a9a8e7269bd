"""Shared fixtures and helpers: generated images, tiny models, video clips, a real browser, the MediaPipe venv.

Everything more than one test file uses lives here (test files import nothing from each
other). Real-photo tests use ``shared_data`` / ``shared_weights``, which skip with a clear
reason when ``../shared`` is absent.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from edge_runner.common.native_log import quiet_tensorflow_logs

quiet_tensorflow_logs()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

pytest_plugins = ["chromium", "ci_skips", "mediapipe_venv", "webapp_build"]  # fixture-only plugins: no test file imports them

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data" / "cats_and_dogs_filtered"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"

# Colours far apart, so a tiny model learns the generated classes in one epoch.
CLASS_COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220)}


def draw_photo(colour: tuple[int, int, int], size: tuple[int, int] = (80, 64), seed: int = 0) -> Image.Image:
    """A synthetic 'photo': a coloured shape on noise. RGB, ``size`` is (width, height)."""
    rng = np.random.default_rng(seed)
    width, height = size
    noise = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise, mode="RGB")
    draw = ImageDraw.Draw(image)
    x0, y0 = int(rng.integers(0, width // 3)), int(rng.integers(0, height // 3))
    x1, y1 = x0 + width // 2 + int(rng.integers(0, width // 4)), y0 + height // 2 + int(rng.integers(0, height // 4))
    if rng.random() < 0.5:
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    else:
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def write_class_folders(root: Path, classes: list[str], per_class: int, seed: int = 0, fmt: str = "JPEG") -> Path:
    """``root/<class>/<class>.<i>.jpg`` for each class; returns ``root``."""
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    for c_index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = CLASS_COLOURS.get(name, tuple(random.Random(name).randrange(256) for _ in range(3)))
        for i in range(per_class):
            draw_photo(colour, seed=seed * 10_000 + c_index * 1_000 + i).save(folder / f"{name}.{i}{suffix}", fmt)
    return root


def write_negatives(folder: Path, count: int, colour: tuple[int, int, int], seed: int = 50) -> Path:
    """``folder/neg_<i>.jpg``: ``count`` photos of one colour with nothing of interest (a background folder)."""
    folder.mkdir(parents=True)
    for i in range(count):
        draw_photo(colour, seed=seed + i).save(folder / f"neg_{i}.jpg", "JPEG")
    return folder


@pytest.fixture
def photo_folders(tmp_path: Path):
    """A factory: ``photo_folders(["red", "green"], per_class=8)`` → a class-per-folder directory."""

    def make(classes=("red", "green"), per_class: int = 8, seed: int = 0, name: str = "photos") -> Path:
        return write_class_folders(tmp_path / name, list(classes), per_class, seed)

    return make


def build_tiny_keras(num_classes: int, size: int = 32, seed: int = 0):
    """A tiny classifier with the kit's shape: raw 0–255 RGB in, softmax out, normalisation inside."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny")


def convert_tiny(model, kind: str, size: int, seed: int = 0, representative=None) -> bytes:
    """float32 or full-int8 (uint8 in/out) TFLite bytes of a tiny Keras model.

    ``representative``: the calibration generator (default: 16 random photos spanning exactly 0..255).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "int8":
        rng = np.random.default_rng(seed)

        def random_photos():
            for i in range(16):
                pixels = rng.integers(0, 256, size=(1, size, size, 3)).astype(np.float32)
                pixels[0, 0, 0], pixels[0, 0, 1] = 0.0, 255.0  # pin the input range to exactly 0..255
                yield [pixels]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative or random_photos
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


KINDS = ("float32", "int8")


def save_tiny(model, spec, path: Path, kind: str) -> Path:
    """``model`` converted to ``kind`` (:func:`convert_tiny`) at ``path``, with ``spec`` as its sidecar contract."""
    from edge_runner.core.spec import contract_path_for

    path.write_bytes(convert_tiny(model, kind, spec.height))
    spec.save(contract_path_for(path))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny 3-class models as the runner sees them: ``{"keras": Model, "float32": Path, "int8": Path, "spec": InputSpec}``.

    Each ``.tflite`` has a sidecar ``name.contract.json``. Needs TensorFlow (skips without it).
    """
    pytest.importorskip("tensorflow", reason="the tiny test models are built with TensorFlow (pip install .[train])")
    from edge_runner.core.spec import InputSpec

    size = 32
    root = tmp_path_factory.mktemp("tiny_models")
    model = build_tiny_keras(3, size)
    spec = InputSpec(labels=("red", "green", "blue"), height=size, width=size, name="tiny")
    paths = {kind: save_tiny(model, spec, root / f"tiny_{kind}.tflite", kind) for kind in KINDS}
    return {"keras": model, "spec": spec, **paths}


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real photos not found at {SHARED_DATA} (set EDGEKIT_SHARED to the shared/ folder)")
    return SHARED_DATA


@pytest.fixture
def shared_weights() -> Path:
    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"ImageNet MobileNetV2 weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


def build_colour_keras(size: int = 32, sharpness: float = 12.0):
    """A 3-class model that really tells red, green and blue apart, with no training.

    Raw 0–255 RGB in; the mean colour (0–1 per channel) times ``sharpness`` are the
    logits of ``("red", "green", "blue")``: a red photo scores red highest, a grey
    one scores all three 1/3. Deterministic, so tests can say which answer a photo gets.
    """
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name="colours")
    dense.set_weights([np.eye(3, dtype=np.float32) * sharpness, np.zeros(3, np.float32)])
    return model


@pytest.fixture(scope="session")
def background_models(tmp_path_factory):
    """The colour model with a contract that names a background label and a threshold.

    ``{"float32": Path, "int8": Path, "spec": InputSpec}``: labels red, green, blue;
    ``background_label="blue"`` (blue means "nothing here"), ``threshold=0.6`` (a grey
    photo, 1/3 each, is ``unknown``). Needs TensorFlow to build (skips without it).
    """
    pytest.importorskip("tensorflow", reason="the tiny test models are built with TensorFlow (pip install .[train])")
    from edge_runner.core.spec import InputSpec

    size = 32
    root = tmp_path_factory.mktemp("background_models")
    model = build_colour_keras(size)
    spec = InputSpec(
        labels=("red", "green", "blue"), height=size, width=size, name="tiny-background",
        background_label="blue", threshold=0.6,
    )
    paths = {kind: save_tiny(model, spec, root / f"background_{kind}.tflite", kind) for kind in KINDS}
    return {"spec": spec, **paths}


def run_runner(argv, capsys) -> tuple[int, str, str]:
    """``python -m edge_runner ARGV`` in-process: ``(exit status, stdout, stderr)``; never a traceback."""
    from edge_runner.cli import runner as cli

    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


# -- processes: the commands as users type them ---------------------------------


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``command`` as a real process in ``cwd`` with this checkout importable; text output captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The last stderr line; everything before it must be argparse's usage."""
    lines = done.stderr.strip().splitlines()
    assert lines, "no error line on stderr"
    assert all(line.startswith("usage: ") or line.startswith(" ") for line in lines[:-1]), done.stderr
    assert "Traceback" not in done.stderr
    return lines[-1]


def console_script(name: str) -> str:
    """The installed console script ``name`` (skips when the kit is not installed)."""
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).is_file():
        pytest.skip(f"{name} is not installed (pip install -e .)")
    return path


# -- training: a tiny "pretrained" backbone and a configuration that trains in seconds ------

TINY_SIZE = 48  # input side of the tiny training runs


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """MobileNetV2 alpha 0.35 without top, random weights, BatchNorm calibrated on generated photos (48 px).

    Untouched statistics would make its features ~1e-11. Its random features do not separate
    generated classes reliably: tests on it check mechanics, not learning.
    """
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")
    base = calibrated_mobilenet(TINY_SIZE, [(220, 40, 40), (40, 200, 60), (40, 70, 220), (200, 200, 40)], 64)
    path = tmp_path_factory.mktemp("tiny_weights") / "tiny_mobilenet_v2_0.35.weights.h5"
    base.save_weights(path)
    return path


def calibrated_mobilenet(size: int, colours: list[tuple[int, int, int]], count: int):
    """A MobileNetV2 0.35 without top, random weights (seed 0), BatchNorm statistics set by one pass over
    ``count`` generated photos of ``colours``."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(size, size, 3), alpha=0.35)
    photos = np.stack([np.asarray(draw_photo(colours[i % len(colours)], seed=100 + i).resize((size, size)), np.float32)
                       for i in range(count)])
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # one training-mode pass sets the statistics to this batch's
    base(photos / 127.5 - 1.0, training=True)
    return base


def tiny_background_run(root: Path, weights: Path, per_class: int, seed: int, epochs: int) -> Path:
    """A finished tiny run in ``root/run``: red and green class folders against a folder of yellow
    background photos ("other"), ``per_class`` photos each, ``epochs`` head epochs + 1 fine-tuning epoch."""
    from train import run_training

    data = write_class_folders(root / "photos", ["red", "green"], per_class)
    negatives = write_negatives(root / "negatives", per_class, (200, 200, 40), seed)
    run_training(tiny_config(data, root / "run", weights, background=[str(negatives)], epochs=epochs, fine_tune_epochs=1))
    return root / "run"


def tiny_config(data: Path | str | list[str], out: Path, weights: Path | str, **overrides):
    """A ``TrainConfig`` on ``tiny_weights`` that trains in seconds (2 + 2 epochs); ``overrides`` replace any option."""
    from train import TrainConfig

    options = dict(
        data=[str(d) for d in data] if isinstance(data, list) else str(data),
        out=str(out),
        alpha=0.35,
        image_size=TINY_SIZE,
        weights=str(weights),
        epochs=2,
        fine_tune_epochs=2,
        fine_tune_layers=29,
        batch_size=8,
        fine_tune_learning_rate=1e-4,
        patience=5,
        cache_dir=str(Path(out).parent / "cache"),
        deterministic=False,
        verbose=0,
    )
    options.update(overrides)
    return TrainConfig(**options)
# -- the watcher: a colour model with a background class, and clips written with OpenCV -------------------------

# RGB colours the watch model maps to its labels: red = cat, green = dog, blue = other (background).
RED, GREEN, BLUE = (220, 40, 40), (40, 200, 60), (40, 70, 220)


@pytest.fixture(scope="session")
def watch_model(tmp_path_factory) -> Path:
    """A float32 ``.tflite`` whose top label is the frame's dominant colour (cat, dog, other); ``other`` is its background."""
    pytest.importorskip("tensorflow", reason="the colour model is built with TensorFlow (pip install .[train])")
    pytest.importorskip("cv2", reason="the clips are written with OpenCV (pip install .[camera])")
    from edge_runner.core.spec import InputSpec, contract_path_for

    size = 32
    path = tmp_path_factory.mktemp("watch_model") / "colour_float32.tflite"
    path.write_bytes(convert_tiny(build_colour_keras(size, sharpness=12.0), "float32", size))
    spec = InputSpec(labels=("cat", "dog", "other"), height=size, width=size, name="colour", background_label="other")
    spec.save(contract_path_for(path))
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


# -- a real browser (the `browser` fixture lives in the plugin tests/chromium.py): page sizes ----------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1200, "height": 900}}

# -- a training run folder as `python -m train` writes it, for convert ----------------------------------------

LABELS = tuple(CLASS_COLOURS)  # ("red", "green", "blue")


def write_photos(root: Path, per_class: int, size: tuple[int, int], seed: int) -> list[dict]:
    entries = []
    for c, label in enumerate(LABELS):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = root / label / f"{label}.{i}.jpg"
            draw_photo(CLASS_COLOURS[label], size=size, seed=seed * 1000 + c * 100 + i).save(path, "JPEG", quality=90)
            entries.append({"path": str(path), "label": label})
    return entries


def make_train_out(root: Path, *, collapse: bool = False) -> Path:
    """A training output directory like train/'s: model.keras, contract.json, labels.txt, split.json.

    ``collapse=True`` scales the last layer's weights down so the softmax is nearly
    flat: the float model still ranks the classes, but int8's 1/256 output steps
    cannot (the way MobileNetV3 collapses under int8), and the gate must catch it.
    """
    import keras

    from edge_runner import InputSpec, preprocess

    train = write_photos(root / "photos" / "train", 12, (96, 72), seed=1)
    # Validation photos 4x the draft threshold, so JPEG draft decoding really applies.
    validation = write_photos(root / "photos" / "validation", 6, (256, 192), seed=2)
    corrupt = root / "photos" / "validation" / "red" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    validation.append({"path": str(corrupt), "label": "red"})
    spec = InputSpec(labels=LABELS, height=32, width=32, name="tiny", backbone="tiny-cnn")
    model = build_tiny_keras(len(LABELS), 32, seed=0)
    x = np.stack([preprocess(e["path"], spec).array for e in train]).astype(np.float32)
    y = np.array([LABELS.index(e["label"]) for e in train])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, batch_size=12, verbose=0)
    if collapse:
        dense = model.layers[-1]
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel * 1e-5, bias * 0.0])
    out = root / "train_out"
    out.mkdir()
    model.save(out / "model.keras")
    spec.save(out / "contract.json")
    spec.save_labels(out / "labels.txt")
    split = {"data_dir": str(root / "photos"), "labels": list(LABELS), "train": train, "validation": validation, "skipped": []}
    (out / "split.json").write_text(json.dumps(split))
    return out


# -- the TFLite metadata: a wrong field id, as a broken shared schema would give ----------------------------------

def swap_field_ids(monkeypatch, table: str, first: str, second: str) -> None:
    """Make the generated metadata writer and reader of ``table`` put ``first`` in ``second``'s slot and back."""
    from convert.schema import metadata_generated as fb

    add_first, add_second = getattr(fb, f"{table}Add{first}"), getattr(fb, f"{table}Add{second}")
    monkeypatch.setattr(fb, f"{table}Add{first}", add_second)
    monkeypatch.setattr(fb, f"{table}Add{second}", add_first)
    reader = getattr(fb, table)
    accessors = {n: f for n, f in vars(reader).items() if n.startswith((first, second))}  # Max, MaxAsNumpy, ...
    for name in accessors:
        other = second + name[len(first):] if name.startswith(first) else first + name[len(second):]
        monkeypatch.setattr(reader, name, accessors[other])
