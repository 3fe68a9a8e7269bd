"""Standard TFLite model metadata, written and read in pure Python.

A ``.tflite`` file carries its metadata as a ``TFLITE_METADATA`` entry of the
model flatbuffer whose buffer holds a second flatbuffer, ``ModelMetadata`` from
``metadata_schema.fbs`` (tensorflow/tflite-support, file identifier ``M001``).
Associated files (``labels.txt``, the edgekit ``contract.json``) follow the
flatbuffer as an uncompressed zip archive, exactly as tflite-support's
``MetadataPopulator`` writes them, so MediaPipe Tasks, the TFLite Task Library,
Android Studio's model binding and :func:`edge_runner.model.read_packed_files`
all find them.

``tflite-support`` has no wheels for current Python versions, so the subset of
the metadata schema the kit uses is described once in ``_SCHEMA`` (field slot =
declaration order in the .fbs) and drives both the encoder and the decoder.
Decoded metadata uses the same JSON shape as tflite-support's
``MetadataDisplayer`` (enum and union type names as strings).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

from edge_runner.spec import CONTRACT_FILENAME, LABELS_FILENAME, InputSpec

from .flatbuffer import pack_model, read_model, schema

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"

# -- the subset of metadata_schema.fbs used here ------------------------------
# Each table lists its fields in declaration order; the index is the vtable slot.
# A union ``u`` takes two slots: ``u_type`` (ubyte) then ``u`` (the table).
# Kinds: "string", "byte", "ubyte", "uint", "int", "float", "[string]",
# "[float]", "[uint]", a table name, "[TableName]", "union:UnionName".
_SCHEMA: dict[str, list[tuple[str, str]]] = {
    "AssociatedFile": [("name", "string"), ("description", "string"), ("type", "enum:AssociatedFileType"),
                       ("locale", "string"), ("version", "string")],
    "FeatureProperties": [],
    "ImageSize": [("width", "uint"), ("height", "uint")],
    "ImageProperties": [("color_space", "enum:ColorSpaceType"), ("default_size", "ImageSize")],
    "ValueRange": [("min", "int"), ("max", "int")],
    "Content": [("content_properties_type", "utype:ContentProperties"),
                ("content_properties", "union:ContentProperties"), ("range", "ValueRange")],
    "NormalizationOptions": [("mean", "[float]"), ("std", "[float]")],
    "ScoreThresholdingOptions": [("global_score_threshold", "float")],
    "ProcessUnit": [("options_type", "utype:ProcessUnitOptions"), ("options", "union:ProcessUnitOptions")],
    "Stats": [("max", "[float]"), ("min", "[float]")],
    "TensorMetadata": [("name", "string"), ("description", "string"), ("dimension_names", "[string]"),
                       ("content", "Content"), ("process_units", "[ProcessUnit]"), ("stats", "Stats"),
                       ("associated_files", "[AssociatedFile]")],
    "SubGraphMetadata": [("name", "string"), ("description", "string"),
                         ("input_tensor_metadata", "[TensorMetadata]"), ("output_tensor_metadata", "[TensorMetadata]"),
                         ("associated_files", "[AssociatedFile]"), ("input_process_units", "[ProcessUnit]"),
                         ("output_process_units", "[ProcessUnit]")],
    "ModelMetadata": [("name", "string"), ("description", "string"), ("version", "string"),
                      ("subgraph_metadata", "[SubGraphMetadata]"), ("author", "string"), ("license", "string"),
                      ("associated_files", "[AssociatedFile]"), ("min_parser_version", "string")],
}
_ENUMS: dict[str, tuple[str, ...]] = {
    "AssociatedFileType": ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
                           "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY"),
    "ColorSpaceType": ("UNKNOWN", "RGB", "GRAYSCALE"),
    # Union members, index = type code (0 is NONE).
    "ContentProperties": ("NONE", "FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties"),
    "ProcessUnitOptions": ("NONE", "NormalizationOptions", "ScoreCalibrationOptions", "ScoreThresholdingOptions",
                           "BertTokenizerOptions", "SentencePieceTokenizerOptions", "RegexTokenizerOptions"),
}
_SCALARS = {
    "byte": (N.Int8Flags, "PrependInt8Slot"),
    "ubyte": (N.Uint8Flags, "PrependUint8Slot"),
    "uint": (N.Uint32Flags, "PrependUint32Slot"),
    "int": (N.Int32Flags, "PrependInt32Slot"),
    "float": (N.Float32Flags, "PrependFloat32Slot"),
}


# -- encoding -----------------------------------------------------------------

def _enum_code(kind: str, value: Any) -> int:
    names = _ENUMS[kind.split(":", 1)[1]]
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"metadata: {kind.split(':', 1)[1]} must be one of {names}, received {value!r}")
        return names.index(value)
    return int(value)


def _encode_table(builder: flatbuffers.Builder, table: str, obj: dict[str, Any]) -> int:
    fields = _SCHEMA[table]
    unknown = set(obj) - {name for name, _ in fields}
    if unknown:
        raise ValueError(f"metadata: unknown fields {sorted(unknown)} for {table}; allowed: {[n for n, _ in fields]}")
    # Children first: a flatbuffer table can only point at objects already built.
    offsets: dict[str, int] = {}
    for name, kind in fields:
        value = obj.get(name)
        if value is None:
            continue
        if kind == "string":
            offsets[name] = builder.CreateString(str(value))
        elif kind == "[string]":
            items = [builder.CreateString(str(v)) for v in value]
            offsets[name] = _offset_vector(builder, items)
        elif kind == "[float]":
            offsets[name] = builder.CreateNumpyVector(np.asarray(value, dtype="<f4").reshape(-1))
        elif kind == "[uint]":
            offsets[name] = builder.CreateNumpyVector(np.asarray(value, dtype="<u4").reshape(-1))
        elif kind.startswith("union:"):
            member = obj.get(f"{name}_type")
            if member is None:
                raise ValueError(f"metadata: {table}.{name} needs {name}_type")
            member_name = member if isinstance(member, str) else _ENUMS[kind[6:]][member]
            offsets[name] = _encode_table(builder, member_name, value)
        elif kind.startswith("["):
            offsets[name] = _offset_vector(builder, [_encode_table(builder, kind[1:-1], v) for v in value])
        elif kind in _SCHEMA:
            offsets[name] = _encode_table(builder, kind, value)
    builder.StartObject(len(fields))
    for slot, (name, kind) in enumerate(fields):
        value = obj.get(name)
        if value is None:
            continue
        if name in offsets:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[name], 0)
        elif kind.startswith(("enum:", "utype:")):
            code = _enum_code(kind, value)
            prepend = builder.PrependInt8Slot if kind.startswith("enum:") else builder.PrependUint8Slot
            prepend(slot, code, 0)
        else:
            _flags, method = _SCALARS[kind]
            getattr(builder, method)(slot, value, 0)
    return builder.EndObject()


def _offset_vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def encode_metadata(metadata: dict[str, Any]) -> bytes:
    """A ``ModelMetadata`` dict (MetadataDisplayer JSON shape) → the ``M001`` flatbuffer bytes.

    ``min_parser_version`` is filled in from the fields used when absent.
    """
    metadata = dict(metadata)
    metadata.setdefault("min_parser_version", min_parser_version(metadata))
    builder = flatbuffers.Builder(1024)
    root = _encode_table(builder, "ModelMetadata", metadata)
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def min_parser_version(metadata: dict[str, Any]) -> str:
    """The smallest metadata parser version that understands every field used.

    Mirrors ``GetMinimumMetadataParserVersion`` (tflite-support
    ``metadata/cc/metadata_version.cc``): 1.0.0 unless a member added later is used.
    """
    version = (1, 0, 0)

    def bump(v: tuple[int, int, int]) -> None:
        nonlocal version
        version = max(version, v)

    def files(items: list[dict] | None) -> None:
        for item in items or ():
            if item.get("type") in ("VOCABULARY", 5):
                bump((1, 0, 1))

    def units(items: list[dict] | None) -> None:
        for item in items or ():
            kind = item.get("options_type")
            if kind in ("BertTokenizerOptions", "SentencePieceTokenizerOptions", 4, 5):
                bump((1, 1, 0))
            if kind in ("RegexTokenizerOptions", 6):
                bump((1, 2, 1))

    for subgraph in metadata.get("subgraph_metadata") or ():
        for tensor in (subgraph.get("input_tensor_metadata") or []) + (subgraph.get("output_tensor_metadata") or []):
            files(tensor.get("associated_files"))
            units(tensor.get("process_units"))
            if (tensor.get("content") or {}).get("content_properties_type") in ("AudioProperties", 4):
                bump((1, 3, 0))
        files(subgraph.get("associated_files"))
        for key in ("input_process_units", "output_process_units"):
            if subgraph.get(key) is not None:
                bump((1, 1, 0))
                units(subgraph[key])
    files(metadata.get("associated_files"))
    return ".".join(map(str, version))


# -- decoding -----------------------------------------------------------------

def _decode_table(table: Table, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    types: dict[str, str] = {}
    for slot, (field, kind) in enumerate(_SCHEMA[name]):
        o = table.Offset(4 + 2 * slot)
        if not o:
            continue
        pos = o + table.Pos
        if kind == "string":
            out[field] = table.String(pos).decode("utf-8")
        elif kind.startswith(("enum:", "utype:")):
            flags = N.Int8Flags if kind.startswith("enum:") else N.Uint8Flags
            code = table.Get(flags, pos)
            names = _ENUMS[kind.split(":", 1)[1]]
            out[field] = names[code] if 0 <= code < len(names) else code
            if kind.startswith("utype:"):
                types[field.removesuffix("_type")] = out[field]
        elif kind in _SCALARS:
            out[field] = table.Get(_SCALARS[kind][0], pos)
        elif kind.startswith("union:"):
            member = types.get(field)
            sub = Table(table.Bytes, 0)
            table.Union(sub, o)
            out[field] = _decode_table(sub, member) if member in _SCHEMA else {}
        elif kind.startswith("["):
            inner = kind[1:-1]
            length, start = table.VectorLen(o), table.Vector(o)
            if inner == "float":
                out[field] = [float(table.Get(N.Float32Flags, start + 4 * i)) for i in range(length)]
            elif inner == "uint":
                out[field] = [int(table.Get(N.Uint32Flags, start + 4 * i)) for i in range(length)]
            elif inner == "string":
                out[field] = [table.String(start + 4 * i).decode("utf-8") for i in range(length)]
            else:
                out[field] = [_decode_table(Table(table.Bytes, table.Indirect(start + 4 * i)), inner) for i in range(length)]
        else:
            out[field] = _decode_table(Table(table.Bytes, table.Indirect(pos)), kind)
    return out


def decode_metadata(buffer: bytes) -> dict[str, Any]:
    """The ``M001`` flatbuffer → a ``ModelMetadata`` dict (MetadataDisplayer JSON shape)."""
    if len(buffer) < 8 or buffer[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"metadata: not a ModelMetadata flatbuffer (identifier {bytes(buffer[4:8])!r}, expected {METADATA_IDENTIFIER!r})")
    data = bytearray(buffer)
    root = flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, 0)
    return _decode_table(Table(data, root), "ModelMetadata")


# -- the model flatbuffer -----------------------------------------------------

def read_metadata(model_bytes: bytes) -> dict[str, Any] | None:
    """The decoded ``TFLITE_METADATA`` of a ``.tflite`` file's bytes, or None without one."""
    model = schema.Model.GetRootAs(model_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode("utf-8") == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return decode_metadata(np.asarray(data, dtype=np.uint8).tobytes())
    return None


def embed(model_bytes: bytes, metadata: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """Return ``model_bytes`` with ``metadata`` as its ``TFLITE_METADATA`` and ``files`` packed after it.

    Args:
        model_bytes: a ``.tflite`` flatbuffer (any existing metadata entry and packed files are replaced).
        metadata: a ``ModelMetadata`` dict; every associated file it names must be in ``files``.
        files: name → content of the associated files to pack (stored uncompressed, as
            MediaPipe and the Task Library require).
    """
    named = _associated_file_names(metadata)
    if set(named) != set(files):
        raise ValueError(f"metadata names associated files {sorted(named)}, but {sorted(files)} were given")
    metadata_bytes = encode_metadata(metadata)
    model = read_model(model_bytes)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_bytes, dtype=np.uint8)
    model.buffers = list(model.buffers or [])
    model.metadata = list(model.metadata or [])
    existing = [m for m in model.metadata if _name(m) == METADATA_NAME]
    if existing:  # replace in place, as MetadataPopulator does (no orphaned buffer)
        model.buffers[existing[0].buffer] = buffer
    else:
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    stream = io.BytesIO()
    stream.write(pack_model(model))
    # Appending a zip to the flatbuffer, as MetadataPopulator does: readers
    # locate it from the end-of-central-directory record.
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name in named:
            archive.writestr(name, files[name])
    return stream.getvalue()


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name or "")


