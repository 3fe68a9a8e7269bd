"""A run's photos, ready to train on: found, decoded once, split, written down, weighted.

Stage "data" of :func:`train.training.run_training`. Decoding uses the runner's
preprocessing (:mod:`train.data.pixels`), so training sees exactly the pixels the
device will; ``config.json``, ``split.json`` and ``skipped.txt`` are written
before any training so an interrupted run can be resumed and audited.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from edge_runner.common.run_layout import SKIPPED_FILENAME, RunLayout
from edge_runner.common.files import write_atomic
from edge_runner.core.spec import InputSpec

from ..config import TrainConfig
from edge_runner.core.photo import Photo

from .folders import Candidates
from .split import DataSplit, split_samples
from ..output import ensure_writable
from .pixels import DecodedPixels, decode_photos

log = logging.getLogger(__name__)


@dataclass
class Journal:
    """What a run notes on its way, for the report: ``notes`` (sentences) and ``timings`` (seconds per step)."""

    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Dataset:
    """The decoded, split photos of a run.

    Attributes:
        split: which photo is for training, validation, or skipped (and why).
        decoded: every photo's pixels, ``uint8`` RGB 0–255 ``(N, H, W, 3)`` in ``decoded.array``.
        cache_dir: where decoded photos and backbone activations are cached.
        class_weights: ``{label: weight}`` used in the loss, or None.
        train_rows, val_rows, holdout_rows: int row indices into ``decoded.array``, in split order.
        y_train, y_val, y_holdout: int32 class indices (into ``split.labels``), same order.
        sample_weights: float32 ``(len(y_train),)``, each training photo's weight in the loss: its class
            weight (1 without), times its source weight with ``--balance-sources``.
    """

    split: DataSplit
    decoded: DecodedPixels
    cache_dir: Path
    class_weights: dict[str, float] | None
    train_rows: np.ndarray
    val_rows: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    sample_weights: np.ndarray
    holdout_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    y_holdout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))


def default_name(labels: tuple[str, ...], data_dir: Path, background_label: str | None = None) -> str:
    """``("cats", "dogs")`` → ``"cats_dogs"``; many or long labels → the data folder's name.

    The background class is left out of the name (``("cats", "dogs", "other")`` with
    background ``other`` → ``"cats_dogs"``): it says what the model looks for.
    """
    labels = tuple(label for label in labels if label != background_label) or labels
    joined = "_".join(labels)
    if len(labels) <= 3 and len(joined) <= 32:
        return joined
    return data_dir.name or "edgekit-classifier"


def class_weights_for(split: DataSplit, config: TrainConfig) -> dict[str, float] | None:
    """``n / (K * n_class)`` per class when ``--class-weights on``, or ``auto`` and imbalanced."""
    ratio = split.imbalance()
    wanted = config.class_weights == "on" or (config.class_weights == "auto" and ratio >= config.imbalance_ratio)
    if not wanted:
        return None
    counts = split.counts("train")
    total = sum(counts.values())
    return {label: round(total / (len(counts) * count), 6) for label, count in counts.items()}


def source_weights(samples: list[Photo]) -> np.ndarray:
    """``float32`` ``(len(samples),)``: within each class, every source weighs the same in all.

    A class with photos from sources of sizes n_1 … n_k gets weight ``n / (k * n_s)`` on each
    photo of source s (n = n_1 + … + n_k), so the class keeps its total weight ``n`` and a
    small source (the photos of one's own door) counts as much as a large one.
    """
    counts = Counter((s.label, s.source) for s in samples)
    per_label = Counter(s.label for s in samples)
    sources_of = Counter(label for label, _ in counts)
    return np.array([per_label[s.label] / (sources_of[s.label] * counts[(s.label, s.source)]) for s in samples],
                    dtype=np.float32)


def source_factors(samples: list[Photo], given: list[str], exports: tuple[str, ...]) -> tuple[np.ndarray, dict[str, str]]:
    """``float32`` ``(len(samples),)`` loss factors per training photo from ``--source-weight`` and review exports.

    ``given``: ``NAME=W`` (a root's name covers its ``NAME:prefix`` sources). A review export not named there
    weighs, per class, as much as an average source of that class: ``n_class / (k_class * n_export)`` per frame
    (at least 1), as ``--balance-sources`` would weigh it, the other sources left as they are.
    Returns the factors and ``{source: "W" or "auto W per class"}`` for the report.

    Raises:
        ConfigError: a malformed entry, a weight that is not a positive number, or an unknown source.
    """
    from ..errors import ConfigError
    from .sources import held_out

    weights: dict[str, float] = {}
    for entry in given:
        name, _, text = str(entry).rpartition("=")
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not name or not value > 0 or value == float("inf"):
            raise ConfigError(f"--source-weight must be NAME=W with W a positive number, received {entry!r}")
        if not any(held_out(s.source, [name]) for s in samples):
            raise ConfigError(f"--source-weight {entry}: no training photos from source {name!r} "
                              f"(sources: {sorted({s.source for s in samples})})")
        weights[name] = value
    factors = np.ones(len(samples), dtype=np.float32)
    given_to: dict[str, str] = {}
    auto: dict[str, dict[str, float]] = {}
    per_label = Counter(s.label for s in samples)
    counts = Counter((s.label, s.source) for s in samples)
    sources_of = Counter(label for label, _ in counts)
    for i, s in enumerate(samples):
        name = next((n for n in weights if held_out(s.source, [n])), None)
        if name is not None:
            factors[i] = weights[name]
            given_to[s.source] = f"{weights[name]:g}"
        elif s.source in exports:
            factors[i] = max(1.0, per_label[s.label] / (sources_of[s.label] * counts[(s.label, s.source)]))
            auto.setdefault(s.source, {})[s.label] = float(factors[i])
    notes = {**given_to, **{source: "auto: " + ", ".join(f"{label} {w:.2f}" for label, w in per.items())
                            for source, per in auto.items()}}
    return factors, notes


def load_dataset(config: TrainConfig, candidates: Candidates, spec: InputSpec, journal: Journal, *,
                 decode: Callable[..., DecodedPixels] = decode_photos) -> Dataset:
    """Decode ``candidates`` for ``spec``, split them, write the run's data files into ``config.out``.

    ``decode`` is :func:`train.data.pixels.decode_photos` or, with ``--strategy multi-worker``, this
    worker's share of it (``train.fitting.distributed``).

    Raises:
        ConfigError: ``--cache-dir`` or ``--out`` cannot be written.
        DataError: too few readable photos to split.
    """
    out = Path(config.out)
    layout = RunLayout(out)
    if candidates.background_label:
        log.info(
            "background class: %r (%s)",
            candidates.background_label,
            f"{len(candidates.background)} photos from "
            + ", ".join(str(r.root) for r in candidates.roots if r.kind == "background")
            if candidates.background_dir else "a class folder",
        )
    log.info("data: %d photos in %d classes (%s) under %s",
             len(candidates.all_samples), len(candidates.labels), candidates.layout, ", ".join(map(str, config.data)))
    if candidates.holdout:
        log.info("held out (never trained on, only measured): %d photos of %s",
                 len(candidates.holdout), ", ".join(config.holdout_sources))
    cache_dir = ensure_writable(config.resolved_cache_dir(), "--cache-dir")
    decoded = decode([s.key for s in candidates.all_samples], spec, cache_dir=cache_dir, workers=config.workers,
                     progress=config.verbose >= 1)
    journal.timings["decode"] = decoded.seconds
    split = split_samples(candidates, decoded.errors, validation_fraction=config.validation_fraction, seed=config.seed)
    ensure_writable(out, "--out")
    replace(config, resume=False, overwrite=False).save(layout.config)
    split.save(layout.split)
    write_atomic(layout.skipped, split.skipped_text().encode("utf-8"))
    _log_split(split, layout.skipped)
    weights = class_weights_for(split, config)
    if split.imbalance() >= config.imbalance_ratio:
        log.warning(
            "warning: the training classes are imbalanced (largest/smallest = %.1f: %s); %s",
            split.imbalance(),
            split.counts("train"),
            f"using class weights {weights}" if weights else "class weights are off (--class-weights off)",
        )
    if split.skipped:
        journal.notes.append(f"{len(split.skipped)} files were skipped (unreadable or not images); see {SKIPPED_FILENAME}.")
    y_train = split.label_indices("train")
    sample_weights = np.ones(len(y_train), dtype=np.float32)
    if weights:
        sample_weights = np.array([weights[label] for label in split.labels], dtype=np.float32)[y_train]
    if config.balance_sources:
        sample_weights = sample_weights * source_weights(split.train)
        journal.notes.append("Sources were balanced: within each class every source weighed the same in the loss "
                             "(--balance-sources).")
    if config.source_weights or split.exports:
        factors, weighed = source_factors(split.train, config.source_weights, split.exports)
        sample_weights = sample_weights * factors
        for source, text in weighed.items():
            log.info("source %s: each training photo's loss weighted %s", source, text)
        if weighed:
            journal.notes.append("Source weights (--source-weight, review exports: as an average source of the "
                                 "class): " + "; ".join(f"{k} {v}" for k, v in weighed.items()) + ".")
    return Dataset(
        split=split,
        decoded=decoded,
        cache_dir=cache_dir,
        class_weights=weights,
        train_rows=decoded.rows([s.key for s in split.train]),
        val_rows=decoded.rows([s.key for s in split.validation]),
        y_train=y_train,
        y_val=split.label_indices("validation"),
        sample_weights=sample_weights,
        holdout_rows=decoded.rows([s.key for s in split.holdout]),
        y_holdout=split.label_indices("holdout"),
    )


def _log_split(split: DataSplit, skipped_file: Path) -> None:
    train, val = split.counts("train"), split.counts("validation")
    for label in split.labels:
        log.info("  %-20s %6d training, %5d validation photos", label, train[label], val[label])
    if len(split.source_counts()) > 1:
        for source, parts in split.source_counts().items():
            log.info("  source %-30s %s", source,
                     ", ".join(f"{which} {sum(parts[which].values())}" for which in ("train", "validation", "holdout")
                               if which in parts))
    if split.skipped:
        log.warning("skipped %d unreadable or non-image files (listed in %s), e.g. %s",
                    len(split.skipped), skipped_file, split.skipped[0].reason)
