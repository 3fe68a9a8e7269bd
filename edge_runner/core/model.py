"""A TFLite classifier and its input contract, checked against each other.

The contract is read from inside the ``.tflite`` (the associated files that the
converter packs as a zip archive at the end of the flatbuffer, as the TFLite
metadata tools do) or, failing that, from ``name.contract.json`` beside it.
A model without one, or whose contract contradicts the interpreter's tensors,
is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.console import EXIT_USAGE
from .image import ImageInput, to_input
from .quantization import dequantize_output, quantize_input
from .runtime import Runtime, RuntimeUnavailable, load_runtime
from .spec import CONTRACT_FILENAME, UNKNOWN_LABEL, ContractError, InputSpec, contract_path_for

TFLITE_IDENTIFIER = b"TFL3"
# ``InputSpec.extra`` key: the integer input tensor takes the pixels as its stored values (uint8 as they are,
# int8 minus 128), whatever its quantisation says. TFLite classifiers made outside the kit (the Coral/TF-Hub
# ImageNet models) encode their normalisation in that quantisation (uint8 ``q`` means ``(q - 127) / 127.5``),
# so raw pixels are what they expect; the kit's own models take pixels as real values (scale 1).
RAW_TENSOR_INPUT = "raw_tensor_input"


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the reason."""

    exit_status = EXIT_USAGE  # a missing or invalid model is a usage/model error everywhere (common.console.report_error)


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """One classification.

    Attributes:
        label: the top label, or ``"unknown"`` when its score is below the threshold.
        score: the top probability, 0–1.
        top_k: the ``k`` best ``LabelScore`` in descending order of score.
        latency_ms: time spent in the interpreter (quantise, invoke, dequantise).
        probabilities: float32 ``(num_classes,)``, in label order.
        detected: whether something of interest was seen: ``False`` when the label
            is the contract's background label or ``"unknown"``.
    """

    label: str
    score: float
    top_k: tuple[LabelScore, ...]
    latency_ms: float
    probabilities: np.ndarray = field(repr=False, compare=False)
    detected: bool = True

    def to_dict(self, source: str) -> dict:
        """The runner's ``--json`` object (and the web API's answer)."""
        return {
            "source": source,
            "label": self.label,
            "detected": self.detected,
            "score": round(float(self.score), 6),
            "top_k": [{"label": item.label, "score": round(float(item.score), 6)} for item in self.top_k],
            "latency_ms": round(self.latency_ms, 3),
        }


# What the runner says instead of a label when a model with a background class saw nothing of interest.
NOTHING_RECOGNISED = "nothing recognised"
NOT_CONFIDENT = "nothing recognised with enough confidence"


def nothing_message(label: str, spec) -> str | None:
    """The plain words for a "nothing here" answer, or ``None`` when ``label`` is a detection.

    Only models whose contract names a background label (``spec.background_label``) get
    words: :data:`NOTHING_RECOGNISED` for the background label, :data:`NOT_CONFIDENT` for
    ``"unknown"`` (the best score was below the threshold). A model without a
    background label returns ``None`` for every label, so its output is unchanged.
    """
    if spec.background_label is None or spec.is_detection(label):
        return None
    return NOTHING_RECOGNISED if label == spec.background_label else NOT_CONFIDENT


def threshold_in_force(spec: InputSpec, threshold: float | None = None, *, floor: float = 0.0) -> tuple[float, str]:
    """The score (0–1) a top answer needs, and where that number came from (for ``--verbose``).

    The kit's one rule: ``threshold`` (a command line's ``--threshold``) wins; else the
    contract's recommended threshold, raised to ``floor`` when lower; else ``floor``. The
    runner answers ``"unknown"`` below it (``floor`` 0); the watcher counts a frame for a
    visit only at or above it (``floor`` is its stricter per-frame default).
    """
    if threshold is not None:
        return threshold, "--threshold"
    if spec.threshold is not None and spec.threshold >= floor:
        return spec.threshold, "the model's contract (its recommended threshold)"
    if floor > 0:
        return floor, f"default: {floor:g}, stricter than the model's contract"
    return 0.0, "default: neither --threshold nor the model's contract sets one"


def read_packed_files(model_bytes: bytes) -> dict[str, bytes]:
    """The associated files packed at the end of a ``.tflite`` (empty if there are none)."""
    if b"PK\x05\x06" not in model_bytes[-65_600:]:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}


def read_contract(model_path: str | os.PathLike[str], model_bytes: bytes | None = None) -> InputSpec:
    """The contract embedded in a model, else its sidecar ``name.contract.json``.

    Raises ``ContractError`` naming the model when neither exists or one is malformed.
    """
    model_path = Path(model_path)
    if model_bytes is None:
        model_bytes = model_path.read_bytes()
    packed = read_packed_files(model_bytes)
    if CONTRACT_FILENAME in packed:
        return InputSpec.from_json(packed[CONTRACT_FILENAME], f"{model_path} (embedded {CONTRACT_FILENAME})")
    sidecar = contract_path_for(model_path)
    if sidecar.is_file():
        return InputSpec.load(sidecar)
    raise ContractError(
        f"{model_path}: no input contract: none is embedded in the model and {sidecar.name} is not beside it "
        "(export the model with `python -m convert export`, which embeds one)"
    )


