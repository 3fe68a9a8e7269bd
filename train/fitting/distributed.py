"""``--strategy multi-worker``: one run over several processes or hosts, each with its share of the photos.

Data-parallel training over TensorFlow's multi-worker engine (``tf.distribute.MultiWorkerMirroredStrategy``,
configured by ``TF_CONFIG``, see :mod:`train.fitting.cluster`), hooked into the run's stages:

* **who writes what**: the chief (worker 0) writes the run folder as a one-process run would; every
  other worker writes into a temporary folder that is removed when it finishes;
* **data**: worker ``k`` decodes, caches and computes backbone features for photos ``k, k + N, …`` of
  the run's file list only (:meth:`Session.decode_share`); the unreadable ones are exchanged so every
  worker makes the same split; the chief decodes the validation photos of the others once training is
  over, for the report;
* **steps**: the global ``--batch-size`` ``B`` is split, ``B / N`` photos of its own share per worker and
  step; the gradients are summed over the workers (ring all-reduce) and every worker applies the same
  update; each worker's share is padded by repeating a few of its photos so all take the same number of
  steps per epoch; validation sums loss and hits over the workers, so early stopping agrees everywhere;
* **fault tolerance**: checkpoints are the kit's own (``--resume``); the chief's are broadcast to the
  others on resume, so no shared file system is needed. A lost peer ends every worker with one line;
  restarting them all with the same command (and ``--resume``) continues from the last finished epoch.

The Keras models stay ordinary single-process models; the step is a small loop of our own
(``strategy.run`` + ``all_reduce``) because Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy``
fails on CPU workers with one replica each (``reduce_per_replica`` reduces scalar metrics along axis 0).
"""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edge_runner.common.run_layout import DISTRIBUTED_FILENAME as STATS_FILENAME

from ..data.pixels import DecodedPixels
from ..errors import ConfigError, DataError
from .cluster import Cluster, join, parse_tf_config

if TYPE_CHECKING:
    from ..config import TrainConfig, TrainResult
    from ..data.dataset import Dataset, Journal
    from .fit import Checkpoints, Phase

MULTI_WORKER = "multi-worker"
# Options that may differ between workers (paths are per host); everything else must match the chief's.
LOCAL_OPTIONS = frozenset({"data", "out", "background", "weights", "cache_dir", "workers", "verbose", "resume", "overwrite",
                           "worker_timeout"})

_session: Session | None = None


def current() -> Session | None:
    """The multi-worker session of this process, or ``None`` (any other ``--strategy``)."""
    return _session


@dataclass
class WorkerStats:
    """What one worker did: its share of the photos and its time (seconds) per stage."""

    photos: int = 0  # decoded (or read from its cache) by this worker
    from_cache: bool = False
    train: int = 0
    validation: int = 0
    padding: int = 0  # training photos repeated so every worker takes the same number of steps
    decode_s: float = 0.0
    steps: dict[str, int] = field(default_factory=dict)  # per phase, this process
    step_s: dict[str, float] = field(default_factory=dict)  # per phase: seconds in training steps
    validate_s: float = 0.0


