"""The runner as a library: ``Classifier.classify_image`` takes a photo in any form, ``preprocess_array`` a frame.

Every form of the same picture gives the same answer as the two-step path
(``preprocess`` then ``classify``), and what cannot be a picture is an ``ImageError``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import REPO, draw_photo
from PIL import Image

import edge_runner
from edge_runner import Classifier, ImageError, preprocess, preprocess_array

SHIPPED = REPO / "models" / "cats_dogs_int8.tflite"


@pytest.fixture(scope="module")
def model() -> Classifier:
    return Classifier(SHIPPED)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "door.png"
    draw_photo((200, 120, 60), size=(300, 200), seed=3).save(path)
    return path


def test_every_form_of_a_picture_gives_the_answer_of_preprocess_then_classify(model, photo):
    reference = model.classify(preprocess(photo, model.spec).array)
    image = Image.open(photo)
    forms = {
        "path": photo,
        "str": str(photo),
        "bytes": photo.read_bytes(),
        "stream": io.BytesIO(photo.read_bytes()),
        "PIL RGB": image.convert("RGB"),
        "PIL RGBA": image.convert("RGBA"),
        "camera frame": np.asarray(image.convert("RGB")),
    }
    for name, source in forms.items():
        answer = model.classify_image(source)
        np.testing.assert_array_equal(answer.probabilities, reference.probabilities, err_msg=name)
        assert (answer.label, answer.detected) == (reference.label, reference.detected), name


def test_classify_image_passes_top_k_and_threshold(model, photo):
    answer = model.classify_image(photo, top_k=1, threshold=1.0)
    assert len(answer.top_k) == 1
    assert answer.label == "unknown" or answer.score == 1.0


def test_preprocess_array_fits_a_frame_to_the_model_input(model):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :320] = 255
    pixels = preprocess_array(frame, model.spec)
    assert pixels.dtype == np.uint8 and pixels.shape == (model.spec.height, model.spec.width, 3)
    assert pixels[:, 0].min() == 255 and pixels[:, -1].max() == 0  # left stays left: no channel or axis swap


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)])
def test_what_is_not_an_rgb_frame_is_an_image_error(model, bad):
    with pytest.raises(ImageError, match=r"expected a uint8 array of shape \(H, W, 3\)"):
        model.classify_image(bad)


def test_an_unreadable_photo_is_an_image_error_naming_it(model, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        model.classify_image(broken)


def test_the_public_names_and_their_docstrings_state_shapes_dtypes_and_ranges():
    assert {"Classifier", "preprocess", "preprocess_array"} <= set(edge_runner.__all__)
    for documented in (Classifier.classify_image, preprocess_array, preprocess):
        doc = documented.__doc__.replace("``", "")
        assert "uint8" in doc and "0–255" in doc, documented
        assert "(H, W, 3)" in doc or "(spec.height, spec.width, 3)" in doc, documented
