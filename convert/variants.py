"""One variant file: convert, embed metadata + contract + labels, verify, write atomically, and gate it.

``convert.export`` calls these for each requested variant; ``convert.int8.remedy`` for each fix
it tries, so every candidate goes through the same writing and the same gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runner.core.model import ModelError, read_contract
from edge_runner.core.runtime import load_runtime
from edge_runner.common.files import write_atomic
from edge_runner.core.spec import CONTRACT_FILENAME, LABELS_FILENAME, ContractError, InputSpec, contract_path_for

from .errors import ConversionFailed
from .gate.accuracy import (Scores, Thresholds, evaluate, predict_tflite)
from .tflite.flatbuffer import PACKING_VERSION
from .tflite.metadata import ModelInfo, classifier_metadata, embed
from .photos import Calibration
from .quantize import CALIBRATED, GraphCheck, check_graph, convert, require_valid
from . import __version__
from .results import ExportOptions, VariantResult
from .source import TrainingOutput

def conversion_key(source: TrainingOutput, variant: str, options: ExportOptions, candidates: list[Path]) -> str:
    """A digest of everything that determines a variant's bytes (reuse only on an exact match)."""
    parts: dict[str, Any] = {
        "edgekit_convert": __version__,
        "packing": PACKING_VERSION,
        "model_sha256": source.model_sha256,
        "variant": variant,
        "spec": source.spec.to_dict(),
        "info": dataclasses.asdict(options.info),
    }
    if variant == "int8":  # the first depthwise convolution is kept in float (quantize.float_stem)
        parts["float_stem"] = "first DEPTHWISE_CONV_2D and its readers"
    if variant in CALIBRATED:
        parts["calibration"] = {
            "size": options.calibration_size,
            "seed": options.seed,
            "photos": hashlib.sha256("\n".join(sorted(map(str, candidates))).encode()).hexdigest(),
        }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def existing_key(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return str(read_contract(path).extra.get("conversion_key") or "") or None
    except (ContractError, ModelError, OSError):
        return None


def _variant_spec(source: TrainingOutput, variant: str, key: str, graph: GraphCheck,
                  calibration: Calibration | None) -> InputSpec:
    import tensorflow as tf

    extra: dict[str, Any] = {
        **source.spec.extra,
        "variant": variant,
        "conversion_key": key,
        "source_model_sha256": source.model_sha256,
        "input": dataclasses.asdict(graph.input),
        "output": dataclasses.asdict(graph.output),
        "converter": f"edgekit-convert {__version__}, tensorflow {tf.__version__}",
    }
    if calibration is not None and variant in CALIBRATED:
        extra["calibration"] = {"photos": len(calibration.paths), "pinned_range": calibration.pinned_range}
    return dataclasses.replace(source.spec, extra=extra)


def _tensor_quantization(interpreter: Any) -> list[tuple[str, list[float], list[int], int]]:
    """Every tensor's name and quantisation as the interpreter built it (scales, zero-points, axis)."""
    return [(d["name"], d["quantization_parameters"]["scales"].tolist(),
             d["quantization_parameters"]["zero_points"].tolist(), d["quantization_parameters"]["quantized_dimension"])
            for d in interpreter.get_tensor_details()]


def _verify_embedding(bare: bytes, final: bytes, spec: InputSpec) -> None:
    """The packed model with metadata must be the converter's model: same tensor quantisation, same outputs bit for bit."""
    runtime = load_runtime()
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(2, spec.height, spec.width, 3)).astype(np.uint8)
    outputs, quantizations = [], []
    for content in (bare, final):
        interpreter = runtime.make_interpreter(content, num_threads=1)
        interpreter.allocate_tensors()
        quantizations.append(_tensor_quantization(interpreter))
        detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        results = []
        for pixels in batch:
            interpreter.set_tensor(detail["index"], pixels[np.newaxis].astype(detail["dtype"]))
            interpreter.invoke()
            results.append(interpreter.get_tensor(out["index"]).copy())
        outputs.append(np.stack(results))
    if quantizations[0] != quantizations[1]:
        raise ConversionFailed("packing the model changed a tensor's quantisation parameters")
    if not np.array_equal(outputs[0], outputs[1]):
        raise ConversionFailed("embedding the metadata changed the model's outputs")


def write_variant(model: Any, source: TrainingOutput, variant: str, key: str, calibration: Calibration | None,
                   info: ModelInfo, path: Path) -> GraphCheck:
    """Convert, check, embed metadata + labels + contract, verify, and write ``path`` and its sidecar.

    Raises ``ConversionFailed`` (nothing written) when the graph breaks the variant's invariants.
    """
    bare = convert(model, variant, calibration.pixels if variant in CALIBRATED and calibration else None)
    return write_model(bare, source, variant, key, calibration, info, path)


def write_model(bare: bytes, source: TrainingOutput, variant: str, key: str, calibration: Calibration | None,
                info: ModelInfo, path: Path, *, check_as: str | None = None) -> GraphCheck:
    """Check converted ``bare`` bytes (as ``check_as``, default ``variant``), embed metadata, verify, write atomically."""
    graph = check_graph(bare, check_as or variant)
    require_valid(graph, variant)
    spec = _variant_spec(source, variant, key, graph, calibration)
    metadata = classifier_metadata(spec, variant, float_input=graph.input.dtype.startswith("float"), info=info)
    content = embed(bare, metadata, {
        LABELS_FILENAME: spec.labels_text().encode("utf-8"),
        CONTRACT_FILENAME: spec.to_json().encode("utf-8"),
    })
    _verify_embedding(bare, content, spec)
    write_atomic(path, content)
    spec.save(contract_path_for(path))
    return graph


@dataclass(frozen=True)
class GateContext:
    """What every candidate is gated against: the decoded photos and the float model's answers."""

    decoded: Any
    labels: tuple[str, ...]
    reference_probs: np.ndarray
    truth: np.ndarray
    reference: Scores
    thresholds: Thresholds
    seed: int


def gate_file(result: VariantResult, context: GateContext, *, progress: bool = False) -> None:
    """Run ``result.path`` through the runner's ``Classifier`` on the evaluation photos and fill in the gate's fields."""
    decoded = context.decoded
    probs = predict_tflite(result.path, decoded.pixels, progress=f"gate {result.variant}" if progress else None)
    gated = evaluate(result.variant, probs, context.reference_probs, context.truth, context.labels,
                     context.reference, context.thresholds, context.seed)
    result.scores, result.comparison, result.verdict = gated.scores, gated.comparison, gated.verdict
    result.paired, result.confident, result.class_changes, result.summary = (
        gated.paired, gated.confident, gated.class_changes, gated.summary)
    result.disagreements = tuple(str(decoded.photos[i].path) for i in gated.comparison.disagreements)
    result.status = "accepted" if gated.verdict.accepted else "rejected"

