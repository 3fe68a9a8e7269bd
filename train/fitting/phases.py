"""Stage "fit" of a run: phase 1 trains the head on the frozen backbone's features, phase 2 fine-tunes.

Phase 1 (``head``): the backbone's activations of every photo are computed once
(cached on disk, :mod:`train.model.features`), pooled, and only the classification
head is trained on them. Phase 2 (``fine_tune``): the top of the backbone is
trained at a low learning rate with BatchNorm in inference mode, either on cached
activations of a few fixed views per photo (``--fine-tune-mode cached``, fast) or
through the whole network with fresh augmentation (``full``); a run from scratch
(``--weights none``) skips phase 1 and trains everything in phase 2. The epoch loop,
its checkpoints and resume are :mod:`train.fitting.fit`'s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_runner.common.run_layout import RunLayout

from ..model import features as feats
from . import distributed
from .batches import epoch_batches, fixed_batches
from ..config import TrainConfig
from ..data.dataset import Dataset, Journal
from .fit import PHASES, Checkpoints, EpochHook, Phase, PhaseState, run_phase
from ..model.network import Network, compile_for_training, trainable_parameter_count


@dataclass
class Fitted:
    """The outcome of stage "fit": each phase's final state (epochs, history, best epoch), whether it ran, and how
    many photo-views' activations were computed."""

    states: dict[str, PhaseState]
    ran: dict[str, bool]
    computed: int = 0  # photo-views whose backbone activations were computed (not read from the cache)


class Activations:
    """The frozen backbone's activations of some photos in one view, from the on-disk cache when present.

    The cache is kept per chunk of decoded photos (a folder, :func:`train.data.pixels.chunk_of_rows`) and keyed by
    the bottom's own weights, so a retrain that adds a folder, or starts from a run's model (whose layers below the
    cut are the pretrained ones), computes only the new photos. ``computed`` counts the photo-views computed.
    """

    def __init__(self, config: TrainConfig, network: Network, data: Dataset):
        self.config, self.network, self.data = config, network, data
        self.weights_id = feats.bottom_identity(network) if not config.from_scratch else "none"
        self.computed = 0

    def __call__(self, rows: np.ndarray, view: int, role: str) -> np.ndarray:
        """``float16`` activations ``(len(rows), *cut_shape)`` of ``decoded.array[rows]`` seen as ``view`` (0: the photo)."""
        decoded = self.data.decoded
        if decoded.chunks is None:
            return self._part(rows, rows, decoded.key, view, role)
        which = decoded.chunk_index[rows]
        parts = []
        for c in dict.fromkeys(which.tolist()):
            positions = np.flatnonzero(which == c)
            parts.append((positions, self._part(rows[positions], decoded.chunk_row[rows[positions]], decoded.chunks[c],
                                                view, role)))
        if len(parts) == 1:
            return parts[0][1]
        out = np.empty((len(rows), *self.network.cut_shape), dtype=feats.ACTIVATION_DTYPE)
        for positions, values in parts:
            out[positions] = values
        return out

    def _part(self, rows: np.ndarray, key_rows: np.ndarray, pixel_key: str, view: int, role: str) -> np.ndarray:
        config, decoded = self.config, self.data.decoded
        cache_file = feats.activation_cache_file(self.data.cache_dir, pixel_key=pixel_key, rows=key_rows,
                                                 network=self.network, weights_id=self.weights_id, view=view,
                                                 seed=config.seed, degrade=config.degradation)
        if cache_file is None or not cache_file.is_file():
            self.computed += len(rows)
        return feats.compute_activations(self.network, decoded.array, rows, view=view, seed=config.seed,
                                         batch_size=config.batch_size, cache_file=cache_file,
                                         desc=f"backbone features, {role}, view {view}",
                                         progress=config.verbose >= 1 and len(rows) > 0, degrade=config.degradation)


def fit_phases(config: TrainConfig, network: Network, data: Dataset, strategy: Any, *, resumed: bool, journal: Journal,
               on_epoch_end: EpochHook | None = None) -> Fitted:
    """Run the phases ``config`` asks for, resuming from ``checkpoints/`` when ``resumed``.

    ``strategy`` is the ``tf.distribute`` strategy whose scope compiles and fits the models.
    Adds ``features``, ``head_phase`` and ``fine_tune_phase`` seconds to ``journal.timings``.
    """
    config = distributed.per_worker_config(config)  # multi-worker: --batch-size is split over the workers
    checkpoints = distributed.synced_checkpoints(Checkpoints(RunLayout(Path(config.out)).checkpoints))
    states = checkpoints.load() if resumed else {name: PhaseState() for name in PHASES}
    if resumed:
        journal.notes.append("This run was resumed from a checkpoint; timings cover the last process only.")
    run_head, run_fine_tune = plan_phases(config, network, journal)
    run = partial(run_phase, states=states, checkpoints=checkpoints, weights_model=network.inference, seed=config.seed,
                  progress=config.verbose >= 1, random_models=[network.augmented, network.fine_tune, network.head],
                  on_epoch_end=on_epoch_end)
    activations = Activations(config, network, data)
    view0 = val_activations = None
    if not config.from_scratch and (run_head or run_fine_tune):
        start = time.perf_counter()
        view0 = activations(data.train_rows, 0, "training")
        val_activations = activations(data.val_rows, 0, "validation")
        journal.timings["features"] = time.perf_counter() - start
    if run_head:
        start = time.perf_counter()
        phase = head_phase(config, network, data, view0, val_activations, strategy)
        with strategy.scope():
            run(distributed.adapt_phase(phase))  # multi-worker: steps and validation synchronised over the workers
        journal.timings["head_phase"] = time.perf_counter() - start + journal.timings.get("features", 0.0)
    if run_fine_tune:
        start = time.perf_counter()
        phase = fine_tune_phase(config, network, data, view0, val_activations, activations, strategy, journal)
        with strategy.scope():
            run(distributed.adapt_phase(phase))  # multi-worker: steps and validation synchronised over the workers
        journal.timings["fine_tune_phase"] = time.perf_counter() - start
    if view0 is not None:
        journal.notes.append(f"Backbone activations: {activations.computed} photo-view(s) computed, the others read "
                             "from the cache (kept per folder of photos).")
    return Fitted(states=states, ran={"head": run_head, "fine_tune": run_fine_tune}, computed=activations.computed)


