"""``report.md`` and ``report.json`` for an export (the benchmark has its own in :mod:`convert.benchmark`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edge_runner.image import DRAFT_MARGIN
from edge_runner.spec import InputSpec

from .export import ExportResult, VariantResult
from .photos import MIN_CALIBRATION


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
    float32 = next((v for v in result.variants if v.variant == "float32" and v.size_bytes), None)
    for entry, variant in zip(data["variants"], result.variants):
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
        f"- Gate: a variant is rejected when its accuracy is more than {th.max_accuracy_drop:g} points below the "
        f"float Keras model or agrees with its top-1 answer on fewer than {th.min_agreement:g}% of the photos.",
        f"- Evaluated on {ref.photos} photos from {result.eval_source}, decoded once with "
        "`edge_runner.image.preprocess` (draft decoding on, as the runner) and run through "
        "`edge_runner.model.Classifier` (the runner's own inference path); the Keras model saw the same pixels.",
    ]
    if result.eval_skipped:
        lines.append(f"- {len(result.eval_skipped)} unreadable photos skipped: " + "; ".join(result.eval_skipped[:10]))
    float32 = next((v for v in result.variants if v.variant == "float32" and v.size_bytes), None)
    lines += [
        "",
        "| Variant | Verdict | File | Size (MB) | vs float32 | Input | Output | Accuracy | Change (pt) | Agreement | Max \\|Δp\\| |",
        "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|",
        f"| Keras float (reference) | — | model.keras | — | — | float32 | float32 | {ref.accuracy:.2f}% | — | — | — |",
    ]
    for v in result.variants:
        name = Path(v.path).name if v.path else "(not written)"
        ratio = f"{v.size_bytes / float32.size_bytes:.2f}×" if float32 and v.size_bytes else "—"
        inp, out = _io(v)
        if v.scores and v.comparison:
            measured = (f"{v.scores.accuracy:.2f}% | {v.scores.accuracy - ref.accuracy:+.2f} | "
                        f"{v.comparison.agreement:.2f}% | {v.comparison.max_probability_difference:.4f}")
        else:
            measured = "— | — | — | —"
        verdict = v.status + (" (reused)" if v.reused else "")
        lines.append(f"| {v.variant} | {verdict} | `{name}` | {_mb(v.size_bytes)} | {ratio} | {inp} | {out} | {measured} |")
    for v in result.variants:
        if v.verdict and v.verdict.reasons:
            lines.append(f"\n{v.variant} rejected: {'; '.join(v.verdict.reasons)}.")
        if v.error:
            lines.append(f"\n{v.variant} failed and was not written: {v.error}")

    differing = [v for v in result.variants if v.disagreements]
    if differing:
        lines += ["", "Photos whose top-1 answer differs from the Keras model's (full list in report.json):", ""]
        for v in differing:
            shown = ", ".join(f"`{Path(p).name}`" for p in v.disagreements[:8])
            more = f" and {len(v.disagreements) - 8} more" if len(v.disagreements) > 8 else ""
            lines.append(f"- {v.variant} ({len(v.disagreements)}): {shown}{more}")
    lines += ["", "## Per-class accuracy", "", "| Class | Keras float | " + " | ".join(v.variant for v in result.variants) + " |",
              "|---|---:|" + "---:|" * len(result.variants)]
    for label in ref.per_class:
        cells = [f"{v.scores.per_class.get(label, 0.0):.2f}%" if v.scores else "—" for v in result.variants]
        lines.append(f"| {label} | {ref.per_class[label]:.2f}% | " + " | ".join(cells) + " |")

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
                f"- Tensor types: {', '.join(f'{k} ×{n}' for k, n in g.tensor_types.items())} (no float tensor; uint8 "
                "only at the input and output, so every compute op runs the int8 kernels).",
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
