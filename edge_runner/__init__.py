"""edgekit's on-device runner: numpy + Pillow + a TFLite runtime, never TensorFlow."""

from .core.image import ImageError, Pixels, preprocess
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
    "read_contract",
]
# The kit's one version source: pyproject.toml ([tool.setuptools.dynamic]), train, convert and edgekit read it.
__version__ = "0.1.0"
