"""What ``python -m convert evaluate`` prints and writes: a text table, ``evaluation.{json,md}`` and ``mistakes.png``.

Every figure comes from :meth:`convert.evaluation.scoring.Evaluation.to_dict` (rates 0–1 there,
percentages here); the files are written atomically (:mod:`edge_runner.common.files`).
"""

from __future__ import annotations

from pathlib import Path

from edge_runner.core.decoder import decode_photo
from edge_runner.common.files import write_atomic, write_json

from .contact_sheet import Tile, contact_sheet, png_bytes
from .scoring import Evaluation

JSON_FILENAME, MARKDOWN_FILENAME, SHEET_FILENAME = "evaluation.json", "evaluation.md", "mistakes.png"
WORST = 24  # tiles in mistakes.png by default


def pct(value: float | None) -> str:
    """A 0–1 rate as ``"97.25%"``; ``"-"`` for none."""
    return "-" if value is None else f"{100 * value:.2f}%"


def wrong_text(wrong: dict[str, int], limit: int = 4) -> str:
    """``{"other": 12, "unknown": 3}`` → ``"other 12, unknown 3"`` (the ``limit`` most frequent); ``"-"`` for none."""
    items = list(wrong.items())
    text = ", ".join(f"{answer} {count}" for answer, count in items[:limit])
    return (text + (f", … {len(items) - limit} more" if len(items) > limit else "")) or "-"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
    columns = list(zip(header, *rows))
    widths = [max(len(c) for c in column) for column in columns]
    # Words left, figures right: a column is text when any of its cells has a letter.
    text = [k == 0 or any(any(ch.isalpha() for ch in c) for c in column[1:]) for k, column in enumerate(columns)]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if left else c.rjust(w) for c, w, left in zip(row, widths, text)).rstrip()

    return [line(header)] + [line(r) for r in rows]


def summary_lines(data: dict, *, markdown: bool = False, worst: int = 10) -> list[str]:
    """The figures of ``Evaluation.to_dict()`` as text tables (``markdown``: as Markdown tables)."""
    background = data["background_label"]
    head = (f"model: {data['model']} ({data['description']}); labels {', '.join(data['labels'])}"
            + (f"; background '{background}'" if background else "")
            + f"; threshold {data['threshold']:g} ({data['threshold_from']})")
    lines = [head, "", f"photos: {data['photos']} ({len(data['skipped'])} unreadable, skipped); "
             f"accuracy {pct(data['accuracy'])} ({data['right']}/{data['photos']}; `unknown` is never right)", ""]
    rows = [[label, str(c["photos"]), pct(c["recall"]), pct(c["precision"]), wrong_text(c["wrong_answers"])]
            for label, c in data["classes"].items()]
    lines += _table(["true class", "photos", "recall", "precision", "wrong answers (count)"], rows, markdown) + [""]
    rows = []
    for s in data["sources"]:
        recalls = ", ".join(f"{label} {pct(c['recall'])}" for label, c in s["classes"].items())
        alarms = f"{pct(s['false_alarm'])} ({s['false_alarms']}/{s['background_photos']})" if s.get(
            "background_photos") else "-"
        wrong: dict[str, int] = {}
        for figures in s["classes"].values():
            for answer, count in figures["wrong_answers"].items():
                wrong[answer] = wrong.get(answer, 0) + count
        wrong = dict(sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0])))
        rows.append([s["name"], s["kind"], str(s["photos"]), pct(s["accuracy"]), recalls, alarms, wrong_text(wrong)])
    lines += _table(["source", "kind", "photos", "accuracy", "recall per class", "false alarms", "wrong answers"],
                    rows, markdown)
    lines += [""] + threshold_lines(data, markdown) + [""]
    mistakes = data["mistakes"]
    lines.append(f"mistakes: {len(mistakes)}; the most confident of each kind (source, true, answer) in turn:")
    rows = [[Path(m["path"]).name, m["source"], m["true"], m["answer"], f"{m['score']:.3f}"] for m in mistakes[:worst]]
    if rows:
        lines += ([""] if markdown else []) + _table(["photo", "source", "true", "answer", "score"], rows, markdown)
    return lines


def threshold_lines(data: dict, markdown: bool) -> list[str]:
    """Per threshold: recall of the real classes and false alarms, over all photos and per source."""
    sources = data["sources"]
    header = ["threshold", "recall", "false alarms"] + [
        f"{'recall' if s['kind'] == 'data' else 'false alarms'}: {s['name']}" for s in sources]
    key = {"data": "recall", "background": "false_alarm"}
    rows = []
    for k, row in enumerate(data["thresholds"]):
        mark = " *" if row["threshold"] == data["threshold"] else ""
        rows.append([f"{row['threshold']:g}{mark}", pct(row["recall"]), pct(row["false_alarm"])]
                    + [pct(s["thresholds"][k][key[s["kind"]]]) for s in sources])
    intro = ("recall = real-class photos given their right label; false alarms = background photos given a real "
             "label; * the threshold in force" if data["background_label"] else
             "recall = photos given their right label at or above the threshold; * the threshold in force")
    return ([intro, ""] if markdown else [intro]) + _table(header, rows, markdown)


def markdown(data: dict, sheet: str | None = SHEET_FILENAME) -> str:
    """``evaluation.md``: the tables, the list of sources and the contact sheet."""
    lines = ["# Evaluation", ""] + summary_lines(data, markdown=True, worst=20) + ["", "## Sources", ""]
    lines += [f"- `{s['name']}` ({s['kind']}): `{s['root']}`" for s in data["sources"]]
    if data["skipped"]:
        lines += ["", "## Unreadable photos (skipped)", ""] + [f"- {s}" for s in data["skipped"]]
    if sheet:
        lines += ["", "## The most confident mistakes", "", f"![most confident mistakes]({sheet})"]
    return "\n".join(lines) + "\n"


def mistake_tiles(evaluation: Evaluation, count: int = WORST) -> list[Tile]:
    """The first ``count`` mistakes of :meth:`Evaluation.mistakes_by_kind` as tiles.

    Each tile: the pixels the model saw (uint8 ``(H, W, 3)``, re-decoded), its answer and score, the true label,
    the source and file name.
    """
    tiles = []
    for i in evaluation.mistakes_by_kind()[:count]:
        photo = evaluation.photos[i]
        decoded = decode_photo(photo.path, evaluation.spec)
        if decoded.pixels is None:  # changed on disk since it was scored
            continue
        score = float(evaluation.probabilities[i].max())
        tiles.append(Tile(decoded.pixels, (f"answer: {evaluation.answers[i]} {score:.3f}", f"true: {photo.label}",
                                          f"{photo.source}: {Path(photo.path).name}")))
    return tiles


def write_evaluation(evaluation: Evaluation, out: Path, data: dict | None = None, worst: int = WORST) -> list[Path]:
    """``out/evaluation.json``, ``out/evaluation.md`` and ``out/mistakes.png`` (each atomically); returns them."""
    data = evaluation.to_dict() if data is None else data
    sheet = contact_sheet(mistake_tiles(evaluation, worst), empty="no mistakes")
    return [write_json(out / JSON_FILENAME, data), write_atomic(out / MARKDOWN_FILENAME, markdown(data).encode()),
            write_atomic(out / SHEET_FILENAME, png_bytes(sheet))]
