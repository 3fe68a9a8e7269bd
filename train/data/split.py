"""The training/validation split of the labelled photos that ``train.data.folders`` found.

The split is ``split.json`` (:class:`DataSplit`): a folder with train/validation
folders keeps its split; every other folder is split on its own by a seeded
fraction, stratified by source and class (:func:`split_samples`). Photos of a
``--background`` folder are always split by that rule, and :func:`background_split`
repeats it without the data folder, so evaluation scripts find the photos a model
never trained on. Photos of held-out sources are listed apart (``holdout``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_runner.common.files import write_json
from edge_runner.core.photo import Photo

from ..errors import DataError
from .folders import DEFAULT_BACKGROUND_LABEL, Candidates, Skipped, find_background
from convert.evaluation.sources import Source

from .sources import parse_root, source_names

__all__ = ["DataSplit", "background_split", "split_samples"]


@dataclass
class DataSplit:
    """The readable photos, split; written as ``split.json``.

    Attributes:
        data_dir: the ``--data`` folder (absolute).
        layout: one of the ``LAYOUT_*`` names.
        labels: class names in the model's output order (sorted).
        train, validation: readable samples, sorted by label then path.
        skipped: files left out (unreadable, not images, no label), with reasons.
        background_label: the class meaning "nothing of interest", or ``None``.
        background_dir: the (first) ``--background`` folder its photos came from, or ``None``
            (a class folder of the data, or no background class).
        holdout: readable photos of the held-out sources (never trained on), sorted like ``train``.
        holdout_sources: the ``--holdout-source`` names.
        roots: the ``--data`` and ``--background`` folders, each a source (or several, by prefix).
        exports: the names of the roots that are review exports (split by group, :func:`group_split`).
    """

    data_dir: Path
    layout: str
    labels: tuple[str, ...]
    train: list[Photo]
    validation: list[Photo]
    skipped: list[Skipped]
    background_label: str | None = None
    background_dir: Path | None = None
    holdout: list[Photo] = field(default_factory=list)
    holdout_sources: tuple[str, ...] = ()
    roots: list[Source] = field(default_factory=list)
    exports: tuple[str, ...] = ()

    def counts(self, which: str) -> dict[str, int]:
        """Photos per class in ``"train"`` or ``"validation"``, in label order."""
        counter = Counter(sample.label for sample in getattr(self, which))
        return {label: counter.get(label, 0) for label in self.labels}

    def source_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{source: {"train" | "validation" | "holdout": {label: photos}}}``, sources sorted."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        for which in ("train", "validation", "holdout"):
            for sample in getattr(self, which):
                per_label = table.setdefault(sample.source, {}).setdefault(which, {})
                per_label[sample.label] = per_label.get(sample.label, 0) + 1
        return dict(sorted(table.items()))

    def label_indices(self, which: str) -> np.ndarray:
        """``int32`` class indices ``(N,)`` of ``"train"``, ``"validation"`` or ``"holdout"``."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[sample.label] for sample in getattr(self, which)], dtype=np.int32)

    def imbalance(self) -> float:
        """Largest over smallest training class count (1.0 = balanced)."""
        counts = [n for n in self.counts("train").values()]
        return max(counts) / max(1, min(counts))

    def to_dict(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "layout": self.layout,
            "labels": list(self.labels),
            "background_label": self.background_label,
            "background_dir": None if self.background_dir is None else str(self.background_dir),
            "counts": {"train": self.counts("train"), "validation": self.counts("validation")},
            "roots": [{"name": r.name, "dir": str(r.root), "kind": r.kind} for r in self.roots],
            "holdout_sources": list(self.holdout_sources),
            "review_exports": list(self.exports),
            "sources": self.source_counts(),
            "train": _entries(self.train),
            "validation": _entries(self.validation),
            "holdout": _entries(self.holdout),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataSplit:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            data_dir=Path(data["data_dir"]),
            layout=data.get("layout", ""),
            labels=tuple(data["labels"]),
            train=_samples(data["train"]),
            validation=_samples(data["validation"]),
            skipped=[Skipped(item["path"], item["reason"]) for item in data.get("skipped", [])],
            background_label=data.get("background_label"),
            background_dir=Path(data["background_dir"]) if data.get("background_dir") else None,
            holdout=_samples(data.get("holdout", [])),
            holdout_sources=tuple(data.get("holdout_sources", ())),
            roots=[Source(r["name"], Path(r["dir"]), r["kind"]) for r in data.get("roots", [])],
            exports=tuple(data.get("review_exports", ())),
        )

    def skipped_text(self) -> str:
        """``skipped.txt``: one ``path<TAB>reason`` line per skipped file."""
        return "".join(f"{s.path}\t{s.reason}\n" for s in self.skipped)


