"""``convert export``: a training run → gated ``.tflite`` variants with metadata, and a report.

Order of work, so bad input fails before anything is written: read and check the
training output, the variant list, the evaluation photos and the calibration set;
load the Keras model; decode the evaluation photos; then per variant convert,
check the graph, embed metadata + contract + labels, verify the embedded model
computes exactly what the bare one does, write it atomically, and gate it through
the runner's ``Classifier``. A variant whose file already exists from an identical
earlier conversion (same source model, variant, calibration and metadata: the
``conversion_key`` in its embedded contract) is reused, so an interrupted export
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge_runner.image import find_images
from edge_runner.model import ModelError, read_contract
from edge_runner.native_log import LITERT_NOISE, filtered_stderr
from edge_runner.runtime import load_runtime
from edge_runner.spec import (CONTRACT_FILENAME, LABELS_FILENAME, ContractError, InputSpec, contract_path_for,
                              write_atomic)

from .errors import ConversionFailed, ConvertError
from .gate import (Comparison, DraftStudy, Scores, Thresholds, Verdict, evaluate, p_text, predict_keras, predict_tflite,
                   score, study_draft, truth_indices)
from .significance import ClassChange, ConfidentAgreement, PairedTest
from .flatbuffer import PACKING_VERSION
from .metadata import ModelInfo, classifier_metadata, embed
from .photos import (Calibration, Photo, Warn, check_calibration_size, decode, labelled_folder,
                     sample_calibration, split_photos, warn_stderr)
from .quantize import CALIBRATED, DEFAULT_VARIANTS, VARIANTS, GraphCheck, check_graph, convert, require_valid
from .source import TrainingOutput, load_keras_model, load_training_output

try:
    __version__ = _metadata.version("edgekit")
except _metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+source"

REPORT_MD = "report.md"
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class ExportOptions:
    """Everything ``export`` needs besides the directories (the CLI's flags).

    Attributes:
        variants: names from ``quantize.VARIANTS``.
        calibration_data: a folder of photos (any layout) for int8 calibration; None → split.json's train photos.
        calibration_size: how many photos to sample (seeded) for calibration.
        eval_data: a one-folder-per-class directory; None → split.json's validation photos.
        thresholds: the gate.
        seed: the calibration sample's seed.
        info: metadata text (description, version, author, licence).
        diagnose: always diagnose int8 (otherwise only when it is rejected or close to the limit).
        fix: ``"auto"`` try fixes when int8 is rejected, ``"always"`` also when it passes, ``"never"``.
        diagnose_photos: calibration photos the per-layer diagnosis runs on.
    """

    variants: tuple[str, ...] = DEFAULT_VARIANTS
    calibration_data: Path | None = None
    calibration_size: int = 300
    eval_data: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    seed: int = 0
    info: ModelInfo = field(default_factory=ModelInfo)
    diagnose: bool = False
    fix: str = "auto"
    diagnose_photos: int = 50


@dataclass
class VariantResult:
    """One variant's outcome.

    Attributes:
        variant: its name.
        status: ``"accepted"``, ``"rejected"`` (written, but fails the gate) or ``"failed"`` (not written).
        path: the written ``.tflite`` (None when failed).
        size_bytes: file size, metadata included.
        graph: I/O types and op census of the converted model.
        scores, comparison, verdict: the gate's measurements (None when failed).
        error: why it failed.
        reused: True when an identical earlier conversion was kept.
        seconds: conversion time.
        disagreements: photos whose top-1 differs from the Keras model's.
        paired: the paired right/wrong table, McNemar p-value and interval of the change.
        confident: agreement on the photos where the float model is sure.
        class_changes: per-class accuracy change with counts.
        summary: one sentence for someone about to ship it.
    """

    variant: str
    status: str
    path: str | None = None
    size_bytes: int = 0
    graph: GraphCheck | None = None
    scores: Scores | None = None
    comparison: Comparison | None = None
    verdict: Verdict | None = None
    error: str | None = None
    reused: bool = False
    seconds: float = 0.0
    disagreements: tuple[str, ...] = ()
    paired: PairedTest | None = None
    confident: ConfidentAgreement | None = None
    class_changes: tuple[ClassChange, ...] = ()
    summary: str = ""


@dataclass
class ExportResult:
    """Everything the report shows.

    Attributes:
        source: the training output directory; model_sha256 ties the files to it.
        out_dir: where the files went.
        spec: the training contract.
        options: what was asked.
        eval_source: where the evaluation photos came from; eval_skipped: unreadable ones.
        reference: the float Keras model's scores on them (draft decoding, as the runner).
        draft: the draft-decoding study.
        calibration: the calibration sample's summary (None when no calibrated variant).
        variants: per-variant results in the order asked.
        environment: library versions.
        remedy: int8's diagnosis, the fixes tried and the file chosen (None when not needed).
    """

    source: str
    model_sha256: str
    out_dir: str
    spec: InputSpec
    options: ExportOptions
    eval_source: str
    eval_skipped: tuple[str, ...]
    reference: Scores
    draft: DraftStudy
    calibration: dict[str, Any] | None
    variants: list[VariantResult]
    environment: dict[str, str]
    remedy: Any = None

    @property
    def all_accepted(self) -> bool:
        return all(v.status == "accepted" for v in self.variants)


def file_stem(spec: InputSpec) -> str:
    """``contract.name`` made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name).strip("._") or "model"


