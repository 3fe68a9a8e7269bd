"""Where int8 error comes from: per-layer quantisation error of the int8 model against the float one.

Uses TensorFlow's ``tf.lite.experimental.QuantizationDebugger``: the model is calibrated on
the calibration photos, then run with a NumericVerify op after every quantised op, which
compares the op's int8 output (dequantised) with the same op computed in float on the
same inputs. The error is therefore each layer's own, not what it inherited.

Two figures per layer:

* ``rmse_per_scale`` — RMSE in units of the layer's quantisation step. Rounding alone gives
  about 0.29 (uniform error over one step); much more means clipping or a bad range.
* ``relative_rmse`` — per output channel, RMSE divided by the standard deviation of the
  channel's float output (the median over channels): how much of the layer's signal int8
  destroys. A layer whose range is blown up by one outlier channel rounds correctly
  (``rmse_per_scale`` ≈ 0.29) but its step is so coarse that the other channels vanish;
  this figure finds it. Layers are ranked by it, except that the layers where it reaches
  ``LOST`` come first in graph order (see :func:`_rank_key`).

The same debugger then builds selectively quantised models (``denylisted_nodes``: the
worst layers kept in float) for :mod:`convert.int8.remedy`.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from edge_runner.common.files import write_figure
from edge_runner.common.native_log import import_quietly, silenced


LOST = 0.5  # relative_rmse at which a layer's int8 output has lost its signal (error ≥ half its spread)


@dataclass(frozen=True)
class LayerError:
    """One quantised op's own error, averaged over the debug photos.

    Attributes:
        position: order in the graph (0 = first quantised op).
        layer: the Keras layer name, read from the tensor name.
        tensor: the op's output tensor name (what ``denylisted_nodes`` takes).
        op: TFLite op name.
        scale: the output's quantisation step.
        rmse: root mean squared difference of int8 (dequantised) and float outputs.
        rmse_per_scale: ``rmse / scale``.
        relative_rmse: ``rmse / std(float output)``.
    """

    position: int
    layer: str
    tensor: str
    op: str
    scale: float
    rmse: float
    rmse_per_scale: float
    relative_rmse: float


@dataclass(frozen=True)
class Diagnosis:
    """The per-layer error table.

    Attributes:
        photos: calibration photos the debugger ran.
        layers: every quantised op, in graph order.
        ranking: tensor names: the layers losing the signal (``relative_rmse >= LOST``) in graph order, the
            first being the likely cause, then the others by ``relative_rmse``.
        seconds: time taken (calibration, instrumented model, runs).
        plot: the PNG written, or None.
    """

    photos: int
    layers: tuple[LayerError, ...]
    ranking: tuple[str, ...]
    seconds: float
    plot: str | None = None

    def worst(self, count: int) -> list[LayerError]:
        by_tensor = {layer.tensor: layer for layer in self.layers}
        return [by_tensor[name] for name in self.ranking[:count]]


def layer_name(tensor: str) -> str:
    """The Keras layer a TFLite tensor comes from.

    ``'m_1/mobilenetv2_1.00_224_1/block_16_project_BN_1/batchnorm/add_1;...'`` → ``'block_16_project_BN'``:
    the innermost scope with Keras' ``_N`` suffix, before the op names (``batchnorm``, ``add_1``).
    """
    parts = [p for p in tensor.split(";")[0].split("/") if p]
    scopes = [p for p in parts[:-1] if re.search(r"_\d+$", p)]
    name = scopes[-1] if scopes else (parts[0] if parts else tensor)
    return re.sub(r"_\d+$", "", name) if scopes else name


def _relative_rmse(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    """Median over output channels of ``RMSE_c / std_c`` (channels whose float output varies).

    Per channel, because one channel with a huge range sets the whole tensor's step: the
    tensor-wide ratio would look fine while every other channel is rounded away. Outputs
    with one value per channel (dense, pooled, softmax) use the tensor-wide ratio.
    """
    values = float_values.astype(np.float32)
    error = (quantized.astype(np.float32) - float(zero_point)) * float(scale) - values
    if values.ndim >= 3 and values.size > values.shape[-1]:
        channels = values.shape[-1]
        spread = values.reshape(-1, channels).std(axis=0)
        live = spread > 0
        if live.any():
            rmse = np.sqrt((error.reshape(-1, channels)[:, live] ** 2).mean(axis=0))
            return float(np.median(rmse / spread[live]))
    # One value per channel: judged against the spread of the values, but never against less
    # than one quantisation step (a nearly flat softmax would otherwise divide by ~0).
    return float(np.sqrt(np.mean(error ** 2))) / max(float(np.std(values)), float(scale), 1e-12)


def _rank_key(layer: LayerError) -> tuple[int, float]:
    """Layers that lose the signal (``relative_rmse >= LOST``) first, in graph order; then the rest, worst first.

    The float op each NumericVerify compares with reads the *dequantised* int8 input, so a
    layer downstream of a destroyed tensor computes, in float too, from a signal that is no
    longer there: its own spread collapses and its ratio explodes. The first layer in graph
    order to lose the signal is the cause; the ones after it are its consequences.
    """
    if layer.relative_rmse >= LOST:
        return (0, float(layer.position))
    return (1, -layer.relative_rmse)


def _dataset(pixels: np.ndarray) -> Any:
    def generate() -> Iterator[list[np.ndarray]]:
        for sample in pixels:
            yield [np.asarray(sample, np.float32)[np.newaxis]]

    return generate


class LayerDebugger:
    """A calibrated ``QuantizationDebugger`` for one Keras model, reused for diagnosis and denylists.

    Args:
        model: the Keras model (float32 raw 0–255 input, softmax output).
        calibration: float32 ``(K, H, W, 3)`` pixels, the int8 variant's calibration set.
    """

    def __init__(self, model: Any, calibration: np.ndarray) -> None:
        tf = import_quietly("tensorflow")
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _dataset(calibration)
        self._tf = tf
        self._calibration_photos = len(calibration)
        self.instrumented = b""  # the int8 model as the debugger quantises it, set by diagnose()
        self._debugger = silenced(lambda: tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=_dataset(calibration[:1])))

    def diagnose(self, pixels: np.ndarray) -> Diagnosis:
        """Per-layer error on float32 ``(K, H, W, 3)`` ``pixels`` (calibration photos)."""
        tf = self._tf
        started = time.perf_counter()
        debugger = self._debugger  # built with default options: setting them again would re-quantise for nothing
        # The plain int8 model (float I/O, no NumericVerify): its tensor names are the ones
        # ``denylisted_nodes`` takes, so the graph walk in ``with_consumers`` uses it.
        self.instrumented = bytes(silenced(debugger.get_nondebug_quantized_model))
        # A second debugger on the instrumented model's bytes keeps every tensor alive
        # (experimental_preserve_all_tensors), which the float-vs-int8 comparison needs.
        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"relative_rmse": _relative_rmse})
        direct = silenced(lambda: tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debugger.quant_model, debug_dataset=_dataset(pixels), debug_options=options))
        silenced(direct.run)
        dump = io.StringIO()
        direct.layer_statistics_dump(dump)
        layers = []
        for position, row in enumerate(csv.DictReader(io.StringIO(dump.getvalue()))):
            scale = float(row["scale"])
            rmse = float(np.sqrt(float(row["mean_squared_error"])))
            layers.append(LayerError(
                position=position, layer=layer_name(row["tensor_name"]), tensor=row["tensor_name"], op=row["op_name"],
                scale=scale, rmse=round(rmse, 6), rmse_per_scale=round(rmse / scale, 4) if scale else 0.0,
                relative_rmse=round(float(np.nan_to_num(float(row["relative_rmse"]))), 5),
            ))
        ranking = tuple(layer.tensor for layer in sorted(layers, key=_rank_key))
        return Diagnosis(len(pixels), tuple(layers), ranking, round(time.perf_counter() - started, 2))

    def selective(self, denylist: Sequence[str]) -> bytes:
        """The int8 model with the ops producing ``denylist`` tensors kept in float (float32 input and output)."""
        tf = self._tf
        self._debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(denylist))
        return bytes(silenced(self._debugger.get_nondebug_quantized_model))


def plot(diagnosis: Diagnosis, path: Path, *, marked: int = 5, title: str = "") -> Path:
    """A bar chart of every layer's relative RMSE in graph order, the ``marked`` worst named; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    layers = diagnosis.layers
    worst = set(diagnosis.ranking[:marked])
    figure = Figure(figsize=(11, 4.2), dpi=110)
    axes = figure.add_subplot(1, 1, 1)
    values = [max(layer.relative_rmse, 1e-6) for layer in layers]
    colours = ["#c0392b" if layer.tensor in worst else "#7f8c8d" for layer in layers]
    axes.bar(range(len(layers)), values, color=colours)
    axes.set_yscale("log")
    axes.set_xlabel("quantised op, in graph order")
    axes.set_ylabel("RMSE / std of float output")
    axes.axhline(LOST, color="#c0392b", linewidth=0.8, linestyle="--")
    axes.set_title(title or f"int8 error per layer ({diagnosis.photos} calibration photos); red: the {marked} worst; "
                   f"dashed: {LOST:g} (signal lost)")
    for layer in layers:
        if layer.tensor in worst:
            axes.annotate(layer.layer, (layer.position, max(layer.relative_rmse, 1e-6)), rotation=60, fontsize=7,
                          xytext=(0, 3), textcoords="offset points", ha="left", va="bottom")
    figure.tight_layout()
    write_figure(figure, path)
    return path


def with_consumers(model_bytes: bytes, tensors: Sequence[str]) -> list[str]:
    """``tensors`` plus the output tensors of every op that reads one of them (NumericVerify ops aside).

    Keeping a layer in float only helps if its readers run in float too: an int8 reader
    would quantise the float output again with the same calibrated (broken) range.
    """
    from ..quantize import _tfl

    model = _tfl.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    names = [graph.Tensors(i).Name().decode("utf-8", "replace") for i in range(graph.TensorsLength())]
    wanted = set(tensors)
    chosen = list(dict.fromkeys(tensors))
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        inputs = {names[op.Inputs(j)] for j in range(op.InputsLength()) if op.Inputs(j) >= 0}
        if not inputs & wanted:
            continue
        for j in range(op.OutputsLength()):
            name = names[op.Outputs(j)]
            if not name.startswith("NumericVerify") and name not in chosen:
                chosen.append(name)
    return chosen