class Session:
    """One worker's part in a multi-worker run (see the module's docstring)."""

    def __init__(self, cluster: Cluster, config: TrainConfig):
        self.cluster, self.spec = cluster, cluster.spec
        self.global_batch = config.batch_size
        self.user_out = config.out
        self.stats = WorkerStats()
        self.resumed_from: dict[str, int] | None = None
        self.temp_dir: Path | None = None
        if not cluster.is_chief:
            self.temp_dir = Path(tempfile.mkdtemp(prefix=f"edgekit-worker{cluster.index}-"))
            atexit.register(shutil.rmtree, self.temp_dir, True)

    # -- stage hooks -----------------------------------------------------------------------------

    def local_config(self, config: TrainConfig) -> TrainConfig:
        """The chief keeps ``--out``; another worker writes into its temporary folder."""
        return config if self.temp_dir is None else replace(config, out=str(self.temp_dir / "run"), resume=False)

    def agree_resumed(self, resumed: bool) -> bool:
        """Whether the chief resumes a run: every worker follows it."""
        return bool(self.cluster.broadcast(np.array([resumed], dtype=np.int64))[0])

    def decode_share(self, paths: list[str], spec: Any, **options: Any) -> DecodedPixels:
        """:func:`train.data.pixels.decode_photos` of this worker's share (photos ``k, k + N, …``) of ``paths``.

        ``errors`` covers every worker's unreadable photos (exchanged), so all make the same split;
        ``rows()`` gives -1 for the photos of other workers.
        """
        from edge_runner.core.decoder import decode_photos as decode_each

        from ..data.pixels import decode_photos

        count, names = len(paths), "\n".join(f"{Path(p).parent.name}/{Path(p).name}" for p in paths)
        chief = self.cluster.broadcast_json({"count": count, "names": _digest(names)})
        if chief != {"count": count, "names": _digest(names)}:
            raise DataError(f"--data: {self.spec.name} sees {count} photos, the chief {chief['count']}"
                            f"{' with other names' if chief['count'] == count else ''}; every worker needs the same photos")
        n, k = self.cluster.num_workers, self.cluster.index
        mine = list(range(k, count, n))
        decoded = decode_photos([paths[i] for i in mine], spec, **options)
        failed = np.zeros(count, dtype=np.float32)
        failed[[i for i in mine if paths[i] in decoded.errors]] = 1
        failed = np.flatnonzero(self.cluster.all_sum(failed) > 0)
        foreign = [paths[i] for i in failed if paths[i] not in decoded.errors]
        reasons = {photo.source: photo.error for photo in decode_each(foreign, spec, workers=0) if not photo.ok}
        errors = {paths[i]: decoded.errors.get(paths[i]) or reasons.get(paths[i])
                  or f"{paths[i]}: could not be decoded on worker {i % n}" for i in failed}
        self.stats.photos, self.stats.from_cache, self.stats.decode_s = len(mine), decoded.from_cache, decoded.seconds
        return SharePixels(decoded.key, decoded.paths, decoded.array, errors, decoded.from_cache, decoded.seconds)

    def shard(self, data: Dataset) -> Dataset:
        """``data`` with this worker's training and validation photos only, training padded to whole steps.

        Held-out photos (``--holdout-source``) are never trained on: like the validation ones, each worker
        keeps only its own, and the chief evaluates all of them after training (:meth:`finish`)."""
        n, per_worker = self.cluster.num_workers, self.global_batch // self.cluster.num_workers
        keep_train, keep_val, keep_held = data.train_rows >= 0, data.val_rows >= 0, data.holdout_rows >= 0
        train_rows, y_train, weights = data.train_rows[keep_train], data.y_train[keep_train], data.sample_weights[keep_train]
        counts = self.cluster.gather_rows(np.array([len(train_rows)], dtype=np.float64))[:, 0].astype(int)
        if counts.min() == 0:
            raise DataError(f"--strategy multi-worker: {len(data.split.train)} training photos are too few for {n} workers "
                            f"(worker {int(counts.argmin())} got none)")
        steps = math.ceil(int(counts.max()) / per_worker)
        index = np.arange(steps * per_worker) % len(train_rows)
        self.stats.train, self.stats.validation = len(train_rows), int(keep_val.sum())
        self.stats.padding = len(index) - len(train_rows)
        return replace(data, train_rows=train_rows[index], y_train=y_train[index], sample_weights=weights[index],
                       val_rows=data.val_rows[keep_val], y_val=data.y_val[keep_val],
                       holdout_rows=data.holdout_rows[keep_held], y_holdout=data.y_holdout[keep_held])

    def per_worker_config(self, config: TrainConfig) -> TrainConfig:
        """The configuration the phases run with: ``--batch-size`` is each worker's part of the global batch."""
        return replace(config, batch_size=self.global_batch // self.cluster.num_workers)

    def checkpoints(self, checkpoints: Checkpoints) -> Checkpoints:
        from .sync import SyncedCheckpoints

        return SyncedCheckpoints(checkpoints.directory, self)

    def adapt(self, phase: Phase) -> Phase:
        from .sync import epoch_trainer, validator

        return replace(phase, train_epoch=epoch_trainer(self, phase), validate=validator(self, phase))

    def finish(self, data: Dataset, spec: Any, config: TrainConfig, journal: Journal) -> Dataset | None:
        """After the last epoch: gather every worker's numbers; the chief writes them and decodes the
        validation photos it lacks (for the report) and gets the dataset to evaluate; the others get ``None``."""
        from edge_runner.common.files import write_json

        from ..data.pixels import decode_photos

        phases = ("head", "fine_tune")
        mine = self.stats
        row = np.array([mine.photos, mine.from_cache, mine.train, mine.validation, mine.padding, mine.decode_s,
                        *[mine.steps.get(p, 0) for p in phases], *[mine.step_s.get(p, 0.0) for p in phases], mine.validate_s])
        table = self.cluster.gather_rows(row)
        if not self.cluster.is_chief:
            return None
        workers = [
            {"index": i, "address": self.spec.addresses[i], "photos": int(r[0]), "from_cache": bool(r[1]),
             "train": int(r[2]), "validation": int(r[3]), "padding": int(r[4]), "decode_s": round(float(r[5]), 3),
             "steps": {p: int(r[6 + j]) for j, p in enumerate(phases)},
             "step_s": {p: round(float(r[8 + j]), 3) for j, p in enumerate(phases)}, "validate_s": round(float(r[10]), 3)}
            for i, r in enumerate(table)
        ]
        start = time.perf_counter()
        paths = [s.key for s in data.split.validation]
        # Held-out photos are evaluated by the chief too: decoded with the validation ones.
        held_out = [s.key for s in data.split.holdout]
        full = decode_photos(paths + held_out, spec, cache_dir=data.cache_dir, workers=config.workers,
                             progress=config.verbose >= 1)
        report = {
            "strategy": MULTI_WORKER, "workers": self.cluster.num_workers, "global_batch": self.global_batch,
            "per_worker_batch": self.global_batch // self.cluster.num_workers, "worker_timeout_s": self.cluster.timeout,
            "resumed": self.resumed_from is not None and any(self.resumed_from.values()),
            "resumed_from_epoch": self.resumed_from, "per_worker": workers,
            "chief_report_decode": {"photos": len(paths) + len(held_out),
                                    "seconds": round(time.perf_counter() - start, 3)},
        }
        write_json(Path(config.out) / STATS_FILENAME, report)
        shares = ", ".join(str(w["photos"]) for w in workers)
        journal.notes.append(
            f"Multi-worker: {self.cluster.num_workers} workers (TF_CONFIG), global batch {self.global_batch} = "
            f"{self.cluster.num_workers} x {report['per_worker_batch']}; photos decoded per worker: {shares}; "
            f"the chief decoded the {len(paths)} validation photos again for this report (see {STATS_FILENAME}).")
        if report["resumed"]:
            journal.notes.append(f"Multi-worker: resumed after a restart of the workers, from epochs {self.resumed_from}.")
        rows = np.arange(len(paths) + len(held_out), dtype=np.int64)
        return replace(data, decoded=full, val_rows=rows[: len(paths)], y_val=data.split.label_indices("validation"),
                       holdout_rows=rows[len(paths):], y_holdout=data.split.label_indices("holdout"))

    def worker_result(self, data: Dataset, fitted: Any, elapsed_s: float) -> TrainResult:
        """A worker's result: no model here (the chief writes it); its temporary folder is removed."""
        from edge_runner.common.run_layout import RunLayout

        from ..config import TrainResult

        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        layout = RunLayout(Path(self.user_out))
        return TrainResult(
            out_dir=layout.root, model_path=layout.model, contract_path=layout.contract, labels_path=layout.labels,
            split_path=layout.split, report_path=layout.report_json, val_accuracy=math.nan, val_loss=math.nan,
            elapsed_s=elapsed_s, timings={}, epochs={name: fitted.states[name].epoch for name in ("head", "fine_tune")},
            num_train=len(data.split.train), num_validation=len(data.split.validation), num_skipped=len(data.split.skipped),
            labels=data.split.labels, worker=self.spec.name,
        )


class SharePixels(DecodedPixels):
    """:class:`train.data.pixels.DecodedPixels` of one worker's share; ``rows()`` is -1 for other workers' photos."""

    def rows(self, paths: list[str]) -> np.ndarray:
        index = {path: i for i, path in enumerate(self.paths)}
        return np.array([index.get(path, -1) for path in paths], dtype=np.int64)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def join_cluster(config: TrainConfig) -> Session | None:
    """``--strategy multi-worker``: read ``TF_CONFIG``, join the other workers and check they run the same
    options; ``None`` for any other strategy. Must come before any other TensorFlow operation."""
    global _session
    _session = None
    if config.strategy != MULTI_WORKER:
        return None
    import os

    spec = parse_tf_config(os.environ.get("TF_CONFIG"))
    if config.batch_size % spec.num_workers:
        raise ConfigError(f"--batch-size must be a multiple of the {spec.num_workers} workers in TF_CONFIG (each takes "
                          f"batch-size / workers photos per step), received {config.batch_size}")
    cluster = join(spec, config.worker_timeout)
    options = {key: value for key, value in asdict(config).items() if key not in LOCAL_OPTIONS}
    chief = cluster.broadcast_json(options)
    differences = sorted(key for key in options if chief.get(key) != options[key])
    if differences:
        details = ", ".join(f"{key}: {chief.get(key)!r} on the chief, {options[key]!r} here" for key in differences)
        raise ConfigError(f"--strategy multi-worker: {spec.name} was started with other options than the chief ({details})")
    _session = Session(cluster, config)
    return _session


def decode_function(decode: Callable[..., Any]) -> Callable[..., Any]:
    """``decode`` (:func:`train.data.pixels.decode_photos`), or this worker's share of it in a multi-worker run."""
    return decode if _session is None else _session.decode_share


def shard(data: Dataset) -> Dataset:
    return data if _session is None else _session.shard(data)


def per_worker_config(config: TrainConfig) -> TrainConfig:
    return config if _session is None else _session.per_worker_config(config)


def synced_checkpoints(checkpoints: Checkpoints) -> Checkpoints:
    return checkpoints if _session is None else _session.checkpoints(checkpoints)


def adapt_phase(phase: Phase) -> Phase:
    return phase if _session is None else _session.adapt(phase)
