"""Keras model → TFLite bytes, one function per variant, and the checks each variant must pass.

Variants:

* ``float32`` — the graph as trained.
* ``float16`` — weights stored as float16 (half the size), float32 compute and I/O.
* ``dynamic`` — weights int8, activations quantised on the fly; float32 I/O.
* ``int8`` — integer: every op int8 except the network's first depthwise convolution and the
  ops reading it (see :func:`float_stem`), calibrated on real training photos.
  Input **uint8 with scale 1.0 / zero-point 0**, so the raw 0–255 pixels of
  :func:`edge_runner.core.image.preprocess` enter exactly, with no rescaling and no
  clipping; the first op shifts them by 128 into the int8 domain (exact).
  Output **uint8** (the softmax's 0–1 in steps of 1/256): as precise as int8
  (same scale, zero-point 0 instead of -128), and the only integer output type
  MediaPipe Tasks and the TFLite Task Library accept (UINT8 or FLOAT32).
* ``int16x8`` (optional) — int16 activations, int8 weights, float32 I/O; more
  accurate than int8 but with slow reference kernels on most CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from edge_runner.common.native_log import import_quietly, quiet_tensorflow_logs, silenced

from .errors import ConversionFailed, ConvertError

quiet_tensorflow_logs()  # before any TensorFlow import

try:
    from ai_edge_litert import schema_py_generated as _tfl
except ImportError:  # pragma: no cover
    from tensorflow.lite.python import schema_py_generated as _tfl  # type: ignore[no-redef]

VARIANTS = ("float32", "float16", "dynamic", "int8", "int16x8")
DEFAULT_VARIANTS = ("float32", "float16", "dynamic", "int8")
CALIBRATED = frozenset({"int8", "int16x8"})

_TENSOR_TYPES = {v: k for k, v in vars(_tfl.TensorType).items() if not k.startswith("_")}
_OPS = {v: k for k, v in vars(_tfl.BuiltinOperator).items() if not k.startswith("_")}


def parse_variants(text: str) -> tuple[str, ...]:
    """``"float32,int8"`` → ``("float32", "int8")``, in the order given, without repeats.

    Raises ``ConvertError`` naming the allowed values and what was received.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise ConvertError(
            f"`--variants` must be a comma-separated list of {', '.join(VARIANTS)}; received {text!r}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return tuple(dict.fromkeys(names))


def convert(model: Any, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to TFLite bytes.

    Args:
        model: a Keras model taking float32 ``(None, H, W, 3)`` raw 0–255 RGB, giving softmax ``(None, N)``.
        variant: one of ``VARIANTS``.
        calibration: for ``int8``/``int16x8``, float32 ``(K, H, W, 3)`` raw pixels from
            :func:`edge_runner.core.image.preprocess` (the runner's exact inference input).

    Returns:
        The ``.tflite`` flatbuffer (no metadata yet).
    """
    tf = import_quietly("tensorflow")
    if variant not in VARIANTS:
        raise ConvertError(f"variant must be one of {VARIANTS}, received {variant!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in CALIBRATED:
        if calibration is None or len(calibration) == 0:
            raise ConvertError(f"variant {variant!r} needs calibration photos")
        samples = np.asarray(calibration, dtype=np.float32)

        def representative() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample[np.newaxis]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        if variant == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
            return _int8_with_float_stem(tf, converter)
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            try:
                return bytes(silenced(converter.convert))
            except RuntimeError as exc:  # the quantiser lacks a 16x8 kernel for an op (the rescue's LESS, SELECT_V2)
                raise ConversionFailed(f"{variant}: the TFLite converter cannot make it: {exc}") from None
    return bytes(silenced(converter.convert))


def float_stem(model_bytes: bytes) -> list[str]:
    """Tensors the int8 variant keeps in float: the first DEPTHWISE_CONV_2D's output and the outputs of the ops reading it.

    Why: on MobileNetV2 the first depthwise convolution (``expanded_conv_depthwise``, 32 channels at half the input
    size) is where int8 changes answers. Measured on the cats/dogs/other model (convert/README.md, "int8 vs float
    agreement"): keeping it and its reader in float takes agreement with the float model from 99.18-99.40% to
    99.62-99.73% over three calibration samples, at the same size and speed. A graph without a depthwise
    convolution gets ``[]`` and stays all-int8. Tensor names are those of ``model_bytes`` (a calibrated model).
    """
    model = _tfl.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    names = [graph.Tensors(i).Name().decode("utf-8", "replace") for i in range(graph.TensorsLength())]
    kept: list[str] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = _OPS.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        inputs = {names[op.Inputs(j)] for j in range(op.InputsLength()) if op.Inputs(j) >= 0}
        if (not kept and name == "DEPTHWISE_CONV_2D") or (kept and kept[0] in inputs):
            kept.extend(names[op.Outputs(j)] for j in range(op.OutputsLength()))
    return kept


def _int8_with_float_stem(tf: Any, converter: Any) -> bytes:
    """Calibrate, then quantise as the converter does (uint8 I/O) with :func:`float_stem`'s tensors left in float."""
    from tensorflow.lite.python import convert as tf_convert

    converter._experimental_calibrate_only = True  # the converter's own calibration, then its own quantiser below
    calibrated = bytes(silenced(converter.convert))
    return bytes(silenced(lambda: tf_convert.mlir_quantize(
        calibrated, input_data_type=tf.uint8, output_data_type=tf.uint8, denylisted_nodes=float_stem(calibrated))))


def pin_input_range(samples: np.ndarray) -> bool:
    """Make sure the calibration pixels span exactly 0..255; returns True when it had to.

    The converter derives the int8 input's scale/zero-point from the smallest and
    largest calibration input value (global over all samples). Only a range of
    exactly 0..255 gives uint8 scale 1.0 / zero-point 0, i.e. raw pixels entering
    unchanged; real photo sets nearly always contain a 0 and a 255 somewhere. If
    they do not, one pixel of the first sample is set to 0 and one to 255: the
    smallest change that fixes the input range (every other tensor's range moves
    by at most what one pixel of one photo can move it).

    Args:
        samples: float32 ``(K, H, W, 3)`` pixels, modified in place when needed.
    """
    low, high = float(samples.min()), float(samples.max())
    if low == 0.0 and high == 255.0:
        return False
    samples[0, 0, 0, 0] = 0.0
    samples[0, 0, 0, 1] = 255.0
    return True


@dataclass(frozen=True)
class TensorQuant:
    """dtype and quantisation of a model input or output (``real = scale * (q - zero_point)``)."""

    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class GraphCheck:
    """What a converted model is made of, and what is wrong with it for its variant.

    Attributes:
        input, output: the I/O tensors' dtype and quantisation as the interpreter reports them.
        ops: builtin operator name → count.
        tensor_types: tensor dtype name → count (all tensors of the main subgraph).
        problems: broken invariants; empty means the model is what the variant promises.
    """

    input: TensorQuant
    output: TensorQuant
    ops: dict[str, int]
    tensor_types: dict[str, int]
    problems: tuple[str, ...] = field(default=())


def check_graph(model_bytes: bytes, variant: str) -> GraphCheck:
    """Inspect a converted model with LiteRT and its flatbuffer; list broken invariants.

    int8 must have: uint8 input with scale exactly 1.0 and zero-point 0 (raw pixels
    enter exactly), uint8 output, no op other than QUANTIZE touching a uint8 tensor
    (uint8 kernels are the legacy, slower path), and float only where :func:`float_stem`
    puts it: at most one DEQUANTIZE and at most two float convolutions after it.
    Float-I/O variants must take and give float32.
    """
    from edge_runner.core.runtime import load_runtime

    interpreter = load_runtime().make_interpreter(model_bytes, num_threads=1)
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    problems: list[str] = []
    if len(inputs) != 1 or len(outputs) != 1:
        problems.append(f"expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")

    def quant(detail: dict) -> TensorQuant:
        scale, zero_point = detail["quantization"]
        return TensorQuant(np.dtype(detail["dtype"]).name, float(scale), int(zero_point))

    in_q, out_q = quant(inputs[0]), quant(outputs[0])
    model = _tfl.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    ops: dict[str, int] = {}
    uint8_users: list[str] = []
    float_ops: list[str] = []  # ops other than DEQUANTIZE writing a float tensor
    types = [_TENSOR_TYPES.get(graph.Tensors(i).Type(), str(graph.Tensors(i).Type())) for i in range(graph.TensorsLength())]
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = _OPS.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ops[name] = ops.get(name, 0) + 1
        touched = [op.Inputs(j) for j in range(op.InputsLength())] + [op.Outputs(j) for j in range(op.OutputsLength())]
        if name != "QUANTIZE" and any(t >= 0 and types[t] == "UINT8" for t in touched):
            uint8_users.append(name)
        if name != "DEQUANTIZE" and any(types[op.Outputs(j)].startswith(("FLOAT", "BFLOAT")) for j in range(op.OutputsLength())):
            float_ops.append(name)
    tensor_types: dict[str, int] = {}
    for name in types:
        tensor_types[name] = tensor_types.get(name, 0) + 1

    if variant == "int8":
        if in_q.dtype != "uint8" or in_q.scale != 1.0 or in_q.zero_point != 0:
            problems.append(
                f"input is {in_q.dtype} scale {in_q.scale!r} zero-point {in_q.zero_point}, expected uint8 scale 1.0 "
                "zero-point 0 (raw 0-255 pixels entering exactly); the calibration pixels did not span 0..255"
            )
        if out_q.dtype != "uint8":
            problems.append(f"output is {out_q.dtype}, expected uint8")
        floats = {t: n for t, n in tensor_types.items() if t.startswith(("FLOAT", "BFLOAT"))}
        stem = len(float_ops) <= 2 and set(float_ops) <= {"DEPTHWISE_CONV_2D", "CONV_2D"} and ops.get("DEQUANTIZE", 0) <= 1
        if floats and not stem:
            problems.append(f"float tensors left in an int8 model beyond its float stem: {floats} (float ops: {float_ops})")
        if uint8_users:
            problems.append(f"ops running on uint8 (legacy kernels) instead of int8: {sorted(set(uint8_users))}")
        if ops.get("DEQUANTIZE", 0) > 1:
            problems.append(f"{ops['DEQUANTIZE']} DEQUANTIZE ops: more of the graph runs in float than the first depthwise convolution")
    else:
        if in_q.dtype != "float32" or out_q.dtype != "float32":
            problems.append(f"{variant} must take and give float32, found input {in_q.dtype} and output {out_q.dtype}")
    return GraphCheck(in_q, out_q, dict(sorted(ops.items())), dict(sorted(tensor_types.items())), tuple(problems))


def require_valid(check: GraphCheck, variant: str) -> None:
    """Raise ``ConversionFailed`` listing ``check.problems`` (the variant is not written)."""
    if check.problems:
        raise ConversionFailed(f"{variant}: " + "; ".join(check.problems))
