"""The training/validation split of the labelled photos that ``train.folders`` found.

The split is ``split.json`` (:class:`DataSplit`): a layout with train/validation
folders keeps its split; otherwise each class is split by a seeded, stratified
fraction (:func:`split_samples`). Photos of a ``--background`` folder are always
split by that rule, and :func:`background_split` repeats it without the data
folder, so evaluation scripts find the photos a model never trained on.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runner.common.files import write_json

from .errors import DataError
from .folders import DEFAULT_BACKGROUND_LABEL, Candidates, Sample, Skipped, find_background

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
        background_dir: the ``--background`` folder its photos came from, or ``None``
            (a class folder of the data, or no background class).
    """

    data_dir: Path
    layout: str
    labels: tuple[str, ...]
    train: list[Sample]
    validation: list[Sample]
    skipped: list[Skipped]
    background_label: str | None = None
    background_dir: Path | None = None

    def counts(self, which: str) -> dict[str, int]:
        """Photos per class in ``"train"`` or ``"validation"``, in label order."""
        counter = Counter(sample.label for sample in getattr(self, which))
        return {label: counter.get(label, 0) for label in self.labels}

    def label_indices(self, which: str) -> np.ndarray:
        """``int32`` class indices ``(N,)`` of ``"train"`` or ``"validation"``."""
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
            "train": [{"path": s.path, "label": s.label} for s in self.train],
            "validation": [{"path": s.path, "label": s.label} for s in self.validation],
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
            train=[Sample(item["path"], item["label"]) for item in data["train"]],
            validation=[Sample(item["path"], item["label"]) for item in data["validation"]],
            skipped=[Skipped(item["path"], item["reason"]) for item in data.get("skipped", [])],
            background_label=data.get("background_label"),
            background_dir=Path(data["background_dir"]) if data.get("background_dir") else None,
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
    """Drop unreadable photos, then split (seeded, stratified) when the layout has no validation folder.

    Args:
        unreadable: ``{path: reason}`` of the candidates that could not be decoded.

    Raises:
        DataError: nothing readable, a class with no readable photo, or too few to split.
    """
    skipped = list(candidates.skipped) + [Skipped(path, reason) for path, reason in unreadable.items()]
    readable = [s for s in candidates.all_samples if s.path not in unreadable]
    total = len(candidates.all_samples)
    if not readable:
        raise DataError(f"--data {candidates.data_dir}: none of the {total} photos could be read (first: {skipped[0].reason})")
    train = [s for s in candidates.train if s.path not in unreadable]
    labels = candidates.labels
    background = [s for s in candidates.background if s.path not in unreadable]
    if candidates.background and not background:
        raise DataError(f"--background {candidates.background_dir}: none of its photos could be read")
    present = Counter(s.label for s in train + background)
    missing = [label for label in labels if present[label] == 0]
    if missing:
        raise DataError(f"--data {candidates.data_dir}: class {missing[0]!r} has no readable training photos")
    if candidates.validation is not None:
        validation = [s for s in candidates.validation if s.path not in unreadable]
        if not validation:
            raise DataError(f"--data {candidates.data_dir}: none of the validation photos could be read")
        if background:
            # The same seeded, stratified rule as a class-folder layout's classes.
            bg_train, bg_validation = _stratified_split(
                background, (candidates.background_label,), validation_fraction, seed,
                f"--background {candidates.background_dir}",
            )
            train, validation = train + bg_train, validation + bg_validation
    else:
        train, validation = _stratified_split(train + background, labels, validation_fraction, seed, f"--data {candidates.data_dir}")
    order = {label: i for i, label in enumerate(labels)}
    key = lambda s: (order[s.label], s.path)  # noqa: E731
    skipped.sort(key=lambda s: s.path)
    return DataSplit(
        candidates.data_dir, candidates.layout, labels, sorted(train, key=key), sorted(validation, key=key), skipped,
        candidates.background_label, candidates.background_dir,
    )


def _stratified_split(
    samples: list[Sample], labels: tuple[str, ...], fraction: float, seed: int, where: str
) -> tuple[list[Sample], list[Sample]]:
    """Per label (in order), a seeded permutation holds out ``round(n * fraction)`` photos (at least 1)."""
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    validation: list[Sample] = []
    for label in labels:
        members = sorted((s for s in samples if s.label == label), key=lambda s: s.path)
        if len(members) < 2:
            raise DataError(
                f"{where}: class {label!r} has {len(members)} readable photo; at least 2 are needed "
                "to hold one out for validation"
            )
        n_val = min(len(members) - 1, max(1, round(len(members) * fraction)))
        order = rng.permutation(len(members))
        validation += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, validation


def background_split(
    background: str | os.PathLike[str],
    *,
    label: str = DEFAULT_BACKGROUND_LABEL,
    validation_fraction: float = 0.2,
    seed: int = 0,
    unreadable: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Path], list[Path]]:
    """``(training, held-out)`` photo paths of a ``--background`` folder, split as a training run splits them.

    The same seeded, stratified rule as :func:`split_samples` for a ``--data`` with
    train/validation folders (the background class is then split on its own), so
    evaluation scripts and tests can find the photos a model never trained on.
    ``unreadable`` lists paths the run skipped (its ``skipped.txt``).
    """
    root, samples, label, _ = find_background(background, label, set())
    samples = [s for s in samples if s.path not in unreadable]
    train, validation = _stratified_split(samples, (label,), validation_fraction, seed, f"--background {root}")
    return sorted(Path(s.path) for s in train), sorted(Path(s.path) for s in validation)