def _associated_file_names(metadata: dict[str, Any]) -> list[str]:
    names: list[str] = []

    def add(items: list[dict] | None) -> None:
        for item in items or ():
            if item["name"] not in names:
                names.append(item["name"])

    add(metadata.get("associated_files"))
    for subgraph in metadata.get("subgraph_metadata") or ():
        add(subgraph.get("associated_files"))
        for tensor in (subgraph.get("input_tensor_metadata") or []) + (subgraph.get("output_tensor_metadata") or []):
            add(tensor.get("associated_files"))
    return names


# -- what edgekit writes ------------------------------------------------------

@dataclass(frozen=True)
class ModelInfo:
    """Human-readable fields of the metadata (the rest comes from the contract).

    Attributes:
        description: what the model does; the default names the labels and backbone.
        version: the model's own version string.
        author: who made it.
        license: the licence of the model file.
    """

    description: str = ""
    version: str = "1.0.0"
    author: str = "edgekit"
    license: str = "Apache-2.0"


def classifier_metadata(spec: InputSpec, variant: str, *, float_input: bool, info: ModelInfo) -> dict[str, Any]:
    """The metadata of an edgekit image classifier (MetadataDisplayer JSON shape).

    The input is an RGB image of ``spec.height x spec.width`` taking raw 0–255 pixels:
    normalisation is inside the graph, so a float input gets ``NormalizationOptions``
    mean 0, std 1 (what MediaPipe requires for float inputs; it then feeds raw pixels)
    and an integer input none (uint8 pixels enter as they are). The output is a
    probability per label, with ``labels.txt`` as its ``TENSOR_AXIS_LABELS`` file;
    ``contract.json`` is a model-level associated file for edgekit's runner.
    """
    labels = ", ".join(spec.labels)
    description = info.description or (
        f"Classifies a photo as one of {spec.num_classes} classes ({labels})"
        + (f"; {spec.backbone} fine-tuned with edgekit" if spec.backbone else "; trained with edgekit")
        + (f". {spec.background_label!r} means nothing of interest was seen" if spec.background_label else "")
        + (f". Recommended score threshold {spec.threshold:g} (below it: unknown)" if spec.threshold is not None else "")
        + f". Variant: {variant}."
    )
    image: dict[str, Any] = {
        "name": "image",
        "description": (
            f"RGB photo resized to {spec.width}x{spec.height} ({spec.resize}, crop {spec.crop}); "
            "raw pixel values 0-255, normalisation happens inside the model."
        ),
        "content": {
            "content_properties_type": "ImageProperties",
            "content_properties": {"color_space": "RGB", "default_size": {"width": spec.width, "height": spec.height}},
        },
        "stats": {"max": [255.0], "min": [0.0]},
    }
    if float_input:
        image["process_units"] = [
            {"options_type": "NormalizationOptions", "options": {"mean": [0.0], "std": [1.0]}}
        ]
    probability = {
        "name": "probability",
        "description": f"Probability of each of the {spec.num_classes} labels, in {LABELS_FILENAME} order.",
        "content": {"content_properties_type": "FeatureProperties", "content_properties": {}},
        "stats": {"max": [1.0], "min": [0.0]},
        "associated_files": [
            {"name": LABELS_FILENAME, "description": "Labels for the categories the model recognises.",
             "type": "TENSOR_AXIS_LABELS"}
        ],
    }
    return {
        "name": spec.name,
        "description": description,
        "version": info.version,
        "subgraph_metadata": [{"input_tensor_metadata": [image], "output_tensor_metadata": [probability]}],
        "author": info.author,
        "license": info.license,
        "associated_files": [
            {"name": CONTRACT_FILENAME, "description": "edgekit input contract (JSON): input size, resize, labels, variant.",
             "type": "UNKNOWN"}
        ],
    }
