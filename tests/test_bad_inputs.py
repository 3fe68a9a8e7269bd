"""Every bad input of the runner issue: a one-line error naming it, the batch goes on, no traceback.

Each case runs in a batch between two good photos, so the test also proves that
one bad input never stops the others.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from conftest import draw_photo, run_runner
from PIL import Image

from edge_runner import preprocess
from edge_runner.core.spec import InputSpec, contract_path_for

RED, BLUE = (220, 40, 40), (40, 70, 220)


run = run_runner  # python -m edge_runner, in-process (tests/conftest.py)


@pytest.fixture
def good(tmp_path):
    first, last = tmp_path / "good_first.jpg", tmp_path / "good_last.png"
    draw_photo(RED, seed=1).save(first, quality=90)
    draw_photo(BLUE, seed=2).save(last)
    return first, last


def batch(model, bad, good, capsys, *extra):
    """Run ``good_first bad good_last``; return (code, sources classified, stderr lines, records by source)."""
    code, out, err = run([good[0], bad, good[1], "--model", model, "--json", *extra], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    return code, [r["source"] for r in records], err.splitlines(), {r["source"]: r for r in records}


def assert_rejected(model, bad, good, capsys, reason):
    code, sources, errors, _ = batch(model, bad, good, capsys)
    assert code == 1
    assert sources == [str(good[0]), str(good[1])]  # the batch went on
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"edge_runner: error: {bad}: "), errors[0]
    assert reason in errors[0]


def assert_classified(model, path, good, capsys):
    code, sources, errors, records = batch(model, path, good, capsys)
    assert code == 0, errors
    assert sources == [str(good[0]), str(path), str(good[1])] and errors == []
    return records[str(path)]


def two_colour(size=(64, 48)) -> np.ndarray:
    """Left half red, right half blue: any rotation or channel swap shows."""
    width, height = size
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = RED
    array[:, width // 2 :] = BLUE
    return array


def png_header_only(path, width, height):
    """A valid PNG signature and IHDR claiming ``width x height`` and a tiny IDAT: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


# -- rejected, batch goes on ---------------------------------------------------


def test_zero_byte_file(tiny_models, good, tmp_path, capsys):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    assert_rejected(tiny_models["int8"], bad, good, capsys, "empty file (0 bytes)")


def test_truncated_jpeg(tiny_models, good, tmp_path, capsys):
    whole = tmp_path / "whole.jpg"
    draw_photo(RED, size=(320, 240), seed=3).save(whole, quality=90)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_rejected(tiny_models["int8"], bad, good, capsys, "corrupt or truncated image data")