class Classifier:
    """A TFLite image classifier: pixels in, a ``Prediction`` out.

    One instance owns one interpreter, which is not thread-safe: calls to
    :meth:`classify` are serialised by a lock. Create one per thread for
    parallel inference.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        num_threads: int | None = None,
        runtime: Runtime | None = None,
        spec: InputSpec | None = None,
    ) -> None:
        self.path = Path(model_path)
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{self.path}: model file not found") from None
        except IsADirectoryError:
            raise ModelError(f"{self.path}: is a directory, not a .tflite model") from None
        except OSError as exc:
            raise ModelError(f"{self.path}: cannot read model ({exc.strerror})") from None
        if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
            raise ModelError(f"{self.path}: not a TFLite model (missing the 'TFL3' flatbuffer identifier)")
        self.size_bytes = len(content)
        #: hex SHA-256 of the file's bytes: names the model in logs, review records and deployments.
        self.sha256 = hashlib.sha256(content).hexdigest()
        self.spec = spec if spec is not None else read_contract(self.path, content)
        self.runtime = runtime if runtime is not None else load_runtime()
        self.num_threads = num_threads
        try:
            self._interpreter = self.runtime.make_interpreter(content, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except RuntimeUnavailable:
            raise
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: the {self.runtime.name} interpreter cannot load it ({exc})") from None
        self._lock = threading.Lock()
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected 1 input and 1 output tensor, found {len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0], outputs[0]
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_dtype = np.dtype(self._output["dtype"])
        self.input_scale, self.input_zero_point = (float(v) for v in self._input["quantization"])
        self.output_scale, self.output_zero_point = (float(v) for v in self._output["quantization"])
        # How pixels become the input tensor: the tensor's own quantisation, or stored as they are (RAW_TENSOR_INPUT).
        self._pixel_quantization = (self.input_scale, int(self.input_zero_point))
        if self.spec.extra.get(RAW_TENSOR_INPUT) and self.input_dtype.kind in "iu":
            self._pixel_quantization = (1.0, -128 if self.input_dtype == np.int8 else 0)
        self._check_contract()

    def _check_contract(self) -> None:
        spec = self.spec
        in_shape = tuple(int(d) for d in self._input["shape"])
        out_shape = tuple(int(d) for d in self._output["shape"])
        if in_shape != (1, spec.height, spec.width, 3):
            raise ContractError(
                f"{self.path}: the contract says input 1x{spec.height}x{spec.width}x3, "
                f"but the model's input tensor is {'x'.join(map(str, in_shape))}"
            )
        if out_shape[-1:] != (spec.num_classes,) or int(np.prod(out_shape)) != spec.num_classes:
            raise ContractError(
                f"{self.path}: the contract lists {spec.num_classes} labels, "
                f"but the model's output tensor is {'x'.join(map(str, out_shape))}"
            )
        if self.input_dtype.kind not in "fiu" or (self.input_dtype.kind in "iu" and self.input_scale == 0.0):
            raise ContractError(f"{self.path}: unsupported input tensor type {self.input_dtype} (scale {self.input_scale})")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def variant(self) -> str:
        """``float32``, ``float16``/``dynamic`` (float I/O) or ``int8``/``uint8`` (integer I/O)."""
        exported = self.spec.extra.get("variant")
        if exported:
            return str(exported)
        return "float" if self.input_dtype.kind == "f" else self.input_dtype.name

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Run the model on one preprocessed image.

        Args:
            pixels: ``uint8`` ``(height, width, 3)`` RGB from :func:`edge_runner.core.image.preprocess`.

        Returns:
            float32 ``(num_classes,)`` probabilities in label order.
        """
        if pixels.shape != (self.spec.height, self.spec.width, 3):
            raise ValueError(
                f"pixels must have shape {(self.spec.height, self.spec.width, 3)}, received {pixels.shape}"
            )
        tensor = quantize_input(pixels[np.newaxis], self.input_dtype, *self._pixel_quantization)
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"])
        return dequantize_output(raw.reshape(-1), self.output_scale, int(self.output_zero_point))

    def classify(self, pixels: np.ndarray, *, top_k: int = 3, threshold: float | None = None) -> Prediction:
        """Classify one preprocessed image (see :meth:`probabilities`).

        ``threshold`` (0–1): when the best score is below it, the label is ``"unknown"``;
        ``None`` takes the contract's recommended threshold (0 when it has none).
        """
        threshold = threshold_in_force(self.spec, threshold)[0]
        start = time.perf_counter()
        probs = self.probabilities(pixels)
        latency_ms = (time.perf_counter() - start) * 1000.0
        k = max(1, min(top_k, len(probs)))
        order = np.argsort(-probs, kind="stable")[:k]
        best = order[0]
        score = float(probs[best])
        label = self.labels[best] if score >= threshold else UNKNOWN_LABEL
        top = tuple(LabelScore(self.labels[i], float(probs[i])) for i in order)
        return Prediction(label, score, top, latency_ms, probs, detected=self.spec.is_detection(label))

    def classify_image(
        self, source: ImageInput, *, top_k: int = 3, threshold: float | None = None, draft: bool = True,
    ) -> Prediction:
        """Preprocess and classify one image in a single call.

        Args:
            source: a photo's path (``str`` or ``os.PathLike``), its encoded bytes or a binary
                stream (decoded, EXIF-oriented, converted to RGB); a Pillow image (any mode,
                converted to RGB, used as it is oriented); or a camera frame: a ``numpy``
                ``uint8`` array of shape ``(H, W, 3)``, RGB channel order, values 0–255.
            top_k: how many labels :attr:`Prediction.top_k` keeps.
            threshold: 0–1, below which the label is ``"unknown"``; ``None``: the contract's.
            draft: let a JPEG much larger than the input decode at reduced size (paths and bytes).

        Returns:
            The :class:`Prediction`; its ``scores`` are float32 ``(num_classes,)`` probabilities.

        Raises:
            ImageError: the source cannot be decoded, or an array is not ``uint8`` ``(H, W, 3)``.
        """
        return self.classify(to_input(source, self.spec, draft=draft), top_k=top_k, threshold=threshold)
