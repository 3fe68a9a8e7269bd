"""``gate-device``'s report: ``report.json``, ``report.md`` and the thumbnails ``fixed.png`` and ``broke.png``."""

from __future__ import annotations

from pathlib import Path

from edge_runner.common.files import write_atomic, write_json

from ..evaluation.contact_sheet import Tile, contact_sheet, png_bytes
from ..gate.significance import format_p
from .gate import DeviceGate, Frame

REPORT_JSON, REPORT_MD, FIXED_PNG, BROKE_PNG = "report.json", "report.md", "fixed.png", "broke.png"
MAX_TILES = 60  # thumbnails per sheet (the lists in report.json are complete)


def _frame(frame: Frame) -> dict:
    return {"path": frame.path, "truth": frame.truth, "part": frame.part, "source": frame.source,
            "trained": frame.trained, "device": frame.device, "device_score": round(frame.device_score, 4),
            "new": frame.new, "new_score": round(frame.new_score, 4)}


def gate_json(gate: DeviceGate) -> dict:
    """Everything the verdict rests on, with every fixed and broken photo listed."""
    p = gate.paired
    reviewed = gate.part("reviewed")
    return {
        "accepted": gate.accepted, "reasons": gate.reasons,
        "new_model": {"path": gate.new_model, "sha256": gate.new_sha256, "int8_export_gate": gate.int8_status},
        "device_model": {"path": gate.device_model, "sha256": gate.device_sha256},
        "labels": list(gate.labels), "min_fixed": gate.min_fixed, "alpha": gate.alpha,
        "old_validation": {"photos": p.photos, "device_right": p.both_right + p.lost, "new_right": p.both_right + p.gained,
                           "lost": p.lost, "gained": p.gained, "change_points": p.change_points, "mcnemar_p": p.p_value,
                           "interval": list(p.interval), "confidence": p.confidence},
        "reviewed": {"frames": len(reviewed), "device_wrong": gate.device_wrong, "fixed": gate.fixed,
                     "fixed_fraction": gate.fixed_fraction, "new_wrong": sum(not f.new_right for f in reviewed),
                     "not_trained_on": {"device_wrong": gate.held_out_wrong, "fixed": gate.held_out_fixed}},
        "fixed": [_frame(f) for f in gate.frames if f.fixed],
        "broke": [_frame(f) for f in gate.frames if f.broke],
        "seconds": gate.seconds,
    }


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def gate_markdown(gate: DeviceGate) -> str:
    p = gate.paired
    fixed = [f for f in gate.frames if f.fixed]
    broke = [f for f in gate.frames if f.broke]
    verdict = "**accepted**" if gate.accepted else "**refused**: " + "; ".join(gate.reasons)
    lines = [
        "# Gate against the model on the device", "",
        f"Verdict: {verdict}.", "",
        f"- new model: `{gate.new_model}` (sha256 `{gate.new_sha256[:16]}…`; export gate vs its float model: "
        f"{gate.int8_status})",
        f"- device model: `{gate.device_model}` (sha256 `{gate.device_sha256[:16]}…`)", "",
        "| check | device | new | result |", "| --- | ---: | ---: | --- |",
        f"| old validation photos ({p.photos}, top-1) | {_pct(p.both_right + p.lost, p.photos)} | "
        f"{_pct(p.both_right + p.gained, p.photos)} | {p.lost} lost, {p.gained} gained, McNemar p {format_p(p.p_value)} "
        f"(refused if < {gate.alpha:g} and more lost) |",
        f"| reviewed frames the device got wrong ({gate.device_wrong}) | 0 | {gate.fixed} fixed | "
        f"{_pct(gate.fixed, gate.device_wrong)} (at least {100 * gate.min_fixed:.0f}% needed) |",
        f"| … of them not trained on ({gate.held_out_wrong}) | 0 | {gate.held_out_fixed} fixed | "
        f"{_pct(gate.held_out_fixed, gate.held_out_wrong)} |", "",
        "Reviewed frames are answered at each model's own threshold (a frame reviewed \"nothing\" is right as the "
        "background label or `unknown`); old validation photos by top-1, as in the export gate.", "",
        f"## Fixed ({len(fixed)}): `{FIXED_PNG}`", "", *_rows(fixed), "",
        f"## Broke ({len(broke)}): `{BROKE_PNG}`", "", *_rows(broke), "",
    ]
    return "\n".join(lines)


def _rows(frames: list[Frame]) -> list[str]:
    if not frames:
        return ["None."]
    rows = ["| photo | part | truth | device | new |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| `{Path(f.path).name}` | {f.part}{' (trained on)' if f.trained else ''} | {f.truth} | "
             f"{f.device} {f.device_score:.2f} | {f.new} {f.new_score:.2f} |" for f in frames[:MAX_TILES * 2]]
    return rows


def _sheet(gate: DeviceGate, which: str, empty: str) -> bytes:
    tiles = [Tile(gate.pixels[i], (f"{f.truth}: {f.device} -> {f.new}", f"{f.part} {f.source}", Path(f.path).name))
             for i, f in enumerate(gate.frames) if getattr(f, which)][:MAX_TILES]
    return png_bytes(contact_sheet(tiles, empty=empty))


def write_gate(gate: DeviceGate, out: Path) -> list[Path]:
    """Write the four files into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / REPORT_JSON, gate_json(gate), indent=1)
    write_atomic(out / REPORT_MD, gate_markdown(gate).encode("utf-8"))
    write_atomic(out / FIXED_PNG, _sheet(gate, "fixed", "nothing fixed"))
    write_atomic(out / BROKE_PNG, _sheet(gate, "broke", "nothing broke"))
    return [out / name for name in (REPORT_JSON, REPORT_MD, FIXED_PNG, BROKE_PNG)]