def test_text_file_named_jpg(tiny_models, good, tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("shopping list: milk, eggs\n")
    assert_rejected(tiny_models["int8"], bad, good, capsys, "not an image")


def test_decompression_bomb_refused_by_pillow(tiny_models, good, tmp_path, capsys):
    bad = png_header_only(tmp_path / "bomb.png", 30_000, 30_000)  # 900 Mpx: over twice Pillow's limit
    assert_rejected(tiny_models["int8"], bad, good, capsys, "decompression bomb")


def test_decompression_bomb_over_the_limit(tiny_models, good, tmp_path, capsys):
    bad = png_header_only(tmp_path / "big.png", 10_000, 10_000)  # 100 Mpx: over the limit, under twice it
    assert_rejected(tiny_models["int8"], bad, good, capsys, "decompression bomb")


def test_missing_path(tiny_models, good, tmp_path, capsys):
    assert_rejected(tiny_models["int8"], tmp_path / "no" / "such.jpg", good, capsys, "no such file or directory")


def test_directory_without_images(tiny_models, good, tmp_path, capsys):
    empty = tmp_path / "empty_dir"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no photos here")
    assert_rejected(tiny_models["int8"], empty, good, capsys, "no images in this directory")


# -- unusual but valid images: classified -------------------------------------------


def test_png_named_jpg_is_classified(tiny_models, good, tmp_path, capsys):
    path = tmp_path / "really_a_png.jpg"
    draw_photo(RED, seed=4).save(path, format="PNG")
    record = assert_classified(tiny_models["float32"], path, good, capsys)
    twin = tmp_path / "twin.png"
    draw_photo(RED, seed=4).save(twin)
    _, _, _, records = batch(tiny_models["float32"], twin, good, capsys)
    assert record["score"] == pytest.approx(records[str(twin)]["score"], abs=1e-6)


@pytest.mark.parametrize(
    "kind",
    ["cmyk_jpeg", "png16", "grayscale", "palette", "palette_transparent", "rgba"],
)
def test_unusual_modes_are_classified(tiny_models, good, tmp_path, capsys, kind):
    spec = tiny_models["spec"]
    rgb = two_colour()
    if kind == "cmyk_jpeg":
        path = tmp_path / "cmyk.jpg"
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
        assert Image.open(path).mode == "CMYK"
        want = rgb
    elif kind == "png16":
        path = tmp_path / "deep.png"
        ramp = (np.arange(64 * 48).reshape(48, 64) % 256).astype(np.uint16)
        Image.fromarray(ramp * 257).save(path)  # 16-bit greyscale: 0..65535
        assert Image.open(path).mode.startswith("I")
        want = np.repeat(ramp.astype(np.uint8)[..., None], 3, axis=2)
    elif kind == "grayscale":
        path = tmp_path / "grey.png"
        grey = Image.fromarray(rgb).convert("L")
        grey.save(path)
        want = np.repeat(np.asarray(grey)[..., None], 3, axis=2)
    elif kind == "palette":
        path = tmp_path / "palette.gif"
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
        want = rgb
    elif kind == "palette_transparent":
        path = tmp_path / "palette_t.png"
        image = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        image.info["transparency"] = int(np.asarray(image)[0, -1])  # the blue half is transparent
        image.save(path, transparency=image.info["transparency"])
        want = rgb.copy()
        want[:, 32:] = 255  # composited on white
    else:
        path = tmp_path / "rgba.png"
        rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        rgba[:, 32:, 3] = 0  # the right half fully transparent
        Image.fromarray(rgba, "RGBA").save(path)
        want = rgb.copy()
        want[:, 32:] = 255
    record = assert_classified(tiny_models["int8"], path, good, capsys)
    assert record["label"] in spec.labels
    # What the model saw: the expected RGB content, resized like any photo.
    seen = preprocess(path, spec).array.astype(int)
    expected = np.asarray(Image.fromarray(want).resize(spec.size, Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(seen - expected).mean() < 4.0, kind


def test_exif_rotated_photo_is_classified_upright(tiny_models, good, tmp_path, capsys):
    """Stored sideways with EXIF orientation 6 ("rotate 90° clockwise to view"): classified as the upright photo."""
    spec = tiny_models["spec"]
    upright = Image.fromarray(two_colour())  # 64x48 landscape: red left, blue right
    upright_path = tmp_path / "upright.jpg"
    upright.save(upright_path, quality=95)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # 48x64 as stored by a phone held upright
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated_path = tmp_path / "rotated.jpg"
    sideways.save(rotated_path, quality=95, exif=exif)
    raw_path = tmp_path / "sideways_no_exif.jpg"
    sideways.save(raw_path, quality=95)

    pixels = preprocess(rotated_path, spec)
    assert pixels.original_size == (64, 48)  # landscape again
    upright_pixels = preprocess(upright_path, spec).array.astype(int)
    assert np.abs(pixels.array.astype(int) - upright_pixels).mean() < 2.0
    assert np.abs(preprocess(raw_path, spec).array.astype(int) - upright_pixels).mean() > 40.0
    assert tuple(int(v) for v in pixels.array[16, 2]) == pytest.approx(RED, abs=6)  # red on the left, as photographed

    model = tiny_models["float32"]
    rotated = assert_classified(model, rotated_path, good, capsys)
    _, _, _, records = batch(model, upright_path, good, capsys, "--top-k", "3")
    straight = {item["label"]: item["score"] for item in records[str(upright_path)]["top_k"]}
    for item in rotated["top_k"]:
        assert item["score"] == pytest.approx(straight[item["label"]], abs=0.01)


# -- model errors: exit 2, nothing classified -------------------------------------------------


def assert_model_refused(model, good, capsys, reason):
    code, out, err = run([good[0], "--model", model], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"edge_runner: error: {model}"), err
    assert reason in err and len(err.splitlines()) == 1, err


def test_file_that_is_not_a_tflite_model(good, tmp_path, capsys):
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert_model_refused(fake, good, capsys, "not a TFLite model")


def test_missing_model(good, tmp_path, capsys):
    assert_model_refused(tmp_path / "nope.tflite", good, capsys, "model file not found")


def test_corrupt_tflite_model(tiny_models, good, tmp_path, capsys):
    content = tiny_models["int8"].read_bytes()
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(content[: len(content) // 3])
    InputSpec.load(contract_path_for(tiny_models["int8"])).save(contract_path_for(broken))
    assert_model_refused(broken, good, capsys, "interpreter cannot load it")


def test_model_without_contract(tiny_models, good, tmp_path, capsys):
    lone = tmp_path / "lone.tflite"
    lone.write_bytes(tiny_models["int8"].read_bytes())
    assert_model_refused(lone, good, capsys, "no input contract")


@pytest.mark.parametrize(
    "contract, reason",
    [
        ({"labels": ("cat", "dog")}, "the contract lists 2 labels, but the model's output tensor is 1x3"),
        ({"labels": ("a", "b", "c"), "height": 64, "width": 64}, "input 1x64x64x3, but the model's input tensor is 1x32x32x3"),
    ],
)
def test_contract_that_disagrees_with_the_model(tiny_models, good, tmp_path, capsys, contract, reason):
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_models["int8"].read_bytes())
    InputSpec(**{"height": 32, "width": 32, **contract}).save(contract_path_for(model))
    assert_model_refused(model, good, capsys, reason)


def test_malformed_contract(tiny_models, good, tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_models["int8"].read_bytes())
    contract_path_for(model).write_text('{"labels": ["a", "b", "c"], "resize": "area"}')
    code, out, err = run([good[0], "--model", model], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"edge_runner: error: {contract_path_for(model)}: `resize` must be one of")


def test_all_bad_inputs_in_one_real_run(tiny_models, good, tmp_path):
    """The real process: stderr holds exactly one `edge_runner: error:` line per bad input, nothing else
    (no traceback, no Pillow warning, no runtime INFO chatter), and every good photo is classified."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    bad = []
    (tmp_path / "empty.jpg").write_bytes(b"")
    bad.append(tmp_path / "empty.jpg")
    (tmp_path / "text.jpg").write_text("hello")
    bad.append(tmp_path / "text.jpg")
    whole = tmp_path / "whole.jpg"
    draw_photo(RED, size=(320, 240)).save(whole)
    (tmp_path / "cut.jpg").write_bytes(whole.read_bytes()[:900])
    bad.append(tmp_path / "cut.jpg")
    bad.append(png_header_only(tmp_path / "bomb.png", 10_000, 10_000))
    bad.append(png_header_only(tmp_path / "bigger_bomb.png", 30_000, 30_000))
    bad.append(tmp_path / "missing.jpg")
    (tmp_path / "no_images").mkdir()
    bad.append(tmp_path / "no_images")
    argv = [good[0], *bad, whole, good[1]]
    completed = subprocess.run(
        [sys.executable, "-m", "edge_runner", *map(str, argv), "--model", str(tiny_models["int8"])],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
    )
    assert completed.returncode == 1
    assert [line.split("  ")[0] for line in completed.stdout.splitlines()] == [str(good[0]), str(whole), str(good[1])]
    errors = completed.stderr.splitlines()
    assert len(errors) == len(bad), completed.stderr
    assert all(line.startswith("edge_runner: error: ") for line in errors), completed.stderr
    assert sorted(line.split(": ")[2] for line in errors) == sorted(str(p) for p in bad)
