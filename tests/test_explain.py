"""Explanations: occlusion maps on the device, Grad-CAM in train, and the deletion check that they are faithful.

Core tests use a tiny model trained on generated photos with one small coloured
shape on noise (it has to look *there* to answer); slow tests use the real
validation photos, the shipped int8 model and a Keras model trained by the kit.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, build_tiny_keras, convert_tiny, draw_photo
from PIL import Image

from edge_runner.deletion import deletion_check, summarize, top_mask, top_region_iou
from edge_runner.heatmap import overlay
from edge_runner.image import find_images, preprocess
from edge_runner.model import Classifier
from edge_runner.occlusion import Occluder, OcclusionError, patch_boxes
from edge_runner.spec import InputSpec, contract_path_for

SIZE = 32
PATCH = 16  # the drawn shape is 8–12 px of 32: ~10% of the photo
# "none" (noise only) makes every colour class find its shape: with colours alone, one class
# is learnt as "neither of the others" and its evidence is everywhere (a faithful map shows that).
LABELS = ("red", "green", "blue", "none")
SHAPES = LABELS[:3]
# The check must hold on most photos and clearly: a map no better than chance gives ~50% and equal drops.
MIN_SHARE = 0.7
MIN_RATIO = 1.5


def draw_localized(colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A 32x32 noise photo with one small shape (a 16x16 ``draw_photo``) somewhere in it."""
    rng = np.random.default_rng(seed + 7_000)
    canvas = Image.fromarray(rng.integers(0, 90, size=(SIZE, SIZE, 3), dtype=np.uint8), mode="RGB")
    x, y = (int(v) for v in rng.integers(0, SIZE - PATCH, size=2))
    canvas.paste(draw_photo(colour, size=(PATCH, PATCH), seed=seed), (x, y))
    return canvas


