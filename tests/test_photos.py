"""The kit's one photo finder and one decoder, as train, convert and the runner use them (no TensorFlow needed).

A generated tree holds what real photo folders hold: hidden files and folders,
upper-case and odd suffixes, nested folders whose names sort around ``/``,
symbolic links (to a file, to a folder, broken), and unreadable "photos". The
expected file lists are written out by hand, so a change in which files count or
in their order fails here; the decoders must give byte-identical pixels.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import draw_photo
from convert.photos import Photo, decode, labelled_folder
from edge_runner.cli.batch import collect_inputs
from edge_runner.core.decoder import DecodedPhoto, decode_photo, decode_photos, map_in_order
from edge_runner.core.image import find_images, list_files, list_folders, preprocess
from edge_runner.core.spec import InputSpec
from train.data.folders import find_candidates
from train.data.pixels import decode_photos as train_decode_photos

SPEC = InputSpec(labels=("cats", "dogs"), height=48, width=48)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp/data/{cats,dogs}/`` with every oddity the finder must handle the same way for every caller."""
    cats, dogs = tmp_path / "data" / "cats", tmp_path / "data" / "dogs"
    for folder in (cats / "sub", cats / "sub-a", cats / "sub.b", cats / ".thumbs", dogs, tmp_path / "data" / ".git"):
        folder.mkdir(parents=True)
    for i in range(3):
        draw_photo((200, 40, 40), seed=i).save(cats / f"cat.{i}.jpg")
        draw_photo((40, 40, 200), seed=i).save(dogs / f"dog.{i}.jpg")
    draw_photo((1, 2, 3), size=(400, 300)).save(cats / "BIG.JPEG")  # upper-case suffix, large: draft decoding applies
    draw_photo((9, 9, 9)).save(cats / "p.png", "PNG")
    draw_photo((9, 9, 9)).save(cats / "png_named.jpg", "PNG")  # readable despite its name
    for folder in ("sub", "sub-a", "sub.b"):  # "sub-a" < "sub.b" < "sub/" as text
        draw_photo((5, 5, 5)).save(cats / folder / "n.jpg")
    draw_photo((5, 5, 5)).save(cats / ".hidden.jpg")
    draw_photo((5, 5, 5)).save(cats / "._resource_fork.jpg")
    draw_photo((5, 5, 5)).save(cats / ".thumbs" / "t.jpg")
    draw_photo((5, 5, 5)).save(tmp_path / "data" / ".git" / "z.jpg")
    (cats / "notes.txt").write_text("not a photo")
    (cats / "photo.jpg.txt").write_text("not a photo")
    (cats / "empty.jpg").write_bytes(b"")
    (cats / "corrupt.jpg").write_bytes((cats / "cat.0.jpg").read_bytes()[:300])
    os.symlink(cats / "cat.1.jpg", cats / "link.jpg")
    os.symlink(cats / "nowhere.jpg", cats / "broken.jpg")
    os.symlink(dogs, cats / "linked_folder")  # not followed: it would count the dogs as cats
    return tmp_path / "data"


CAT_IMAGES = [
    "BIG.JPEG", "broken.jpg", "cat.0.jpg", "cat.1.jpg", "cat.2.jpg", "corrupt.jpg", "empty.jpg", "link.jpg", "p.png",
    "png_named.jpg", "sub-a/n.jpg", "sub.b/n.jpg", "sub/n.jpg",
]
CAT_OTHERS = ["notes.txt", "photo.jpg.txt"]
UNREADABLE = {"broken.jpg": "no such file", "corrupt.jpg": "corrupt or truncated", "empty.jpg": "empty file (0 bytes)"}


def names(paths, root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in paths]


