"""convert/tflite/metadata.py checked by readers and writers that share nothing with it.

``convert.tflite.metadata`` writes and reads the TFLite metadata through code generated
from ``convert/schema/metadata.fbs``, so a round trip alone cannot see a wrong field
id: writer and reader would agree on it. Here the other side is always independent:

* ``flatc`` (Debian's ``flatbuffers-compiler``) prints the bytes as JSON and builds
  bytes from JSON, with our ``.fbs`` and with the *published* ``metadata_schema.fbs``
  that the MediaPipe wheel ships (side venv: the ``mediapipe_venv`` fixture, ``tests/mediapipe_venv.py``);
* ``flatc --conform`` checks our subset against the published schema (ids, types,
  enum and union values).

MediaPipe Tasks reading the labels and normalisation back is in test_convert_mediapipe.py.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("flatbuffers", reason="convert/ needs flatbuffers (pip install .[train])")

from conftest import REPO, swap_field_ids  # noqa: E402

from convert.tflite import metadata as md  # noqa: E402
from convert.tflite.flatbuffer import schema as tflite_schema  # noqa: E402
from edge_runner.core.spec import InputSpec  # noqa: E402

SCHEMA = REPO / "convert" / "schema" / "metadata.fbs"
SHIPPED = sorted((REPO / "models").glob("*.tflite"))

# Every field of our schema, each with a value no other field of the same type has,
# so any two slots swapped show up as a difference.
RICH = {
    "name": "m", "description": "d", "version": "1",
    "subgraph_metadata": [{
        "name": "main", "description": "sg",
        "input_tensor_metadata": [{
            "name": "image", "description": "t", "dimension_names": ["h", "w"],
            "content": {"content_properties_type": "ImageProperties",
                        "content_properties": {"color_space": "GRAYSCALE", "default_size": {"width": 5, "height": 7}},
                        "range": {"min": 1, "max": 2}},
            "process_units": [{"options_type": "NormalizationOptions", "options": {"mean": [127.5], "std": [2.0, 3.0]}}],
            "stats": {"max": [1.5], "min": [-1.5, -2.5]},
            "associated_files": [{"name": "a.txt", "type": "DESCRIPTIONS"}],
        }],
        "output_tensor_metadata": [{
            "name": "p",
            "content": {"content_properties_type": "FeatureProperties", "content_properties": {}},
            "associated_files": [{"name": "l.txt", "description": "x", "type": "TENSOR_AXIS_LABELS",
                                  "locale": "en", "version": "2"}],
        }],
        "associated_files": [{"name": "s.txt", "type": "TENSOR_VALUE_LABELS"}],
        "input_process_units": [{"options_type": "NormalizationOptions", "options": {"mean": [1.0], "std": [4.0]}}],
        "output_process_units": [],
    }],
    "author": "a", "license": "l",
    "associated_files": [{"name": "c.json", "type": "DESCRIPTIONS"}],
    "min_parser_version": "1.4.1",  # AssociatedFile.version is a 1.4.1 field
}


@pytest.fixture(scope="module")
def flatc() -> str:
    path = shutil.which("flatc")
    if path is None:
        pytest.skip("flatc not found (Debian: apt-get install flatbuffers-compiler; `make test` installs it)")
    return path


@pytest.fixture(scope="module", params=["our schema", "published schema"])
def schema(request, flatc) -> Path:
    """The .fbs flatc reads with: ours, and the published one from the MediaPipe wheel."""
    if request.param == "our schema":
        return SCHEMA
    published = request.getfixturevalue("mediapipe_venv").published_schema
    if published is None:
        pytest.skip("the MediaPipe wheel has no tasks/metadata/metadata_schema.fbs")
    return published


def flatc_read(flatc: str, schema: Path, buffer: bytes, workdir: Path) -> dict:
    """``buffer`` as flatc prints it (JSON); flatc also checks the file identifier against the schema's."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "metadata.bin").write_bytes(buffer)
    done = subprocess.run([flatc, "--json", "--strict-json", "-o", str(workdir), str(schema), "--",
                           str(workdir / "metadata.bin")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / "metadata.json").read_text())


