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

import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge_runner.core.image import find_images
from edge_runner.core.model import read_contract
from edge_runner.common.native_log import LITERT_NOISE, filtered_stderr
from edge_runner.core.runtime import load_runtime
from edge_runner.common.files import write_atomic, write_json
from edge_runner.core.spec import LABELS_FILENAME, InputSpec, contract_path_for

from .errors import ConversionFailed, ConvertError
from .gate.accuracy import (p_text, predict_keras, score, study_draft, truth_indices)
from .photos import (Calibration, Photo, Warn, check_calibration_size, decode, labelled_folder,
                     sample_calibration, split_photos, warn_stderr)
from .quantize import CALIBRATED, VARIANTS, check_graph, require_valid
from . import __version__
from .results import REPORT_JSON, REPORT_MD, ExportOptions, ExportResult, VariantResult, file_stem, model_path_for  # noqa: F401 - re-exported
from .variants import GateContext, conversion_key, existing_key, gate_file, write_variant
from .source import TrainingOutput, load_keras_model, load_training_output

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



def refuse_for_veto(spec: InputSpec, variant: str) -> None:
    """``ConversionFailed`` for an integer variant of a model with a distance veto (``train --distance-veto``).

    Measured on a fold run (train/README.md, "A strict mode"): the int8 file passed the accuracy gate on the
    validation photos (agreement 99.03%) but called 45% of the unseen people a pet, against 7% for the Keras model
    and the float16 file: the veto was mostly gone. Refused rather than shipped silently without it.
    """
    if spec.distance_veto is not None and variant in CALIBRATED:
        raise ConversionFailed(f"{variant}: not made for a model with a distance veto (train --distance-veto): an "
                               "integer file loses most of the veto (train/README.md, 'A strict mode'); ship "
                               "float16 (or float32)")


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
        key = conversion_key(source, variant, options, candidates)
        result = VariantResult(variant, "failed")
        results.append(result)
        tick = time.perf_counter()
        try:
            refuse_for_veto(spec, variant)
            if existing_key(path) == key:
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
                    result.graph = write_variant(model, source, variant, key, calibration, options.info, path)
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
        from .int8.remedy import remedy_int8

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
            "preprocessing": "edge_runner.core.image.preprocess(path, contract) — the runner's own path (draft=True)",
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
    write_json(out_dir / REPORT_JSON, export_json(result))
    write_atomic(out_dir / REPORT_MD, export_markdown(result).encode("utf-8"))
    return result
