"""Build the models the runner benchmark measures: MobileNetV2-1.0-224, full int8 and float.

    python tests/benchmarks/make_bench_model.py --out /work/scratch/runner/bench_models

Writes into ``--out`` (skipping files that already exist, so it is a cache):

- ``mobilenet_v2_224.keras``: the float Keras model (raw 0–255 RGB in, a
  ``Rescaling`` layer inside, 2-class softmax out) for the ``model.predict`` baseline;
- ``mobilenet_v2_224_int8.tflite``: full-integer quantisation, uint8 input and output,
  calibrated on 32 photos (real ones with ``--photos``, else generated noise);
- ``mobilenet_v2_224_float32.tflite``;
- a sidecar ``name.contract.json`` beside each ``.tflite``.

The backbone starts from the ImageNet no-top weights when ``--weights`` points at
them, else from random weights: the benchmark measures speed, not accuracy.
Needs TensorFlow (``pip install .[train]``); the runner it feeds never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edge_runner.common.files import write_atomic  # noqa: E402
from edge_runner.common.native_log import quiet_tensorflow_logs  # noqa: E402
from edge_runner.core.image import preprocess  # noqa: E402
from edge_runner.core.spec import InputSpec, contract_path_for  # noqa: E402

quiet_tensorflow_logs()

SIZE = 224
LABELS = ("cat", "dog")
KERAS_NAME = "mobilenet_v2_224.keras"
INT8_NAME = "mobilenet_v2_224_int8.tflite"
FLOAT_NAME = "mobilenet_v2_224_float32.tflite"


def build_keras(weights: Path | None, seed: int = 0):
    """MobileNetV2-1.0-224 with the kit's shape: uint8-range RGB in, normalisation inside, softmax out."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    backbone = keras.applications.MobileNetV2(
        include_top=False,
        weights=str(weights) if weights else None,
        input_shape=(SIZE, SIZE, 3),
        alpha=1.0,
        pooling="avg",
    )
    x = backbone(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2_224")


def calibration_images(photos: Path | None, count: int = 32, seed: int = 0):
    spec = InputSpec(labels=LABELS, height=SIZE, width=SIZE)
    rng = np.random.default_rng(seed)
    paths = sorted(photos.rglob("*.jpg"))[:count] if photos else []
    for path in paths:
        yield preprocess(path, spec).array[np.newaxis].astype(np.float32)
    for _ in range(count - len(paths)):
        pixels = rng.integers(0, 256, size=(1, SIZE, SIZE, 3)).astype(np.float32)
        pixels[0, 0, 0], pixels[0, 0, 1] = 0.0, 255.0
        yield pixels


def convert(model, kind: str, photos: Path | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in calibration_images(photos))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def build_all(out: Path, weights: Path | None, photos: Path | None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"keras": out / KERAS_NAME, "int8": out / INT8_NAME, "float32": out / FLOAT_NAME}
    if all(p.is_file() for p in paths.values()) and all(
        contract_path_for(paths[k]).is_file() for k in ("int8", "float32")
    ):
        return paths
    import keras

    if paths["keras"].is_file():
        model = keras.models.load_model(paths["keras"])
    else:
        model = build_keras(weights)
        tmp = out / f".tmp.{KERAS_NAME}"
        model.save(tmp)
        os.replace(tmp, paths["keras"])
    for kind in ("int8", "float32"):
        spec = InputSpec(
            labels=LABELS, height=SIZE, width=SIZE, name=f"bench-mobilenet_v2_224-{kind}",
            backbone="mobilenet_v2_1.0_224", extra={"variant": kind},
        )
        if not paths[kind].is_file():
            write_atomic(paths[kind], convert(model, kind, photos))
        spec.save(contract_path_for(paths[kind]))
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="cache directory for the models")
    parser.add_argument("--weights", type=Path, default=None, help="ImageNet MobileNetV2 no-top .h5 (optional)")
    parser.add_argument("--photos", type=Path, default=None, help="folder of JPEGs for int8 calibration (optional)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    weights = args.weights if args.weights and args.weights.is_file() else None
    photos = args.photos if args.photos and args.photos.is_dir() else None
    for kind, path in build_all(args.out, weights, photos).items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