def flatc_write(flatc: str, schema: Path, metadata: dict, workdir: Path) -> bytes:
    """The flatbuffer flatc builds from ``metadata`` (JSON), with the schema's file identifier."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "source.json").write_text(json.dumps(metadata))
    done = subprocess.run([flatc, "--binary", "-o", str(workdir), str(schema), str(workdir / "source.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (binary,) = [p for p in workdir.glob("source.*") if p.suffix != ".json"]
    return binary.read_bytes()


def test_our_schema_conforms_to_the_published_one(flatc, mediapipe_venv):
    """The published schema must be a valid evolution of our subset: same ids, types, enum and union values."""
    published = mediapipe_venv.published_schema
    if published is None:
        pytest.skip("the MediaPipe wheel has no tasks/metadata/metadata_schema.fbs")
    done = subprocess.run([flatc, "--conform", str(SCHEMA), str(published)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'file_identifier "M001";' in SCHEMA.read_text() and 'file_identifier "M001";' in published.read_text()


def test_every_field_written_is_read_by_flatc_as_written(flatc, schema, tmp_path):
    buffer = md.encode_metadata(RICH)
    assert buffer[4:8] == b"M001"
    assert flatc_read(flatc, schema, buffer, tmp_path) == RICH
    assert md.decode_metadata(buffer) == RICH


def test_every_field_flatc_writes_is_decoded(flatc, schema, tmp_path):
    assert md.decode_metadata(flatc_write(flatc, schema, RICH, tmp_path)) == RICH


@pytest.mark.parametrize("float_input", [True, False], ids=["float input", "uint8 input"])
def test_classifier_metadata_as_an_app_reads_it(flatc, schema, tmp_path, float_input):
    spec = InputSpec(labels=("golden retriever", "cat", "dog"), height=96, width=128, name="pets")
    written = md.classifier_metadata(spec, "v", float_input=float_input, info=md.ModelInfo(author="me"))
    seen = flatc_read(flatc, schema, md.encode_metadata(written), tmp_path)
    (subgraph,) = seen["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"] == {"content_properties_type": "ImageProperties",
                                "content_properties": {"color_space": "RGB", "default_size": {"width": 128, "height": 96}}}
    assert image["stats"] == {"max": [255.0], "min": [0.0]}
    if float_input:  # raw 0-255 pixels into a graph that normalises itself
        assert image["process_units"] == [{"options_type": "NormalizationOptions",
                                           "options": {"mean": [0.0], "std": [1.0]}}]
    else:
        assert "process_units" not in image
    (probability,) = subgraph["output_tensor_metadata"]
    assert [(f["name"], f["type"]) for f in probability["associated_files"]] == [("labels.txt", "TENSOR_AXIS_LABELS")]
    assert [f["name"] for f in seen["associated_files"]] == ["contract.json"]
    assert (seen["name"], seen["author"], seen["min_parser_version"]) == ("pets", "me", "1.0.0")
    # Everything else as written (an UNKNOWN file type is the default, so it is not in the bytes).
    written = copy.deepcopy(written)
    del written["associated_files"][0]["type"]
    assert seen == {**written, "min_parser_version": "1.0.0"}


# (generated table, field, field) of the same type: uint, [float], string.
SWAPS = [
    ("ImageSize", "Width", "Height",
     ("subgraph_metadata", 0, "input_tensor_metadata", 0, "content", "content_properties", "default_size")),
    ("Stats", "Max", "Min", ("subgraph_metadata", 0, "input_tensor_metadata", 0, "stats")),
    ("ModelMetadata", "Author", "License", ()),
]


@pytest.mark.parametrize("table, first, second, path", SWAPS, ids=[s[0] for s in SWAPS])
def test_a_swapped_field_id_passes_the_round_trip_but_not_flatc(flatc, tmp_path, monkeypatch, table, first, second, path):
    """Writer and reader patched alike, as a wrong id in a shared schema table would be."""
    swap_field_ids(monkeypatch, table, first, second)
    buffer = md.encode_metadata(RICH)
    assert md.decode_metadata(buffer) == RICH  # the blind spot of a round trip
    seen = flatc_read(flatc, SCHEMA, buffer, tmp_path)
    swapped = copy.deepcopy(RICH)
    node = swapped
    for key in path:
        node = node[key]
    a, b = first.lower(), second.lower()
    node[a], node[b] = node[b], node[a]
    assert seen != RICH and seen == swapped


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_read_the_same_with_flatc(flatc, schema, tmp_path, path):
    content = path.read_bytes()
    model = tflite_schema.Model.GetRootAs(content, 0)  # the model schema, not ours, finds the buffer
    (buffer,) = [bytes(model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy())
                 for i in range(model.MetadataLength()) if model.Metadata(i).Name() == b"TFLITE_METADATA"]
    seen = flatc_read(flatc, schema, buffer, tmp_path)
    assert seen == md.read_metadata(content)
    (image,) = seen["subgraph_metadata"][0]["input_tensor_metadata"]
    assert image["content"]["content_properties"]["default_size"] == {"width": 224, "height": 224}
    assert ("process_units" in image) == ("int8" not in path.name)


def test_bad_metadata_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match=r"color_space: ColorSpaceType must be one of .*received 'BGR'"):
        md.encode_metadata({"subgraph_metadata": [{"input_tensor_metadata": [{"content": {
            "content_properties_type": "ImageProperties", "content_properties": {"color_space": "BGR"}}}]}]})
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\] for ModelMetadata.subgraph_metadata\[0\]"):
        md.encode_metadata({"subgraph_metadata": [{"colour": 1}]})
    with pytest.raises(ValueError, match="content_properties needs content_properties_type"):
        md.encode_metadata({"subgraph_metadata": [{"input_tensor_metadata": [{"content": {"content_properties": {}}}]}]})
    with pytest.raises(ValueError, match="not a ModelMetadata flatbuffer"):
        md.decode_metadata(b"\x0c\x00\x00\x00TFL3\x00\x00\x00\x00")


def test_min_parser_version_follows_the_fields_used():
    assert md.min_parser_version({}) == "1.0.0"
    assert md.min_parser_version({"associated_files": [{"name": "v.txt", "type": "VOCABULARY"}]}) == "1.0.1"
    assert md.min_parser_version({"subgraph_metadata": [{"input_process_units": []}]}) == "1.1.0"
    assert md.min_parser_version(RICH) == "1.4.1"
    assert md.decode_metadata(md.encode_metadata({"name": "x"})) == {"name": "x", "min_parser_version": "1.0.0"}


def test_the_checked_in_module_is_what_flatc_generates(flatc, tmp_path):
    """convert/schema/metadata_generated.py is not stale: regenerating with the command in the .fbs changes nothing."""
    version = subprocess.run([flatc, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if version != "flatc version 2.0.8":  # other flatc versions word the generated code differently
        pytest.skip(f"the module was generated by flatc 2.0.8 (Debian 12), this is {version!r}")
    command = next(line for line in SCHEMA.read_text().splitlines() if line.startswith("//   flatc "))[4:].split()
    assert command[-3:] == ["-o", "convert/schema", "convert/schema/metadata.fbs"]
    done = subprocess.run([flatc, *command[1:-3], "-o", str(tmp_path), str(SCHEMA)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    checked_in = SCHEMA.parent / "metadata_generated.py"
    assert (tmp_path / "metadata_generated.py").read_text() == checked_in.read_text()