def split_samples(
    candidates: Candidates,
    unreadable: dict[str, str],
    *,
    validation_fraction: float,
    seed: int,
) -> DataSplit:
    """Drop unreadable photos, then split (seeded, stratified) every folder that has no validation folder.

    Each folder is split on its own, with its own generator seeded by ``seed``, stratified by
    source and class, so adding a folder never changes another folder's split.

    Args:
        unreadable: ``{path: reason}`` of the candidates that could not be decoded.

    Raises:
        DataError: nothing readable, a class with no readable photo, or too few to split.
    """
    skipped = list(candidates.skipped) + [Skipped(path, reason) for path, reason in unreadable.items()]
    readable = [s for s in candidates.all_samples if s.key not in unreadable]
    total = len(candidates.all_samples)
    if not readable:
        raise DataError(f"--data {candidates.data_dir}: none of the {total} photos could be read (first: {skipped[0].reason})")
    keep = lambda samples: [s for s in samples if s.key not in unreadable]  # noqa: E731
    train, background = keep(candidates.train), keep(candidates.background)
    if candidates.background and not background:
        raise DataError(f"--background {candidates.background_dir}: none of its photos could be read")
    labels = candidates.labels
    present = Counter(s.label for s in train + background)
    missing = [label for label in labels if present[label] == 0]
    if missing:
        raise DataError(f"--data {candidates.data_dir}: class {missing[0]!r} has no readable training photos")
    validation = keep(candidates.validation or [])
    if candidates.validation is not None and not validation:
        raise DataError(f"--data {candidates.data_dir}: none of the validation photos could be read")
    roots = candidates.roots or [Source(candidates.data_dir.name, candidates.data_dir, "data")]
    given: list[Photo] = []
    for root in roots:
        members = [s for s in train + background if _root_of(s, roots) == root.name]
        if root.name in candidates.presplit:
            given += members
            continue
        if not members:
            continue
        # The same seeded, stratified rule for every folder without a validation folder; by group for an export.
        split_root = group_split if root.name in candidates.exports else _stratified_split
        part_train, part_validation = split_root(members, labels, validation_fraction, seed, f"{root.flag} {root.root}")
        given += part_train
        validation += part_validation
    order = {label: i for i, label in enumerate(labels)}
    key = lambda s: (order[s.label], s.key)  # noqa: E731
    skipped.sort(key=lambda s: s.path)
    return DataSplit(
        candidates.data_dir, candidates.layout, labels, sorted(given, key=key), sorted(validation, key=key), skipped,
        candidates.background_label, candidates.background_dir, sorted(keep(candidates.holdout), key=key),
        candidates.holdout_sources, list(candidates.roots), tuple(sorted(candidates.exports)),
    )


def _root_of(sample: Photo, roots: list[Source]) -> str:
    """The root a sample came from: its source's part before ``:`` (the only root when sources are not recorded)."""
    return sample.source.partition(":")[0] if sample.source else roots[0].name