def photos(count_per_class: int, seed: int, classes: tuple[str, ...] = LABELS) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in classes:
        k = LABELS.index(name)
        for i in range(count_per_class):
            if name == "none":
                rng = np.random.default_rng(seed * 10_000 + k * 1_000 + i)
                images.append(rng.integers(0, 90, size=(SIZE, SIZE, 3), dtype=np.uint8))
            else:
                images.append(np.asarray(draw_localized(CLASS_COLOURS[name], seed * 10_000 + k * 1_000 + i)))
            labels.append(k)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Keras model trained a few epochs on localized shapes, its int8 TFLite file and a run directory."""
    pytest.importorskip("tensorflow", reason="the tiny model is trained with TensorFlow (pip install .[train])")
    import keras

    x, y = photos(80, seed=1)
    model = build_tiny_keras(len(LABELS), SIZE, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype("float32"), y, epochs=20, batch_size=16, verbose=0, shuffle=True)
    test_x, test_y = photos(8, seed=2, classes=SHAPES)  # the photos to explain: each has a shape
    accuracy = float((model.predict(test_x.astype("float32"), verbose=0).argmax(1) == test_y).mean())
    assert accuracy >= 0.9, f"the tiny model did not learn the shapes (accuracy {accuracy:.2f})"
    root = tmp_path_factory.mktemp("explain")
    spec = InputSpec(labels=LABELS, height=SIZE, width=SIZE, name="tiny")
    tflite = root / "tiny_int8.tflite"
    tflite.write_bytes(convert_tiny(model, "int8", SIZE))
    spec.save(contract_path_for(tflite))
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    spec.save(run / "contract.json")
    return {"keras": model, "tflite": tflite, "spec": spec, "run": run, "x": test_x, "y": test_y, "root": root}


# -- geometry and drawing ------------------------------------------------------


def test_patch_boxes_cover_the_grid_and_are_clipped():
    boxes = patch_boxes(224, 224, 7)
    assert len(boxes) == 49
    assert boxes[0] == (0, 0, 48, 48)  # centred on (16, 16), 64 px wide, clipped at the corner
    assert boxes[24] == (80, 80, 144, 144)  # the middle cell: the full 64 px patch
    assert all(0 <= t < b <= 224 and 0 <= l < r <= 224 for t, l, b, r in boxes)
    with pytest.raises(OcclusionError, match="grid must be an integer from 2 to 32, received 1"):
        patch_boxes(224, 224, 1)


def test_overlay_puts_heat_where_the_map_is_high():
    photo = np.full((60, 90, 3), 100, dtype=np.uint8)
    grid = np.zeros((3, 3), dtype=np.float32)
    grid[0, 2] = 1.0  # top right
    drawn = np.asarray(overlay(photo, grid), dtype=np.int32)
    assert drawn.shape == (60, 90, 3)
    hot, cold = drawn[10, 75], drawn[50, 15]  # the centres of the top-right and bottom-left cells
    assert np.abs(cold - 100).max() <= 30  # unimportant parts keep the photo, a little darker
    assert hot[0] > cold[0] + 60 and hot[1] > cold[1] + 60  # the hot cell turns bright yellow


def test_top_mask_takes_exactly_the_fraction():
    grid = np.arange(49, dtype=np.float32).reshape(7, 7)
    mask = top_mask(grid, (224, 224), 0.2)
    assert mask.sum() == round(0.2 * 224 * 224)
    assert mask[-1, -1] and not mask[0, 0]
    assert top_region_iou(grid, grid, (224, 224)) == 1.0


# -- occlusion on the device ---------------------------------------------------


def test_occlusion_reads_logits_and_batches_the_same(trained):
    classifier = Classifier(trained["tflite"])
    pixels = trained["x"][0]
    single, batched = Occluder(classifier), Occluder(classifier, batch_size=8)
    assert single.measure == "logit_margin"  # the int8 model's SOFTMAX input is readable
    assert batched.batch_size == 8, batched.batch_error
    a, b = single.explain(pixels, grid=4), batched.explain(pixels, grid=4)
    assert a.grid.shape == (4, 4) and a.evaluations == 17
    np.testing.assert_allclose(a.grid, b.grid, atol=1e-6)
    assert a.label == LABELS[trained["y"][0]]
    assert json.loads(json.dumps(a.to_dict()))["rows"] == 4


def test_occlusion_peak_is_on_the_shape(trained):
    """The most harmful patch hides part of the drawn shape in most photos (the shape is ~6% of the image)."""
    classifier = Classifier(trained["tflite"])
    occluder = Occluder(classifier)
    hits = 0
    for pixels, label in zip(trained["x"], trained["y"]):
        result = occluder.explain(pixels, grid=8, patch_cells=1.5)
        top, left, bottom, right = patch_boxes(SIZE, SIZE, 8, 1.5)[int(np.argmax(result.grid))]
        cell = pixels[top:bottom, left:right].astype(int)  # what the most harmful patch hid
        colour = np.array(CLASS_COLOURS[LABELS[label]])
        hits += bool((np.abs(cell - colour).sum(axis=-1) < 60).any())
    assert hits >= 0.8 * len(trained["y"]), f"peak on the shape in only {hits} of {len(trained['y'])} photos"


def _deletion(scores, maps, images, seed=0):
    rng = np.random.default_rng(seed)
    return summarize([deletion_check(scores, p, m, rng=rng) for p, m in zip(images, maps)])


def test_deletion_occlusion_beats_random_and_an_inverted_map_loses(trained):
    occluder = Occluder(Classifier(trained["tflite"]))
    maps = [occluder.explain(p).grid for p in trained["x"]]
    faithful = _deletion(occluder.scores, maps, trained["x"])
    print(faithful.line("occlusion (generated)"))
    assert faithful.share >= MIN_SHARE, faithful.line("occlusion")
    assert faithful.mean_map_drop > MIN_RATIO * max(faithful.mean_random_drop, 1e-6), faithful.line("occlusion")
    # The check can fail: the same maps upside down point at the background.
    inverted = _deletion(occluder.scores, [-m for m in maps], trained["x"])
    assert inverted.share < MIN_SHARE and inverted.mean_map_drop < faithful.mean_map_drop, inverted.line("inverted")


def test_deletion_gradcam_beats_random(trained):
    from train.gradcam import GradCamExplainer

    explainer = GradCamExplainer(trained["keras"])
    maps = [explainer.explain(p).grid for p in trained["x"]]
    summary = _deletion(explainer.scores, maps, trained["x"])
    print(summary.line("Grad-CAM (generated)"))
    assert summary.share >= MIN_SHARE, summary.line("Grad-CAM")
    assert summary.mean_map_drop > MIN_RATIO * max(summary.mean_random_drop, 1e-6), summary.line("Grad-CAM")
