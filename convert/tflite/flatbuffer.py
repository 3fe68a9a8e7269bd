"""Reading and re-packing the ``.tflite`` model flatbuffer (schema ``TFL3``).

The converter's output is re-packed once, when the metadata goes in
(:func:`convert.tflite.metadata.embed`). Two things differ from the object API's own
``ModelT.Pack``:

* **Constant buffers are aligned to 16 bytes**, as the TFLite converter aligns
  them, so kernels that read weights in place never see a misaligned tensor.
* **Identical quantisation vectors are written once.** Per-channel quantisation
  stores one float32 scale and one *int64* zero-point per output channel, on
  each convolution's weights and again on its bias, and the converter writes
  every vector afresh. Symmetric int8 weights have all-zero zero-points, so in
  MobileNetV2 its 34,188 zero-points (273 KB, 3 % of the float32 file) are
  copies of a few dozen distinct vectors. A flatbuffer lets any number of
  tables point at one vector (offsets form a DAG; the verifier checks bounds,
  not uniqueness), and the interpreter copies the values into its own
  ``TfLiteAffineQuantization`` when it builds a tensor, so nothing ever writes
  through a shared vector. The values every tensor reads are unchanged:
  ``convert.export`` checks each file's tensor quantisation and outputs against
  the converter's bytes before writing it.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np

try:  # the model schema (object API) ships with LiteRT and with TensorFlow
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - TensorFlow's copy is the same schema
    from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[no-redef]

MODEL_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16
# Part of every export's conversion key: a change to how files are packed must
# not let an export reuse a file packed the old way.
PACKING_VERSION = 2


def read_model(model_bytes: bytes) -> Any:
    """``model_bytes`` (a ``.tflite``) as the schema's mutable ``ModelT``.

    Files packed after the flatbuffer are not part of it, so they are left out.
    """
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))


def pack_model(model: Any) -> bytes:
    """Serialise a ``ModelT`` with aligned buffers and shared quantisation vectors (see the module doc).

    ``model`` itself is left as it was.
    """
    shared: dict[tuple[str, bytes], int] = {}
    buffers = model.buffers
    tensors = [t for subgraph in (model.subgraphs or []) for t in (subgraph.tensors or [])]
    quantizations = [t.quantization for t in tensors]
    try:  # swap in the packing stand-ins, and always put the originals back
        model.buffers = [_AlignedBuffer(b) for b in (buffers or [])]
        for tensor, quantization in zip(tensors, quantizations):
            if quantization is not None:
                tensor.quantization = _SharedQuantization(quantization, shared)
        payload = sum(len(b.data) for b in (buffers or []) if b.data is not None)
        builder = flatbuffers.Builder(payload + 65_536)
        builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)
        return bytes(builder.Output())
    finally:
        model.buffers = buffers
        for tensor, quantization in zip(tensors, quantizations):
            tensor.quantization = quantization


class _AlignedBuffer:
    """Stands in for ``BufferT`` at pack time: same fields, data aligned like the converter's."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - the object API's name
        data = self.buffer.data
        vector = None
        if data is not None and len(data) > 0:
            payload = np.asarray(data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head: builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            vector = builder.EndVector()
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        schema.BufferAddOffset(builder, self.buffer.offset)
        schema.BufferAddSize(builder, self.buffer.size)
        return schema.BufferEnd(builder)


class _SharedQuantization:
    """Stands in for ``QuantizationParametersT`` at pack time, reusing vectors already written.

    ``shared`` maps (dtype, bytes) of a vector to its offset in the builder; it
    lives for one ``pack_model`` call, so every offset in it belongs to that builder.
    """

    def __init__(self, quantization: Any, shared: dict[tuple[str, bytes], int]) -> None:
        self.quantization = quantization
        self.shared = shared

    def _vector(self, builder: flatbuffers.Builder, values: Any, dtype: str) -> int | None:
        if values is None:
            return None
        array = np.ascontiguousarray(np.asarray(values, dtype=dtype))
        key = (array.dtype.str, array.tobytes())
        if key not in self.shared:
            self.shared[key] = builder.CreateNumpyVector(array)
        return self.shared[key]

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - the object API's name
        q = self.quantization
        # Vectors and the details union go first: a flatbuffer table cannot nest them.
        minimum = self._vector(builder, q.min, "<f4")
        maximum = self._vector(builder, q.max, "<f4")
        scale = self._vector(builder, q.scale, "<f4")
        zero_point = self._vector(builder, q.zeroPoint, "<i8")
        details = q.details.Pack(builder) if q.details is not None else None
        schema.QuantizationParametersStart(builder)
        if minimum is not None:
            schema.QuantizationParametersAddMin(builder, minimum)
        if maximum is not None:
            schema.QuantizationParametersAddMax(builder, maximum)
        if scale is not None:
            schema.QuantizationParametersAddScale(builder, scale)
        if zero_point is not None:
            schema.QuantizationParametersAddZeroPoint(builder, zero_point)
        schema.QuantizationParametersAddDetailsType(builder, q.detailsType)
        if details is not None:
            schema.QuantizationParametersAddDetails(builder, details)
        schema.QuantizationParametersAddQuantizedDimension(builder, q.quantizedDimension)
        return schema.QuantizationParametersEnd(builder)
