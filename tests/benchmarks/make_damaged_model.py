"""Copy a training output and damage one layer for int8 only, to check the gate and the diagnosis.

One output channel of ``--layer`` (a BatchNormalization layer, default MobileNetV2's
``block_16_project_BN``) becomes a constant ``--value`` (gamma 0, beta VALUE) and every
layer reading it ignores that channel (its input weights zeroed), so the float model
loses one channel of hundreds and still classifies as before; but int8 gives the whole
tensor one scale, set by VALUE, and the other channels round to nothing.

    python tests/benchmarks/make_damaged_model.py runs/cats_dogs/train /tmp/damaged
    python -m convert export /tmp/damaged --out /tmp/damaged/tflite --variants float32,int8
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def damage(src: Path, dst: Path, layer: str, value: float, channel: int) -> str:
    import keras

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "*.png"))
    model = keras.models.load_model(dst / "model.keras", compile=False)
    backbone = next((l for l in model.layers if isinstance(l, keras.Model)), model)
    target = backbone.get_layer(layer)
    gamma, beta, mean, variance = target.get_weights()
    gamma[channel], beta[channel] = 0.0, value
    target.set_weights([gamma, beta, mean, variance])
    readers: list[str] = []
    for other in backbone.layers:
        inbound = [t._keras_history.operation for node in other._inbound_nodes for t in node.input_tensors]
        if target in inbound and other.get_weights():
            kernel, *rest = other.get_weights()
            kernel[..., channel, :] = 0.0
            other.set_weights([kernel, *rest])
            readers.append(other.name)
    model.save(dst / "model.keras")
    return f"{layer} channel {channel} = {value:g}; input weights zeroed in {', '.join(readers) or 'no layer'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_out", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layer", type=str, default="block_16_project_BN")
    parser.add_argument("--value", type=float, default=1e4)
    parser.add_argument("--channel", type=int, default=0)
    args = parser.parse_args(argv)
    print(damage(args.train_out, args.out, args.layer, args.value, args.channel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
