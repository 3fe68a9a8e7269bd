"""Figures per source, and what the background photos are still mistaken for.

A model can score well on photos like its training photos and badly on photos
from elsewhere, so the report measures every source apart, on its validation
photos and, for a held-out source (``--holdout-source``), on all of its photos.
Answers are the runner's: the top label, or ``unknown`` below the threshold.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_runner.core.photo import Photo
from edge_runner.core.spec import UNKNOWN_LABEL


# Look-alike groups: a photo's name without its trailing number ("caltech101_Leopards_image_0012" →
# "caltech101_Leopards_image"); groups smaller than this are not listed on their own.
MIN_GROUP = 3
_TRAILING_NUMBER = re.compile(r"[\s._-]*\(?\d+\)?$")


@dataclass(frozen=True)
class SourceFigures:
    """One source's figures on one part of the split.

    Attributes:
        source: the source name; ``part``: ``"validation"`` or ``"holdout"``.
        photos: how many photos; ``right``: how many got their label (0–1 as ``accuracy``).
        recall: ``{label: share of that class's photos given their label}`` for the real classes present.
        false_alarm: share of the background photos given a real label, or ``None`` without any.
        background: how many background photos.
    """

    source: str
    part: str
    photos: int
    right: int
    accuracy: float
    recall: dict[str, float] = field(default_factory=dict)
    false_alarm: float | None = None
    background: int = 0


@dataclass(frozen=True)
class Confusion:
    """A group of background photos (by name) that the model still calls something of interest."""

    group: str
    photos: int
    false_alarms: int
    rate: float
    answers: dict[str, int]


def answers_of(probabilities: np.ndarray, labels: Sequence[str], threshold: float | None) -> list[str]:
    """The runner's answer per row of ``probabilities`` ``(N, K)``: top label, or ``unknown`` below ``threshold``."""
    top = probabilities.argmax(axis=1)
    scores = probabilities.max(axis=1)
    floor = threshold or 0.0
    return [labels[i] if score >= floor else UNKNOWN_LABEL for i, score in zip(top, scores)]


def figures_of(source: str, part: str, rows: Sequence[tuple[Photo, str]], background_label: str | None) -> SourceFigures:
    """:class:`SourceFigures` of ``rows`` (``(sample, answer)`` pairs), named ``source``."""
    right = sum(s.label == a for s, a in rows)
    recall = {}
    for label in sorted({s.label for s, _ in rows} - {background_label}):
        of_label = [a == label for s, a in rows if s.label == label]
        recall[label] = sum(of_label) / len(of_label)
    background = [a for s, a in rows if s.label == background_label]
    false_alarm = None
    if background:
        false_alarm = sum(a not in (background_label, UNKNOWN_LABEL) for a in background) / len(background)
    return SourceFigures(source, part, len(rows), right, right / max(1, len(rows)), recall, false_alarm, len(background))


def figures_by_source(samples: Sequence[Photo], answers: Sequence[str], part: str,
                      background_label: str | None) -> list[SourceFigures]:
    """:class:`SourceFigures` for each source of ``samples`` (sorted by name)."""
    pairs = list(zip(samples, answers))
    return [figures_of(source, part, [(s, a) for s, a in pairs if s.source == source], background_label)
            for source in sorted({s.source for s in samples})]


def group_of(path: str) -> str:
    """``.../caltech101_Leopards_image_0012.jpg`` → ``caltech101_Leopards_image``."""
    stem = Path(path).stem
    return _TRAILING_NUMBER.sub("", stem) or stem


def confusions(samples: Sequence[Photo], answers: Sequence[str], background_label: str | None,
               limit: int = 15) -> list[Confusion]:
    """The background name groups most often given a real label, worst first (groups of ≥ ``MIN_GROUP`` photos)."""
    if background_label is None:
        return []
    groups: dict[str, list[str]] = {}
    for sample, answer in zip(samples, answers):
        if sample.label == background_label:
            groups.setdefault(group_of(sample.key), []).append(answer)
    found = []
    for group, given in groups.items():
        wrong = Counter(a for a in given if a not in (background_label, UNKNOWN_LABEL))
        if len(given) >= MIN_GROUP and wrong:
            total = sum(wrong.values())
            found.append(Confusion(group, len(given), total, total / len(given), dict(sorted(wrong.items()))))
    found.sort(key=lambda c: (-c.rate, -c.false_alarms, c.group))
    return found[:limit]


def breakdown(split: Any, validation_probabilities: np.ndarray, holdout_probabilities: np.ndarray | None,
              threshold: float | None) -> dict[str, Any]:
    """``report.json``'s ``per_source`` section: figures per source, pooled held-out figures, look-alikes.

    Args:
        split: the run's :class:`train.data.split.DataSplit`.
        validation_probabilities: ``float32`` ``(len(split.validation), K)``.
        holdout_probabilities: ``float32`` ``(len(split.holdout), K)``, or ``None`` without held-out photos.
        threshold: the runner's threshold (the recommended one), or ``None``.
    """
    labels, background = split.labels, split.background_label
    parts = {"validation": (list(split.validation), answers_of(validation_probabilities, labels, threshold))}
    if holdout_probabilities is not None and len(split.holdout):
        parts["holdout"] = (list(split.holdout), answers_of(holdout_probabilities, labels, threshold))
    figures, overall = [], {}
    for part, (samples, answers) in parts.items():
        figures += figures_by_source(samples, answers, part, background)
        overall[part] = asdict(figures_of("all", part, list(zip(samples, answers)), background))
    every = [pair for samples, answers in parts.values() for pair in zip(samples, answers)]
    return {
        "threshold": threshold,
        "holdout_sources": list(split.holdout_sources),
        "sources": [asdict(f) for f in figures],
        "validation": overall["validation"],
        "holdout": overall.get("holdout"),
        "confusions": [asdict(c) for c in confusions([s for s, _ in every], [a for _, a in every], background)],
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def headline(per_source: dict[str, Any] | None) -> str | None:
    """The report's first figure when sources were held out: how the model does on photos from elsewhere."""
    held = (per_source or {}).get("holdout")
    if not held:
        return None
    recall = ", ".join(f"{label} {_pct(value)}" for label, value in held["recall"].items())
    parts = [f"{held['photos']} photos of held-out sources ({', '.join(per_source['holdout_sources'])}), never trained on"]
    if recall:
        parts.append(f"right label {recall}")
    if held["false_alarm"] is not None:
        parts.append(f"background photos called something {_pct(held['false_alarm'])}")
    return "; ".join(parts)


def markdown_lines(per_source: dict[str, Any] | None) -> list[str]:
    """The report's "Per source" section (empty without figures)."""
    if not per_source or not per_source["sources"]:
        return []
    labels = sorted({label for f in per_source["sources"] for label in f["recall"]})
    threshold = per_source["threshold"]
    lines = [
        "",
        "## Per source",
        "",
        "Each source measured on its own (answers as the runner gives them"
        + (f", threshold {threshold:g}" if threshold else "") + "). `holdout`: a source never trained on.",
        "",
        "| part | source | photos | right | " + " | ".join(f"{label} recall" for label in labels) + " | false alarms |",
        "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in labels) + " | ---: |",
    ]
    rows = per_source["sources"] + [r for r in (per_source["validation"], per_source["holdout"]) if r]
    for f in rows:
        name = f"**{f['source']}**" if f["source"] == "all" else f["source"]
        lines.append(f"| {f['part']} | {name} | {f['photos']} | {_pct(f['accuracy'])} | "
                     + " | ".join(_pct(f["recall"].get(label)) for label in labels) + f" | {_pct(f['false_alarm'])} |")
    if per_source["confusions"]:
        lines += ["", "Background photos still called something of interest, by name group (worst first):", "",
                  "| group | photos | called | rate |", "| --- | ---: | --- | ---: |"]
        for c in per_source["confusions"]:
            called = ", ".join(f"{label} {n}" for label, n in c["answers"].items())
            lines.append(f"| {c['group']} | {c['photos']} | {called} | {_pct(c['rate'])} |")
    return lines