def model_path_for(out_dir: Path, spec: InputSpec, variant: str) -> Path:
    return out_dir / f"{file_stem(spec)}_{variant}.tflite"


def _eval_photos(source: TrainingOutput, options: ExportOptions) -> tuple[list[Photo], str]:
    labels = source.spec.labels
    if options.eval_data is not None:
        return labelled_folder(Path(options.eval_data), labels), str(options.eval_data)
    photos = split_photos(source.split_entries("validation"), labels, f"{source.split_path} (validation)")
    if not photos:
        raise ConvertError(f"{source.split_path}: the validation split is empty; pass --eval-data DIR")
    return photos, f"{source.split_path} (validation split)"


def _calibration_candidates(source: TrainingOutput, options: ExportOptions) -> tuple[list[Path], str]:
    if options.calibration_data is not None:
        root = Path(options.calibration_data)
        if not root.is_dir():
            raise ConvertError(f"--calibration-data: {root} is not a directory")
        return find_images(root), str(root)
    entries = split_photos(source.split_entries("train"), source.spec.labels, f"{source.split_path} (train)")
    return [photo.path for photo in entries], f"{source.split_path} (train split)"


def _conversion_key(source: TrainingOutput, variant: str, options: ExportOptions, candidates: list[Path]) -> str:
    """A digest of everything that determines a variant's bytes (reuse only on an exact match)."""
    parts: dict[str, Any] = {
        "edgekit_convert": __version__,
        "packing": PACKING_VERSION,
        "model_sha256": source.model_sha256,
        "variant": variant,
        "spec": source.spec.to_dict(),
        "info": dataclasses.asdict(options.info),
    }
    if variant in CALIBRATED:
        parts["calibration"] = {
            "size": options.calibration_size,
            "seed": options.seed,
            "photos": hashlib.sha256("\n".join(sorted(map(str, candidates))).encode()).hexdigest(),
        }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _existing_key(path: Path) -> str | None:
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