def plan_phases(config: TrainConfig, network: Network, journal: Journal) -> tuple[bool, bool]:
    """``(run the head phase, run the fine-tuning phase)``; notes why a phase is skipped."""
    run_head = not config.from_scratch and config.epochs > 0
    backbone_trainable = trainable_parameter_count(network.fine_tune) - trainable_parameter_count(network.head)
    run_fine_tune = config.fine_tune_epochs > 0 and (config.from_scratch or backbone_trainable > 0)
    if not config.from_scratch and config.fine_tune_epochs > 0 and not run_fine_tune:
        journal.notes.append("No backbone layer with weights lies above the cut: the fine-tuning phase was skipped.")
    if config.from_scratch:
        journal.notes.append("--weights none: no pretrained features to train a head on, so phase 1 was skipped; "
                             "phase 2 trained the whole network (BatchNorm included) at --learning-rate.")
    return run_head, run_fine_tune


def head_phase(config: TrainConfig, network: Network, data: Dataset, view0: np.ndarray, val_activations: np.ndarray,
               strategy: Any) -> Phase:
    """Phase 1: the head alone, on pooled activations of the photos themselves (view 0)."""
    batch, progress = config.batch_size, config.verbose >= 1
    pooled_train = feats.pool_activations(network, view0, batch_size=batch, desc="pool features, training", progress=progress)
    pooled_val = feats.pool_activations(network, val_activations, batch_size=batch, desc="pool features, validation",
                                        progress=progress)
    with strategy.scope():
        compile_for_training(network.head, config.learning_rate)
    return Phase(
        name="head",
        train_model=network.head,
        train_data=epoch_batches([pooled_train], data.y_train, data.sample_weights, batch, config.seed, "head"),
        steps=math.ceil(len(data.y_train) / batch),
        val_model=network.head,
        val_data=fixed_batches(pooled_val, data.y_val, batch),
        epochs=config.epochs,
        patience=config.patience,
    )


def fine_tune_phase(config: TrainConfig, network: Network, data: Dataset, view0: np.ndarray | None,
                    val_activations: np.ndarray | None, activations: Activations, strategy: Any, journal: Journal) -> Phase:
    """Phase 2: the whole network from scratch, the top layers through the full network, or on cached views."""
    batch, pixels = config.batch_size, data.decoded.array
    if config.from_scratch:
        with strategy.scope():
            compile_for_training(network.augmented, config.learning_rate)
            compile_for_training(network.inference, config.learning_rate)
        train_model, val_model = network.augmented, network.inference
        train_data = epoch_batches([pixels], data.y_train, data.sample_weights, batch, config.seed, "fine_tune", data.train_rows,
                                   degrade=config.degradation)
        val_data = fixed_batches(pixels, data.y_val, batch, data.val_rows)
    elif config.fine_tune_mode == "full":
        with strategy.scope():
            compile_for_training(network.augmented, config.fine_tune_learning_rate)
            compile_for_training(network.fine_tune, config.fine_tune_learning_rate)
        train_model, val_model = network.augmented, network.fine_tune
        train_data = epoch_batches([pixels], data.y_train, data.sample_weights, batch, config.seed, "fine_tune", data.train_rows,
                                   degrade=config.degradation)
        val_data = fixed_batches(val_activations, data.y_val, batch)
        journal.notes.append("Fine-tuning ran every step through the whole network with fresh augmentation (--fine-tune-mode full).")
    else:
        views = [view0] + [activations(data.train_rows, v, "training") for v in range(1, config.augment_views)]
        with strategy.scope():
            compile_for_training(network.fine_tune, config.fine_tune_learning_rate)
        train_model = val_model = network.fine_tune
        train_data = epoch_batches(views, data.y_train, data.sample_weights, batch, config.seed, "fine_tune")
        val_data = fixed_batches(val_activations, data.y_val, batch)
        journal.notes.append(
            f"Fine-tuning trained the top layers on cached activations of {config.augment_views} fixed view(s) per "
            "training photo (the photo, its mirror image, then random flips/rotations/zooms/contrast), not on fresh "
            "augmentation every epoch (--fine-tune-mode cached)."
        )
    if config.degradation:
        cached = not config.from_scratch and config.fine_tune_mode == "cached"
        journal.notes.append(f"{config.degrade:.0%} of the photos {'in each random view' if cached else 'of each batch'} "
                             f"had one camera degradation ({', '.join(config.degradation.kinds)}; --degrade).")
    return Phase(
        name="fine_tune",
        train_model=train_model,
        train_data=train_data,
        steps=math.ceil(len(data.y_train) / batch),
        val_model=val_model,
        val_data=val_data,
        epochs=config.fine_tune_epochs,
        patience=config.patience,
    )
