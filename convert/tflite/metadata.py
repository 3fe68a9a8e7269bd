"""Standard TFLite model metadata, written and read through the flatc-generated object API.

A ``.tflite`` file carries its metadata as a ``TFLITE_METADATA`` entry of the model flatbuffer whose buffer
holds a second flatbuffer, ``ModelMetadata`` from tflite-support's ``metadata_schema.fbs`` (file identifier
``M001``). Associated files (``labels.txt``, the edgekit ``contract.json``) follow the flatbuffer as an
uncompressed zip archive, exactly as tflite-support's ``MetadataPopulator`` writes them, so MediaPipe Tasks,
the TFLite Task Library, Android Studio's model binding and :func:`edge_runner.core.model.read_packed_files`
all find them.

The layout (field ids, types, enum and union values) is that of ``convert/schema/metadata.fbs``, the subset
of the published schema the kit writes, compiled by ``flatc`` into ``convert/schema/metadata_generated.py``
(the command is at the top of the ``.fbs``). This module only translates between that object API and plain
dicts in the JSON shape of tflite-support's ``MetadataDisplayer`` (snake_case keys, enum and union type
names as strings, fields at their default value left out), so it holds no slot or type of its own.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np

from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME, InputSpec

from .flatbuffer import pack_model, read_model, schema
from ..schema import metadata_generated as fb

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"

# Which generated class a nested dict or list of dicts becomes (the object API's attributes are untyped),
# which fields hold an enum, and which union member each union's ``*_type`` field selects. The binary
# layout is not here (a wrong class here fails with an unknown-field error, never writes a wrong slot).
_TABLES: dict[str, type] = {
    "subgraph_metadata": fb.SubGraphMetadataT, "associated_files": fb.AssociatedFileT, "content": fb.ContentT,
    "input_tensor_metadata": fb.TensorMetadataT, "output_tensor_metadata": fb.TensorMetadataT,
    "range": fb.ValueRangeT, "default_size": fb.ImageSizeT, "stats": fb.StatsT, "process_units": fb.ProcessUnitT,
    "input_process_units": fb.ProcessUnitT, "output_process_units": fb.ProcessUnitT,
}
_ENUMS: dict[str, type] = {
    "type": fb.AssociatedFileType,
    "color_space": fb.ColorSpaceType,
    "content_properties_type": fb.ContentProperties,
    "options_type": fb.ProcessUnitOptions,
}
_UNIONS = {"content_properties": "content_properties_type", "options": "options_type"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _enum_names(enum: type) -> dict[str, int]:
    return {k: v for k, v in vars(enum).items() if not k.startswith("_")}


def _enum_code(field: str, value: Any) -> int:
    names = _enum_names(_ENUMS[field])
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"metadata: {field}: {_ENUMS[field].__name__} must be one of "
                             f"{tuple(names)}, received {value!r}")
        return names[value]
    return int(value)


# -- dict → object API → bytes -------------------------------------------------

def _to_object(cls: type, data: dict[str, Any], where: str) -> Any:
    """A dict in MetadataDisplayer shape → an instance of the generated ``cls`` (a ``...T`` class)."""
    obj = cls()
    attributes = {_snake(attr): attr for attr in vars(obj)}
    unknown = set(data) - set(attributes)
    if unknown:
        raise ValueError(f"metadata: unknown fields {sorted(unknown)} for {where}; allowed: {sorted(attributes)}")
    for key, value in data.items():
        if value is None:
            continue
        if key in _ENUMS:
            value = _enum_code(key, value)
        elif key in _UNIONS:
            member = data.get(_UNIONS[key])
            if member is None:
                raise ValueError(f"metadata: {where}.{key} needs {_UNIONS[key]}")
            code = _enum_code(_UNIONS[key], member)
            member_name = {v: k for k, v in _enum_names(_ENUMS[_UNIONS[key]]).items()}.get(code)
            if member_name in (None, "NONE"):
                raise ValueError(f"metadata: {where}.{_UNIONS[key]}: no such member {member!r}")
            value = _to_object(getattr(fb, member_name + "T"), value, f"{where}.{key}")
        elif key in _TABLES:
            table = _TABLES[key]
            value = ([_to_object(table, item, f"{where}.{key}[{i}]") for i, item in enumerate(value)]
                     if isinstance(value, (list, tuple)) else _to_object(table, value, f"{where}.{key}"))
        elif isinstance(value, (list, tuple)):  # [string] or [float]
            value = list(value)
        setattr(obj, attributes[key], value)
    return obj


def encode_metadata(metadata: dict[str, Any]) -> bytes:
    """A ``ModelMetadata`` dict (MetadataDisplayer JSON shape) → the ``M001`` flatbuffer bytes.

    ``min_parser_version`` is filled in from the fields used when absent.
    Raises ``ValueError`` naming the field for an unknown field or enum value.
    """
    metadata = dict(metadata)
    metadata.setdefault("min_parser_version", min_parser_version(metadata))
    root = _to_object(fb.ModelMetadataT, metadata, "ModelMetadata")
    builder = flatbuffers.Builder(1024)
    builder.Finish(root.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


# -- bytes → object API → dict -------------------------------------------------

def _to_dict(obj: Any) -> dict[str, Any]:
    """An unpacked generated ``...T`` instance → a dict; absent and default-valued fields left out."""
    out: dict[str, Any] = {}
    for attr, value in vars(obj).items():
        key = _snake(attr)
        if value is None or (isinstance(value, (int, float)) and value == 0):
            continue  # what the builder never writes, and MetadataDisplayer never shows
        if key in _ENUMS:
            value = {v: k for k, v in _enum_names(_ENUMS[key]).items()}.get(value, value)
        out[key] = _value(value)
    return out


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_value(item) for item in value]
    if hasattr(value, "Pack"):  # a nested table
        return _to_dict(value)
    return value


def decode_metadata(buffer: bytes) -> dict[str, Any]:
    """The ``M001`` flatbuffer → a ``ModelMetadata`` dict (MetadataDisplayer JSON shape)."""
    if len(buffer) < 8 or not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
        raise ValueError(f"metadata: not a ModelMetadata flatbuffer (identifier {bytes(buffer[4:8])!r}, "
                         f"expected {METADATA_IDENTIFIER!r})")
    return _to_dict(fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(bytearray(buffer), 0)))


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
            if item.get("type") in ("SCANN_INDEX_FILE", 6):
                bump((1, 4, 0))
            if item.get("version") is not None:
                bump((1, 4, 1))

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