def _write_variant(model: Any, source: TrainingOutput, variant: str, key: str, calibration: Calibration | None,
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


def export(train_dir: str | Path, out_dir: str | Path, options: ExportOptions = ExportOptions(), *,
           warn: Warn = warn_stderr, log: Callable[[str], None] = print, progress: bool = True) -> ExportResult:
    """Convert, gate and report every variant in ``options.variants``.

    Returns the result; the caller decides the exit status from ``result.all_accepted``.
    Raises ``ConvertError`` (nothing written) for unusable input.
    """
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown or not options.variants:
        raise ConvertError(f"variants must be among {', '.join(VARIANTS)}; received {', '.join(options.variants) or 'none'}")
    thresholds = options.thresholds
    if thresholds.min_agreement is not None and not 0.0 <= thresholds.min_agreement <= 100.0:
        raise ConvertError(f"`--require-agreement` must be a percentage from 0 to 100, received {thresholds.min_agreement}")
    if not 0.0 < thresholds.alpha < 1.0:
        raise ConvertError(f"`--alpha` must be between 0 and 1 (exclusive), received {thresholds.alpha}")
    if not 0.5 <= thresholds.confidence < 1.0:
        raise ConvertError(f"`--confidence` must be from 0.5 to below 1, received {thresholds.confidence}")
    if options.fix not in ("auto", "always", "never"):
        raise ConvertError(f"`--fix` must be one of auto, always, never; received {options.fix!r}")
    if options.diagnose_photos < 1:
        raise ConvertError(f"`--diagnose-photos` must be a positive number of photos, received {options.diagnose_photos}")
    source = load_training_output(train_dir)
    spec = source.spec
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvertError(f"--out: {out_dir} exists and is not a directory")
    if thresholds.max_accuracy_drop < 0.0:
        raise ConvertError(f"`--max-accuracy-drop` must be >= 0 points, received {thresholds.max_accuracy_drop}")

    photos, eval_source = _eval_photos(source, options)
    needs_calibration = any(v in CALIBRATED for v in options.variants)
    candidates: list[Path] = []
    calibration_source = ""
    if needs_calibration:
        candidates, calibration_source = _calibration_candidates(source, options)
        check_calibration_size(candidates, options.calibration_size, calibration_source)

    started = time.perf_counter()
    model = load_keras_model(source)
    decoded = decode(photos, spec, draft=True, warn=warn, progress="evaluation photos" if progress else None)
    if not decoded.photos:
        raise ConvertError(f"{eval_source}: none of the {len(photos)} evaluation photos could be read")
    # The full-decode pass repeats the warnings for the same files: keep them quiet.
    full = decode(decoded.photos, spec, draft=False, warn=lambda _m: None)
    truth = truth_indices(spec.labels, [p.label for p in decoded.photos])
    reference_probs = predict_keras(model, decoded.pixels)
    differs = np.flatnonzero((full.pixels != decoded.pixels).reshape(len(full.pixels), -1).any(axis=1))
    full_probs = reference_probs.copy()
    if len(differs):
        full_probs[differs] = predict_keras(model, full.pixels[differs])
    draft = study_draft(full.pixels, decoded.pixels, full_probs, reference_probs, truth, spec.labels)
    reference = score(reference_probs, truth, spec.labels)
    context = GateContext(decoded, tuple(spec.labels), reference_probs, truth, reference, thresholds, options.seed)
    log(f"float Keras model: {reference.accuracy:.2f}% on {reference.photos} photos ({eval_source})")

    calibration: Calibration | None = None
    results: list[VariantResult] = []
    for variant in options.variants:
        path = model_path_for(out_dir, spec, variant)
        key = _conversion_key(source, variant, options, candidates)
        result = VariantResult(variant, "failed")
        results.append(result)
        tick = time.perf_counter()
        try:
            if _existing_key(path) == key:
                result.reused = True
                content = path.read_bytes()
                with filtered_stderr(LITERT_NOISE):  # the first interpreter's XNNPACK INFO line
                    result.graph = check_graph(content, variant)
                # The sidecar may be missing if the earlier run stopped right after the model.
                read_contract(path, content).save(contract_path_for(path))
                log(f"{variant}: reusing {path} (same source model and settings)")
            else:
                if variant in CALIBRATED and calibration is None:
                    calibration = sample_calibration(candidates, spec, options.calibration_size, options.seed,
                                                     calibration_source, warn=warn, progress=progress)
                log(f"{variant}: converting ...")
                with filtered_stderr(LITERT_NOISE):  # the first interpreter's XNNPACK INFO line
                    result.graph = _write_variant(model, source, variant, key, calibration, options.info, path)
            require_valid(result.graph, variant)
        except ConversionFailed as exc:
            result.error = str(exc)
            result.seconds = round(time.perf_counter() - tick, 2)
            warn(f"{variant}: conversion failed, not written: {exc}")
            continue
        result.seconds = round(time.perf_counter() - tick, 2)
        result.path = str(path)
        result.size_bytes = path.stat().st_size
        gate_file(result, context, progress=progress)
        log(
            f"{variant}: {result.status} — accuracy {result.scores.accuracy:.2f}% "
            f"({result.paired.change_points:+.2f} pt, {100 * thresholds.confidence:g}% interval "
            f"{result.paired.interval[0]:+.2f} to {result.paired.interval[1]:+.2f}, {p_text(result.paired.p_value)}), "
            f"agreement {result.comparison.agreement:.2f}%, {result.size_bytes / 1e6:.2f} MB"
            + (f" ({'; '.join(result.verdict.reasons)})" if result.verdict.reasons else "")
        )

    remedy = None
    int8 = next((v for v in results if v.variant == "int8"), None)
    if int8 is not None and int8.status != "failed" and (
            options.diagnose or options.fix == "always" or int8.status == "rejected" or int8.verdict.close):
        from .remedy import remedy_int8

        if calibration is None:
            calibration = sample_calibration(candidates, spec, options.calibration_size, options.seed,
                                             calibration_source, warn=warn, progress=progress)
        remedy = remedy_int8(model, source, options, calibration, candidates, int8, context, out_dir,
                             log=log, progress=progress)

    calibration_info = None
    if needs_calibration:
        calibration_info = {
            "source": calibration_source,
            "candidates": len(candidates),
            "size": options.calibration_size,
            "seed": options.seed,
            "preprocessing": "edge_runner.image.preprocess(path, contract) — the runner's own path (draft=True)",
        }
        if calibration is not None:
            calibration_info.update(
                used=len(calibration.paths),
                all_photos=calibration.all_photos,
                skipped=list(calibration.skipped),
                pinned_range=calibration.pinned_range,
                input_min=float(calibration.pixels.min()),
                input_max=float(calibration.pixels.max()),
            )
        else:
            calibration_info["reused"] = True

    import keras
    import tensorflow as tf

    environment = {"edgekit_convert": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                   "runtime": f"{load_runtime().name} {load_runtime().version}", "seconds": f"{time.perf_counter() - started:.1f}"}
    result = ExportResult(
        source=str(source.root), model_sha256=source.model_sha256, out_dir=str(out_dir), spec=spec, options=options,
        eval_source=eval_source, eval_skipped=decoded.skipped, reference=reference, draft=draft,
        calibration=calibration_info, variants=results, environment=environment, remedy=remedy,
    )
    from .report import export_json, export_markdown

    spec.save_labels(out_dir / LABELS_FILENAME)
    write_atomic(out_dir / REPORT_JSON, (json.dumps(export_json(result), indent=2) + "\n").encode("utf-8"))
    write_atomic(out_dir / REPORT_MD, export_markdown(result).encode("utf-8"))
    return result