def test_one_finder_for_every_caller(tree):
    cats = tree / "cats"
    assert names(find_images(cats), cats) == CAT_IMAGES
    assert names(list_files(cats), cats) == sorted(CAT_IMAGES + CAT_OTHERS)
    assert names(find_images(cats, recursive=False), cats) == [n for n in CAT_IMAGES if "/" not in n]
    assert names(list_folders(tree), tree) == ["cats", "dogs"]

    # train: the same images, non-images skipped with a reason naming the file.
    candidates = find_candidates(tree)
    assert [(s.label, s.path) for s in candidates.train] == (
        [("cats", cats / n) for n in CAT_IMAGES] + [("dogs", tree / "dogs" / f"dog.{i}.jpg") for i in range(3)]
    )
    assert [s.reason for s in candidates.skipped] == [
        f"{cats / 'notes.txt'}: not an image file type (.txt)", f"{cats / 'photo.jpg.txt'}: not an image file type (.txt)"
    ]
    # convert: the same images per class folder, as the same type (edge_runner.core.photo.Photo).
    photos = labelled_folder(tree, ("cats", "dogs"))
    assert [replace(p, source="data") for p in photos] == candidates.train  # train names the source
    # the runner: a directory argument gives the same files.
    assert collect_inputs([str(cats)]).paths == [str(cats / n) for n in CAT_IMAGES]


def test_one_decoder_gives_train_convert_and_runner_the_same_pixels(tree, tmp_path):
    cats = tree / "cats"
    paths = [str(cats / n) for n in CAT_IMAGES]
    expected = {p: preprocess(p, SPEC).array for p in paths if Path(p).name not in UNREADABLE}

    trained = train_decode_photos(paths, SPEC, cache_dir=tmp_path / "cache", workers=2, progress=False)
    warned: list[str] = []
    converted = decode([Photo(Path(p), "cats") for p in paths], SPEC, warn=warned.append)
    runner = list(decode_photos(paths, SPEC, workers=2))

    assert [str(p.path) for p in converted.photos] == list(expected)
    for row, path in enumerate(paths):
        if path in expected:
            assert np.array_equal(trained.array[row], expected[path])
            assert runner[row].ok and np.array_equal(runner[row].pixels, expected[path])
        else:
            assert not trained.array[row].any()  # an unreadable photo's row stays black
    assert all(np.array_equal(a, expected[str(p.path)]) for a, p in zip(converted.pixels, converted.photos))
    assert converted.pixels.dtype == np.uint8 and converted.pixels.shape == (len(expected), 48, 48, 3)

    # One corrupt photo never stops the batch; each skip message names the file and the reason, the same for all.
    errors = {Path(p).name: e for p, e in trained.errors.items()}
    assert errors.keys() == UNREADABLE.keys()
    for name, reason in UNREADABLE.items():
        assert errors[name].startswith(f"{cats / name}: ") and reason in errors[name]
    assert [r.error for r in runner if not r.ok] == list(trained.errors.values()) == list(converted.skipped)
    assert warned == [f"{error} (skipped)" for error in converted.skipped]

    # A second training pass reads the pixel cache, which holds the same bytes.
    again = train_decode_photos(paths, SPEC, cache_dir=tmp_path / "cache", progress=False)
    assert again.from_cache and again.errors == trained.errors and np.array_equal(again.array, trained.array)


def test_decode_photo_never_raises_for_a_bad_photo(tmp_path):
    (tmp_path / "x.jpg").write_text("<html>")
    bad = decode_photo(tmp_path / "x.jpg", SPEC)
    assert bad == DecodedPhoto(str(tmp_path / "x.jpg"), error=f"{tmp_path / 'x.jpg'}: not an image (no decoder recognises its content)")
    assert not bad.ok and bad.pixels is None
    draw_photo((1, 2, 3)).save(tmp_path / "y.png")
    good = decode_photo((tmp_path / "y.png").read_bytes(), SPEC)
    assert good.ok and good.source == "<bytes>" and good.pixels.shape == (48, 48, 3)


def test_map_in_order_keeps_order_bounds_work_in_flight_and_cancels_on_close():
    running, most = [0], [0]
    lock = threading.Lock()
    started: list[int] = []

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            started.append(item)
        time.sleep(0.002 * (item % 3))  # later items often finish first
        with lock:
            running[0] -= 1
        return item * item

    assert list(map_in_order(work, list(range(40)), workers=3)) == [i * i for i in range(40)]
    assert most[0] <= 3
    assert list(map_in_order(work, [7], workers=3)) == [49] and list(map_in_order(work, [1, 2], workers=0)) == [1, 4]

    started.clear()
    results = map_in_order(work, list(range(1000)), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    results.close()  # the consumer stops: queued work is dropped, at most 2 * workers were ever submitted ahead
    assert len(started) <= 3 + 2 * 2
