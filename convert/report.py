"""``report.md`` and ``report.json`` for an export (the benchmark has its own in :mod:`convert.benchmark.report`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edge_runner.core.image import DRAFT_MARGIN
from edge_runner.core.spec import InputSpec

from .int8.diagnosis import LOST
from .results import ExportResult, VariantResult
from .photos import MIN_CALIBRATION
from .gate.significance import format_p


def _plain(value: Any) -> Any:
    """Dataclasses, paths, tuples and specs → JSON-ready values."""
    if isinstance(value, InputSpec):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def export_json(result: ExportResult) -> dict[str, Any]:
    """The whole result as a JSON object (``report.json``)."""
    data = _plain(result)
    data["all_accepted"] = result.all_accepted
    data["rejected"] = [v.variant for v in result.variants if v.status != "accepted"]
    for entry in data["variants"]:
        if entry.get("comparison"):
            entry["comparison"].pop("disagreements", None)  # indices; the paths follow
        entry["disagreements"] = entry["disagreements"][:100]
    remedy = result.remedy
    if data.get("remedy"):
        for candidate in data["remedy"]["candidates"]:
            if candidate["result"].get("comparison"):
                candidate["result"]["comparison"].pop("disagreements", None)
            candidate["result"]["disagreements"] = candidate["result"]["disagreements"][:100]
    data["shipped"] = {v.variant: {"file": v.path, "variant": v.variant, "reason": "passes the gate"}
                       for v in result.variants if v.status == "accepted"}
    if remedy is not None and (remedy.candidates or "int8" not in data["shipped"]):
        data["shipped"]["int8"] = {"file": remedy.shipped, "variant": remedy.shipped_variant, "reason": remedy.reason}
    float32 = next((v for v in result.variants if v.variant == "float32" and v.size_bytes), None)
    for entry, variant in zip(data["variants"], result.variants):
        if variant.paired:
            entry["p_value_loss"] = variant.paired.p_value
            entry["change_interval_points"] = list(variant.paired.interval)
        if variant.confident:
            entry["confident_agreement"] = (round(variant.confident.percent / 100.0, 6)
                                            if variant.confident.percent is not None else None)
        entry["size_vs_float32"] = (round(variant.size_bytes / float32.size_bytes, 4)
                                    if float32 and variant.size_bytes else None)
        # Flat summary for scripts (fractions 0-1, like train/'s report); the nested
        # `scores` and `comparison` hold the same figures in percent.
        entry["accepted"] = variant.status == "accepted"
        entry["accuracy"] = round(variant.scores.accuracy / 100.0, 6) if variant.scores else None
        entry["agreement"] = round(variant.comparison.agreement / 100.0, 6) if variant.comparison else None
        entry["accuracy_change_points"] = (round(variant.scores.accuracy - result.reference.accuracy, 4)
                                           if variant.scores else None)
    return data


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f}" if size else "—"


def _io(variant: VariantResult) -> tuple[str, str]:
    if variant.graph is None:
        return "—", "—"
    i, o = variant.graph.input, variant.graph.output

    def text(q: Any) -> str:
        return q.dtype if q.dtype.startswith("float") else f"{q.dtype} (scale {q.scale:g}, zp {q.zero_point})"

    return text(i), text(o)


def _measured(v: VariantResult, ref: Any) -> str:
    p, c = v.paired, v.confident
    sure = f"{c.percent:.2f}% of {c.photos}" if c and c.percent is not None else "— (none sure)"
    return (f"{v.scores.accuracy:.2f}% | {v.scores.accuracy - ref.accuracy:+.2f} | {p.interval[0]:+.2f} to "
            f"{p.interval[1]:+.2f} | {p.lost} / {p.gained} | {format_p(p.p_value)} | {v.comparison.agreement:.2f}% | {sure} | "
            f"{v.comparison.max_probability_difference:.4f}")


def _remedy_markdown(result: ExportResult) -> list[str]:
    """The int8 diagnosis table and plot, and the fixes' trade-off table with the chosen file."""
    remedy = result.remedy
    lines = ["", "## int8 diagnosis: where the error comes from", ""]
    if remedy.diagnosis is None:
        return lines + [f"Not available: {remedy.error}."]
    d = remedy.diagnosis
    lines += [
        f"`tf.lite.experimental.QuantizationDebugger` on {d.photos} calibration photos ({d.seconds:.1f} s): each "
        "quantised op's int8 output against the same op in float. *RMSE / float std* is the median over output "
        "channels of the error relative to the channel's spread (1 means the signal is gone); *RMSE / scale* is the "
        "error in quantisation steps (rounding alone gives about 0.3). Worst first:", "",
        "| Rank | Layer | Op | Position | RMSE / float std | RMSE / scale | Scale | Reading |", "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    first = True
    for rank, layer in enumerate(remedy.worst, 1):
        if layer.relative_rmse >= LOST:
            reading = "first to lose its signal: the likely cause" if first else "after it: computes from what is left"
            first = False
        else:
            reading = ""
        lines.append(f"| {rank} | `{layer.layer}` | {layer.op} | {layer.position} / {len(d.layers)} | "
                     f"{layer.relative_rmse:.4g} | {layer.rmse_per_scale:.3g} | {layer.scale:.4g} | {reading} |")
    if remedy.plot:
        lines += ["", f"![int8 error per layer]({Path(remedy.plot).name})"]
    lines += ["", f"Diagnosis time: {remedy.seconds_diagnosis:.1f} s."]
    if not remedy.candidates:
        return lines + ["", f"Shipping: {remedy.reason}."]
    base = remedy.baseline_latency_ms
    int8 = next((v for v in result.variants if v.variant == "int8"), None)
    lines += ["", "## int8 fixes: the trade-off", "",
              "Each fix is a new file gated exactly like the variants above; single-thread latency on one photo, the "
              "models taking turns in the same run.", "",
              "| File | Fix | Verdict | Accuracy | Change (pt) | Interval (pt) | p (loss) | Agreement | Size (MB) | "
              "vs int8 size | p50 ms | vs int8 time |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = ([("int8 (as converted)", "—", int8, base.get("int8"))] if int8 and int8.scores else []) + \
           [(c.result.variant, c.fix, c.result, c.latency_ms) for c in remedy.candidates]
    for name, fix, v, latency in rows:
        file = f"`{Path(v.path).name}`" if v.path else "(not written)"
        if v.scores and v.paired:
            measured = (f"{v.scores.accuracy:.2f}% | {v.paired.change_points:+.2f} | {v.paired.interval[0]:+.2f} to "
                        f"{v.paired.interval[1]:+.2f} | {format_p(v.paired.p_value)} | {v.comparison.agreement:.2f}%")
        else:
            measured = f"— | — | — | — | — ({v.error})"
        size = (f"{_mb(v.size_bytes)} | {v.size_bytes / int8.size_bytes:.2f}×" if v.size_bytes and int8 and int8.size_bytes
                else "— | —")
        speed = (f"{latency:.2f} | {latency / base['int8']:.2f}×" if latency and base.get("int8") else "— | —")
        lines.append(f"| {name}: {file} | {fix} | {v.status} | {measured} | {size} | {speed} |")
    if base.get("float32"):
        lines.append(f"\nfloat32 in the same run: {base['float32']:.2f} ms.")
    shipped = f"`{Path(remedy.shipped).name}`" if remedy.shipped else "no int8 file"
    lines += ["", f"**Chosen: {shipped}** — {remedy.reason}. Fixes took {remedy.seconds_fixes:.1f} s."]
    return lines


def export_markdown(result: ExportResult) -> str:
    """A human-readable report: verdicts, sizes, accuracy, per-class accuracy, int8 details, draft study."""
    spec, options, ref = result.spec, result.options, result.reference
    th = options.thresholds
    rejected = [v for v in result.variants if v.status != "accepted"]
    lines = [f"# Export report: {spec.name}", ""]
    if rejected:
        lines.append("**Result: REJECTED** — " + "; ".join(
            f"{v.variant}: {v.error or '; '.join(v.verdict.reasons if v.verdict else ())}" for v in rejected))
    else:
        lines.append(f"**Result: all {len(result.variants)} variants accepted.**")
    lines += [
        "",
        f"- Source: `{result.source}` (model.keras sha256 `{result.model_sha256[:16]}…`), written to `{result.out_dir}`.",
        f"- Gate: a variant is rejected when it loses more than {th.max_accuracy_drop:g} accuracy points against the "
        f"float Keras model AND the loss is significant: McNemar's exact one-sided test on the photos whose answer "
        f"flips between right and wrong, p < {th.alpha:g}. The {100 * th.confidence:g}% interval of the change "
        "(seeded paired bootstrap) is reported either way. "
        + (f"Top-1 agreement of at least {th.min_agreement:g}% is required as well (`--require-agreement`)."
           if th.min_agreement is not None else "Agreement is reported, not required (`--require-agreement` makes it so)."),
        f"- Evaluated on {ref.photos} photos from {result.eval_source}, decoded once with "
        "`edge_runner.core.image.preprocess` (draft decoding on, as the runner) and run through "
        "`edge_runner.core.model.Classifier` (the runner's own inference path); the Keras model saw the same pixels.",
    ]
    if result.eval_skipped:
        lines.append(f"- {len(result.eval_skipped)} unreadable photos skipped: " + "; ".join(result.eval_skipped[:10]))
    float32 = next((v for v in result.variants if v.variant == "float32" and v.size_bytes), None)
    lines += [
        "",
        f"| Variant | Verdict | File | Size (MB) | vs float32 | Input | Output | Accuracy | Change (pt) | "
        f"{100 * th.confidence:g}% interval (pt) | Right→wrong / wrong→right | p (loss) | Agreement | "
        "Agreement where float is sure (≥ 0.9) | Max \\|Δp\\| |",
        "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| Keras float (reference) | — | model.keras | — | — | float32 | float32 | {ref.accuracy:.2f}% | — | — | — | — | — "
        "| — | — |",
    ]
    for v in result.variants:
        name = Path(v.path).name if v.path else "(not written)"
        ratio = f"{v.size_bytes / float32.size_bytes:.2f}×" if float32 and v.size_bytes else "—"
        inp, out = _io(v)
        measured = _measured(v, ref) if v.scores and v.comparison and v.paired else "— | — | — | — | — | — | — | —"
        verdict = v.status + (" (reused)" if v.reused else "")
        lines.append(f"| {v.variant} | {verdict} | `{name}` | {_mb(v.size_bytes)} | {ratio} | {inp} | {out} | {measured} |")
    for v in result.variants:
        if v.verdict and v.verdict.reasons:
            lines.append(f"\n{v.variant} rejected: {'; '.join(v.verdict.reasons)}.")
        if v.verdict and v.verdict.notes:
            lines.append(f"\n{v.variant}: {'; '.join(v.verdict.notes)}.")
        if v.error:
            lines.append(f"\n{v.variant} failed and was not written: {v.error}")
    lines += ["", "## What this means for shipping", ""]
    lines += [f"- {v.summary}" for v in result.variants if v.summary]
    if result.remedy is not None:
        lines += _remedy_markdown(result)

    differing = [v for v in result.variants if v.disagreements]
    if differing:
        lines += ["", "Photos whose top-1 answer differs from the Keras model's (full list in report.json):", ""]
        for v in differing:
            shown = ", ".join(f"`{Path(p).name}`" for p in v.disagreements[:8])
            more = f" and {len(v.disagreements) - 8} more" if len(v.disagreements) > 8 else ""
            lines.append(f"- {v.variant} ({len(v.disagreements)}): {shown}{more}")
    lines += ["", "## Per-class accuracy", "",
              "Each variant's accuracy on the class, its change in points and, in brackets, the photos of the class it "
              "got wrong where the float model was right (−) and the reverse (+).", "",
              "| Class | Photos | Keras float | " + " | ".join(v.variant for v in result.variants) + " |",
              "|---|---:|---:|" + "---:|" * len(result.variants)]
    for label in ref.per_class:
        changes = {v.variant: next((c for c in v.class_changes if c.label == label), None) for v in result.variants}
        photos = next((c.photos for c in changes.values() if c), 0)
        cells = [f"{v.scores.per_class.get(label, 0.0):.2f}% ({c.change_points:+.2f}; −{c.lost}/+{c.gained})"
                 if v.scores and (c := changes[v.variant]) else "—" for v in result.variants]
        lines.append(f"| {label} | {photos} | {ref.per_class[label]:.2f}% | " + " | ".join(cells) + " |")

    for v in result.variants:
        if v.variant == "int8" and v.graph is not None:
            g = v.graph
            lines += [
                "", "## int8 model", "",
                f"- Input: {g.input.dtype}, scale {g.input.scale:g}, zero-point {g.input.zero_point} (read from the "
                "LiteRT interpreter after conversion; the export fails unless it is uint8 / 1.0 / 0): raw 0–255 "
                "pixels enter exactly, no rescaling, no clipping. The first op shifts them by 128 into int8 (exact).",
                f"- Output: {g.output.dtype}, scale {g.output.scale:g}, zero-point {g.output.zero_point}: uint8 has the "
                "same 1/256 resolution as int8 for a softmax and is the integer type MediaPipe Tasks and the TFLite "
                "Task Library accept (UINT8 or FLOAT32 only).",
                f"- Ops: {', '.join(f'{k} ×{n}' for k, n in g.ops.items())}.",
                f"- Tensor types: {', '.join(f'{k} ×{n}' for k, n in g.tensor_types.items())} (uint8 only at the input "
                "and output, so every integer op runs the int8 kernels; float only in the first depthwise convolution "
                "and the op reading it, kept in float because int8 changes answers there).",
            ]
    if result.calibration:
        c = result.calibration
        lines += ["", "## Calibration", ""]
        if c.get("reused"):
            lines.append(f"Reused the earlier calibrated files (same {c['size']} photos, seed {c['seed']}, from {c['source']}).")
        else:
            pinned = (
                "they did not span 0..255, so one pixel of the first photo was set to 0 and one to 255 "
                "(the smallest change that makes the int8 input take raw pixels exactly)"
                if c.get("pinned_range") else "they already span exactly 0..255, so nothing was changed"
            )
            lines.append(
                f"{c['used']} photos sampled with seed {c['seed']} from {c['source']} ({c['candidates']} candidates), "
                f"decoded with {c['preprocessing']}. Input values {c['input_min']:g}..{c['input_max']:g}: {pinned}."
                + (f" Unreadable, passed over: {'; '.join(c['skipped'][:10])}." if c.get("skipped") else "")
                + (f" Fewer photos than `--calibration-size` {c['size']} were available, so all {c['used']} were used "
                   f"(the minimum is {MIN_CALIBRATION})." if c.get("all_photos") else "")
            )

    d = result.draft
    verdict = (
        "draft decoding costs nothing here: the runner can keep `draft=True`"
        if d.costs_nothing else
        "draft decoding CHANGES answers here: use `draft=False` for this model"
    )
    lines += [
        "", "## JPEG draft decoding", "",
        "The same photos decoded with `preprocess(..., draft=True)` and `draft=False`, through the float Keras model:", "",
        "| Photos | Decoded differently | Mean \\|Δpixel\\| | Accuracy (full) | Accuracy (draft) | Agreement | Max \\|Δp\\| |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {d.photos} | {d.photos_decoded_differently} | {d.mean_abs_pixel_difference:.3f} | {d.accuracy_full:.2f}% | "
        f"{d.accuracy_draft:.2f}% | {d.comparison.agreement:.2f}% | {d.comparison.max_probability_difference:.4f} |",
        "", f"Verdict: {verdict}.",
    ]
    if d.photos_decoded_differently == 0:
        side = 2 * DRAFT_MARGIN * max(spec.height, spec.width)
        lines.append(
            f"Caveat: none of these photos was large enough to be draft-decoded (a JPEG is only decoded at reduced "
            f"size when both sides are at least {side} px, i.e. {2 * DRAFT_MARGIN}x the input), so this measures "
            "nothing about larger photos such as a phone camera's; measure on such photos before relying on it."
        )
    stem = Path(next((v.path for v in result.variants if v.path), "model.tflite")).name
    lines += [
        "", "## Using a file in an app", "",
        f"Each `.tflite` is self-contained: standard TFLite metadata (name, description, version, author, licence; "
        f"input `image` = RGB {spec.width}×{spec.height}, raw 0–255 pixels; output `probability` with `labels.txt` as "
        "its TENSOR_AXIS_LABELS file) and the packed files `labels.txt` and `contract.json`. MediaPipe Tasks "
        "(`ImageClassifier`, Android/iOS/Python/Web) and the TFLite Task Library read the labels and the normalisation "
        "from it, so an app passes the camera image as it is, e.g. on Android:",
        "",
        "```kotlin",
        "val options = ImageClassifier.ImageClassifierOptions.builder()",
        f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{stem}\").build())",
        "    .setMaxResults(3).build()",
        "val classifier = ImageClassifier.createFromOptions(context, options)",
        "val result = classifier.classify(BitmapImageBuilder(bitmap).build())",
        "// result.classificationResult().classifications()[0].categories(): categoryName() + score()",
        "```",
        "",
        "On a Raspberry Pi: `python -m edge_runner photo.jpg --model " + stem + "` (the contract is read from inside the file).",
        "", "## Environment", "",
        ", ".join(f"{k} {v}" for k, v in result.environment.items()),
        "",
    ]
    return "\n".join(lines)
