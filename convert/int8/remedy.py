"""When int8 fails (or is close, or on request): diagnose it layer by layer, try fixes, choose a file.

Each fix is a new ``.tflite`` that goes through the same gate as every variant
(:func:`convert.variants.gate_file`), in this order, cheapest first; the first accepted one
is chosen (``--fix always`` tries them even when int8 passes, and ships int8 then):

1. ``int8_calib`` — full int8 again, calibrated on twice as many views: twice the photos
   (when the set has them), half of them mirrored left-right; same size and speed as int8.
2. ``int8_floatK`` — selective quantisation: the K worst layers of the diagnosis (and the
   ops reading their output) kept in float, K = 1, 2, 4, 8; float32 input/output.
3. ``int16x8`` — int16 activations, int8 weights: reference kernels, slow on most CPUs.

Every candidate's size and single-thread latency (measured interleaved with int8's and
float32's in the same run) goes into the trade-off table; nothing replaces int8 silently:
the report names the chosen file and why.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge_runner.core.model import Classifier
from edge_runner.common.timing import time_interleaved

from ..errors import ConversionFailed
from ..photos import Calibration, sample_calibration
from ..quantize import convert
from ..results import VariantResult, model_path_for
from ..variants import gate_file, write_model
from .diagnosis import Diagnosis, LayerDebugger, LayerError, plot, with_consumers

DENYLIST_STEPS = (1, 2, 4, 8)
WORST_SHOWN = 10
LATENCY_RUNS = 15


@dataclass
class Candidate:
    """One fix tried.

    Attributes:
        fix: what was changed, in words.
        result: the gated file (``VariantResult``; its ``variant`` is the file's suffix).
        denylisted: tensors kept in float (selective quantisation only).
        latency_ms: median single-thread latency on one evaluation photo (None when not written).
    """

    fix: str
    result: Any
    denylisted: tuple[str, ...] = ()
    latency_ms: float | None = None


@dataclass
class Remedy:
    """int8's diagnosis, the fixes tried and the file to ship.

    Attributes:
        diagnosis: per-layer error (None when the debugger failed; ``error`` says why).
        worst: the worst layers, worst first.
        plot: the diagnosis PNG.
        candidates: fixes tried, in order.
        baseline_latency_ms: ``{"int8": ms, "float32": ms}`` measured in the same run as the candidates.
        shipped: the file to ship instead of (or as) int8, or None; reason: why.
        seconds_diagnosis, seconds_fixes: time added to the export.
    """

    diagnosis: Diagnosis | None
    worst: list[LayerError] = field(default_factory=list)
    plot: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    baseline_latency_ms: dict[str, float] = field(default_factory=dict)
    shipped: str | None = None
    shipped_variant: str | None = None
    reason: str = ""
    seconds_diagnosis: float = 0.0
    seconds_fixes: float = 0.0
    error: str | None = None


def _wider_calibration(calibration: Calibration, candidates: list[Path], spec: Any, size: int, seed: int,
                       source: str, progress: bool) -> tuple[np.ndarray, str]:
    """Twice the views: a new seeded sample of twice the photos when the set has them (else the same
    photos again), the second half mirrored left-right. Costs twice the calibration time."""
    pixels = calibration.pixels
    more = min(len(candidates), 2 * size)
    photos = max(more, len(pixels))
    if more > len(pixels):
        pixels = sample_calibration(candidates, spec, more, seed + 1, source, warn=lambda _m: None,
                                    progress=progress).pixels
    else:
        pixels = np.concatenate([pixels, pixels])
    half = len(pixels) // 2
    views = np.concatenate([pixels[:half], pixels[half:, :, ::-1, :]])
    return (np.ascontiguousarray(views),
            f"calibrated on {len(views)} views of {photos} photos ({len(views) - half} mirrored)")


def _latencies(paths: dict[str, str], pixels: np.ndarray) -> dict[str, float]:
    """Median single-thread milliseconds per model on one photo, the models taking turns."""
    classifiers = {name: Classifier(path, num_threads=1) for name, path in paths.items()}
    calls: list[Callable[[], Any]] = [lambda c=c: c.probabilities(pixels) for c in classifiers.values()]
    times = time_interleaved(calls, runs=LATENCY_RUNS, warmup=2)
    return {name: round(float(np.median(t)), 3) for name, t in zip(classifiers, times)}


def remedy_int8(model: Any, source: Any, options: Any, calibration: Calibration, candidates: list[Path], int8: Any,
                context: Any, out_dir: Path, *, log: Callable[[str], None] = print, progress: bool = False) -> Remedy:
    """Diagnose ``int8`` (a ``VariantResult``) and, when it is rejected or ``options.fix == "always"``, try fixes."""
    spec = source.spec
    started = time.perf_counter()
    debug_pixels = calibration.pixels[: options.diagnose_photos]
    log(f"int8: diagnosing layer by layer on {len(debug_pixels)} calibration photos ...")
    try:
        debugger = LayerDebugger(model, calibration.pixels)
        diagnosis = debugger.diagnose(debug_pixels)
    except (ValueError, RuntimeError) as exc:  # the debugger refuses some graphs
        return Remedy(None, error=f"the quantisation debugger failed: {exc}",
                      seconds_diagnosis=round(time.perf_counter() - started, 2))
    remedy = Remedy(diagnosis, worst=diagnosis.worst(WORST_SHOWN))
    remedy.plot = str(plot(diagnosis, out_dir / f"{model_path_for(out_dir, spec, 'int8').stem}_diagnosis.png"))
    remedy.seconds_diagnosis = round(time.perf_counter() - started, 2)
    log("int8: worst layers (RMSE / float std): " + ", ".join(
        f"{layer.layer} {layer.relative_rmse:.3g}" for layer in remedy.worst[:5]))

    wanted = int8.status == "rejected" and options.fix != "never" or options.fix == "always"
    if not wanted:
        if int8.status == "accepted":
            remedy.shipped, remedy.shipped_variant = int8.path, "int8"
            remedy.reason = "int8 passes the gate; the diagnosis is for information"
        else:  # --fix never: a rejected int8 is never named as the file to ship
            remedy.reason = "int8 is rejected; fixes were not tried (--fix never)"
        return remedy
    started = time.perf_counter()
    base_key = hashlib.sha256(f"{source.model_sha256}:{options.seed}:{options.calibration_size}".encode()).hexdigest()

    def attempt(name: str, fix: str, build: Callable[[], bytes], check_as: str, denylisted: tuple[str, ...] = ()) -> bool:
        path = model_path_for(out_dir, spec, name)
        result = VariantResult(name, "failed")
        remedy.candidates.append(Candidate(fix, result, denylisted))
        tick = time.perf_counter()
        try:
            bare = build()
            result.graph = write_model(bare, source, name, f"{base_key[:24]}-{name}", calibration, options.info, path,
                                       check_as=check_as)
            result.path, result.size_bytes = str(path), path.stat().st_size
            gate_file(result, context)
        except (ConversionFailed, ValueError, RuntimeError) as exc:
            result.error = str(exc).splitlines()[0][:300]
            log(f"{name}: failed ({result.error})")
            return False
        finally:
            result.seconds = round(time.perf_counter() - tick, 2)
        log(f"{name}: {result.status} — {fix}; accuracy {result.paired.change_points:+.2f} pt, "
            f"{result.size_bytes / 1e6:.2f} MB")
        return result.status == "accepted"

    def wider() -> bytes:
        pixels, words = _wider_calibration(calibration, candidates, spec, options.calibration_size, options.seed,
                                           "calibration photos", progress)
        remedy.candidates[-1].fix = words
        return convert(model, "int8", pixels)

    done = attempt("int8_calib", "wider calibration", wider, "int8")
    ranking = list(diagnosis.ranking)
    for count in DENYLIST_STEPS:
        if done or count > len(ranking):
            break
        tensors = with_consumers(debugger.instrumented, ranking[:count])
        names = ", ".join(dict.fromkeys(layer.layer for layer in diagnosis.worst(count)))
        done = attempt(f"int8_float{count}", f"{names} (+ {len(tensors) - count} reading op(s)) kept in float",
                       lambda t=tensors: debugger.selective(t), "float-io", tuple(tensors))
    if not done:
        done = attempt("int16x8", "int16 activations, int8 weights", lambda: convert(model, "int16x8", calibration.pixels),
                       "int16x8")

    written = {c.result.variant: c.result.path for c in remedy.candidates if c.result.path}
    baselines = {name: v.path for name, v in (("int8", int8),) if v.path}
    float32 = Path(model_path_for(out_dir, spec, "float32"))
    if float32.is_file():
        baselines["float32"] = str(float32)
    if written:
        measured = _latencies({**baselines, **written}, context.decoded.pixels[0])
        remedy.baseline_latency_ms = {name: measured[name] for name in baselines}
        for candidate in remedy.candidates:
            candidate.latency_ms = measured.get(candidate.result.variant)
    accepted = [c for c in remedy.candidates if c.result.status == "accepted"]
    if int8.status == "accepted":
        remedy.shipped, remedy.shipped_variant = int8.path, "int8"
        remedy.reason = "int8 passes the gate; the fixes were tried on request and are not needed"
    elif accepted:
        chosen = accepted[0]
        remedy.shipped, remedy.shipped_variant = chosen.result.path, chosen.result.variant
        remedy.reason = (f"int8 is rejected; {chosen.result.variant} ({chosen.fix}) is the first fix that passes the "
                         "same gate, trying the cheapest first")
    else:
        remedy.reason = "int8 is rejected and no fix passes the gate: ship a float variant (float16 is half the size)"
    remedy.seconds_fixes = round(time.perf_counter() - started, 2)
    return remedy