def _stratified_split(
    samples: list[Photo], labels: tuple[str, ...], fraction: float, seed: int, where: str
) -> tuple[list[Photo], list[Photo]]:
    """Per class and source (in order), a seeded permutation holds out ``round(n * fraction)`` photos (at least 1).

    A source with a single photo of a class keeps it for training; a class needs at least two photos.
    """
    rng = np.random.default_rng(seed)
    train: list[Photo] = []
    validation: list[Photo] = []
    for label in labels:
        of_label = [s for s in samples if s.label == label]
        if not of_label:
            continue
        if len(of_label) < 2:
            raise DataError(
                f"{where}: class {label!r} has {len(of_label)} readable photo; at least 2 are needed "
                "to hold one out for validation"
            )
        for source in sorted({s.source for s in of_label}):
            members = sorted((s for s in of_label if s.source == source), key=lambda s: s.key)
            if len(members) < 2:
                train += members
                continue
            n_val = min(len(members) - 1, max(1, round(len(members) * fraction)))
            order = rng.permutation(len(members))
            validation += [members[i] for i in order[:n_val]]
            train += [members[i] for i in order[n_val:]]
    return train, validation


# Fewer groups than this in a review export: all of them train (each visit is needed to learn the door, and one
# group held out would measure one visit); from this many on, round(n * fraction) groups (at least 1) validate.
MIN_GROUPS_TO_VALIDATE = 3


def group_split(samples: list[Photo], labels: tuple[str, ...], fraction: float, seed: int,
                where: str) -> tuple[list[Photo], list[Photo]]:
    """A review export's split: whole groups (the frames of one visit) go to one side, never both.

    Each group counts for the label most of its frames have; per label (in order), a seeded permutation of its
    groups (sorted by name) sends ``round(n_groups * fraction)`` of them, at least 1, to validation, but only when
    the label has at least :data:`MIN_GROUPS_TO_VALIDATE` groups (fewer: all train, the report says 0 validation).
    """
    del where  # an export with one frame of a class is fine: it trains
    rng = np.random.default_rng(seed)
    groups: dict[str, list[Photo]] = {}
    for sample in sorted(samples, key=lambda s: s.key):
        groups.setdefault(sample.group or sample.key, []).append(sample)
    train: list[Photo] = []
    validation: list[Photo] = []
    for label in labels:
        names = sorted(g for g, members in groups.items()
                       if Counter(s.label for s in members).most_common(1)[0][0] == label)
        n_val = max(1, round(len(names) * fraction)) if len(names) >= MIN_GROUPS_TO_VALIDATE else 0
        order = rng.permutation(len(names))
        for k, i in enumerate(order):
            (validation if k < n_val else train).extend(groups[names[i]])
    return train, validation


def _entries(samples: list[Photo]) -> list[dict]:
    return [s.to_dict() for s in samples]


def _samples(entries: list[dict]) -> list[Photo]:
    return [Photo.from_dict(item) for item in entries]


def background_split(
    background: str | os.PathLike[str],
    *,
    label: str = DEFAULT_BACKGROUND_LABEL,
    validation_fraction: float = 0.2,
    seed: int = 0,
    unreadable: frozenset[str] | set[str] = frozenset(),
    source_by: str = "folder",
) -> tuple[list[Path], list[Path]]:
    """``(training, held-out)`` photo paths of a ``--background`` folder, split as a training run splits them.

    The same seeded, stratified rule as :func:`split_samples` (every folder is split on
    its own), so evaluation scripts and tests can find the photos a model never trained
    on. ``unreadable`` lists paths the run skipped (its ``skipped.txt``); ``source_by``
    is the run's ``--source-by``.
    """
    root, samples, label, _ = find_background(background, label, set())
    sources = source_names(parse_root(root, "background"), [s.key for s in samples], source_by)
    samples = [replace(s, source=sources[s.key]) for s in samples if s.key not in unreadable]
    train, validation = _stratified_split(samples, (label,), validation_fraction, seed, f"--background {root}")
    return sorted(s.path for s in train), sorted(s.path for s in validation)
