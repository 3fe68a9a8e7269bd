"""edgekit's on-device runner: numpy + Pillow + a TFLite runtime, never TensorFlow.

The library in three names: ``Classifier(path).classify_image(photo_or_frame)``,
``preprocess(photo, spec)`` (an encoded photo) and ``preprocess_array(frame, spec)`` (a camera
frame: ``uint8`` ``(H, W, 3)`` RGB); the sub-packages are listed in ``edge_runner/README.md``.
"""

from .core.image import ImageError, Pixels, preprocess, preprocess_array
from .core.model import Classifier, LabelScore, ModelError, Prediction, read_contract
from .core.runtime import RuntimeUnavailable, load_runtime
from .core.spec import ContractError, InputSpec

__all__ = [
    "Classifier",
    "ContractError",
    "ImageError",
    "InputSpec",
    "LabelScore",
    "ModelError",
    "Pixels",
    "Prediction",
    "RuntimeUnavailable",
    "load_runtime",
    "preprocess",
    "preprocess_array",
    "read_contract",
]
# The kit's one version source: pyproject.toml ([tool.setuptools.dynamic]), train, convert and edgekit read it.
__version__ = "0.1.0"
