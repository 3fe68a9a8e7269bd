"""The workers of ``--strategy multi-worker``: ``TF_CONFIG`` checked, the cluster joined, values exchanged.

Every worker runs the same ``python -m train`` command with its own ``TF_CONFIG``, the standard
variable of TensorFlow's multi-worker training::

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 0}}'

Worker 0 (or the one ``chief`` task, when the cluster names one) is the chief. :func:`parse_tf_config`
checks the variable without TensorFlow (one-line errors naming what is wrong); :func:`join` meets every
peer within ``--worker-timeout`` seconds (:func:`rendezvous`), then starts
``tf.distribute.MultiWorkerMirroredStrategy`` (its gRPC server and collective ops). :class:`Cluster`
then exchanges small arrays between the workers (sums and the chief's values) over the same
collective ops that carry the gradients. A peer lost later is noticed by TensorFlow: at once when its
connections close (killed, restarted), after ``timeout`` seconds without its heartbeat otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError, TrainError

JOBS = ("chief", "worker")


class ClusterError(TrainError):
    """A peer was lost during the run (killed, restarted, unreachable): the workers must be restarted."""


@dataclass(frozen=True)
class ClusterSpec:
    """What ``TF_CONFIG`` says, with the workers in one order: the chief first.

    Attributes:
        addresses: ``host:port`` of every worker; ``addresses[0]`` is the chief's.
        index: this worker's position in ``addresses`` (0: the chief).
        task: this worker's ``(type, index)`` as written in ``TF_CONFIG``.
    """

    addresses: tuple[str, ...]
    index: int
    task: tuple[str, int]

    @property
    def num_workers(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def name(self) -> str:
        """``"worker 1 of 2 (127.0.0.1:2223)"``."""
        return f"worker {self.index} of {self.num_workers} ({self.addresses[self.index]})"


def parse_tf_config(text: str | None) -> ClusterSpec:
    """Check ``TF_CONFIG``'s text; raises ``ConfigError`` with one line saying what is wrong."""
    example = '{"cluster": {"worker": ["HOST0:PORT", "HOST1:PORT"]}, "task": {"type": "worker", "index": 0}}'
    if not text or not text.strip():
        raise ConfigError(f"TF_CONFIG is not set: --strategy multi-worker needs it on every worker, e.g. {example}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"TF_CONFIG: not valid JSON ({exc}); expected e.g. {example}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cluster"), dict) or not isinstance(data.get("task"), dict):
        raise ConfigError(f"TF_CONFIG: needs a 'cluster' object and a 'task' object, received {text.strip()[:120]!r}")
    cluster, task = data["cluster"], data["task"]
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        raise ConfigError(f"TF_CONFIG: job {unknown[0]!r} is not supported by --strategy multi-worker; "
                          f"allowed jobs are {list(JOBS)}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ConfigError(f"TF_CONFIG: cluster.{job} must be a list of 'host:port' strings, received {addresses!r}")
        for address in addresses:
            _check_address(job, address)
    chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
    if len(chiefs) > 1:
        raise ConfigError(f"TF_CONFIG: cluster.chief must hold exactly one address, received {len(chiefs)}")
    if not chiefs and not workers:
        raise ConfigError("TF_CONFIG: the cluster has no chief: give a 'chief' job with one address or a 'worker' "
                          "list (worker 0 is then the chief)")
    addresses = tuple(chiefs + workers)
    duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
    if duplicates:
        raise ConfigError(f"TF_CONFIG: address {duplicates[0]} is given to two workers; each needs its own host:port")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in JOBS:
        raise ConfigError(f"TF_CONFIG: task type must be one of {list(JOBS)}, received {kind!r}")
    if kind not in cluster or not cluster[kind]:
        raise ConfigError(f"TF_CONFIG: task type {kind!r} but the cluster has no {kind!r} job (missing chief?)")
    jobs = cluster[kind]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs):
        raise ConfigError(f"TF_CONFIG: task index {index!r} is out of range for {len(jobs)} {kind}"
                          f"{'s' if len(jobs) != 1 else ''} (0 to {len(jobs) - 1})")
    position = index if kind == "chief" else len(chiefs) + index
    return ClusterSpec(addresses=addresses, index=position, task=(kind, index))


def _check_address(job: str, address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"TF_CONFIG: cluster.{job} address must be 'host:port' with a port from 1 to 65535, "
                          f"received {address!r}")


def rendezvous(spec: ClusterSpec, timeout: float) -> None:
    """Wait until every peer accepts a TCP connection on its port, listening on ours meanwhile.

    TensorFlow's own start-up waits for the peers inside C++ code that holds the interpreter (no
    timeout, no signal gets through), so the workers first meet here, in Python: each listens on its
    ``TF_CONFIG`` port (connections complete in the kernel's backlog; nothing is read) and connects to
    the others' until all answered, then hands the port to TensorFlow's server. A peer met here that
    has already moved on is reached on its TensorFlow server, which listens on the same port.

    Raises:
        ConfigError: the port is taken, or peers did not answer within ``timeout`` seconds (named).
    """
    host, _, port = spec.addresses[spec.index].rpartition(":")
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            listener.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise
            listener.bind(("", int(port)))  # a name for this host that resolves elsewhere (NAT, DNS)
        listener.listen(64)
    except OSError as exc:
        listener.close()
        raise ConfigError(f"TF_CONFIG: {spec.name} cannot listen on its address ({exc.strerror or exc}); "
                          "is another worker or program using that port?") from None
    pending = [a for i, a in enumerate(spec.addresses) if i != spec.index]
    stop = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < stop:
            pending = unreachable(pending, timeout=min(1.0, max(0.1, stop - time.monotonic())))
            if pending:
                time.sleep(0.2)
    finally:
        listener.close()
    if pending:
        raise ConfigError(f"TF_CONFIG: not every worker joined within {timeout:g} s (--worker-timeout): waiting for "
                          f"{', '.join(pending)}; start every worker (this is {spec.name}) and check the addresses")


def unreachable(addresses: list[str], timeout: float = 1.0) -> list[str]:
    """The addresses on which nothing accepts a TCP connection within ``timeout`` seconds."""
    missing = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
        except OSError:
            missing.append(address)
    return missing


class Cluster:
    """A joined cluster: the strategy and the exchange of small arrays between workers.

    Every method that exchanges values must be called by every worker, in the same order.
    A lost peer raises :class:`ClusterError` (one line: restart the workers; ``--resume`` continues).
    """

    def __init__(self, spec: ClusterSpec, strategy: Any, timeout: float):
        self.spec, self.strategy, self.timeout = spec, strategy, timeout

    @property
    def is_chief(self) -> bool:
        return self.spec.is_chief

    @property
    def num_workers(self) -> int:
        return self.spec.num_workers

    @property
    def index(self) -> int:
        return self.spec.index

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn TensorFlow's errors of a lost peer into one-line :class:`ClusterError`."""
        import tensorflow as tf

        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.FailedPreconditionError,
                tf.errors.CancelledError, tf.errors.InternalError, tf.errors.AbortedError) as exc:
            cause = " ".join(str(exc.message if hasattr(exc, "message") else exc).split())[:160]
            raise ClusterError(
                f"--strategy multi-worker: {self.spec.name} lost contact with the other workers ({type(exc).__name__}: "
                f"{cause}); restart every worker with the same command and --resume to continue from the last "
                "finished epoch") from None

    def all_sum(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of every worker's ``values`` (same shape and dtype on all workers)."""
        import tensorflow as tf

        tensor = tf.constant(np.ascontiguousarray(values))
        with self.guard():
            per_replica = self.strategy.run(tf.identity, args=(tensor,))
            total = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            return np.asarray(total.numpy())

    def broadcast(self, values: np.ndarray) -> np.ndarray:
        """The chief's ``values`` on every worker (the others pass an array of the same shape and dtype)."""
        values = np.asarray(values)
        return self.all_sum(values if self.is_chief else np.zeros_like(values))

    def broadcast_json(self, value: Any) -> Any:
        """The chief's JSON-serialisable ``value`` on every worker (the others' is ignored)."""
        blob = np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8) if self.is_chief else np.zeros(0, np.uint8)
        size = int(self.broadcast(np.array([len(blob)], dtype=np.int64))[0])
        padded = np.zeros(size, dtype=np.float32)
        if self.is_chief:
            padded[:] = blob
        data = self.broadcast(padded).astype(np.uint8).tobytes()
        return json.loads(data.decode("utf-8"))

    def gather_rows(self, row: np.ndarray) -> np.ndarray:
        """``(num_workers, len(row))`` float64: every worker's ``row``, in worker order."""
        table = np.zeros((self.num_workers, len(row)), dtype=np.float64)
        table[self.index] = row
        return self.all_sum(table)


def join(spec: ClusterSpec, timeout: float) -> Cluster:
    """Meet every peer (at most ``timeout`` seconds, :func:`rendezvous`), then start this worker's
    TensorFlow server and ``MultiWorkerMirroredStrategy``. Must run before any other TensorFlow operation.

    Raises:
        ConfigError: a peer did not answer in time, or this worker's port is taken.
    """
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": list(spec.addresses)}, "task": {"type": "worker", "index": spec.index}})
    from edge_runner.common.native_log import import_quietly

    rendezvous(spec, timeout)
    tf = import_quietly("tensorflow")
    _configure_coordination(spec, timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError, tf.errors.OpError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ConfigError(f"TF_CONFIG: {spec.name} could not start its server at {spec.addresses[spec.index]} "
                          f"or join the others ({text})") from None
    if strategy.num_replicas_in_sync != spec.num_workers:
        raise ConfigError(f"--strategy multi-worker: one CPU replica per worker expected, found "
                          f"{strategy.num_replicas_in_sync} replicas for {spec.num_workers} workers (GPUs are not "
                          "supported by this strategy in the kit yet)")
    return Cluster(spec, strategy, timeout)


def _configure_coordination(spec: ClusterSpec, timeout: float) -> None:
    """TensorFlow's coordination service (its heartbeat notices a silent peer), with ``timeout`` as its limits.

    ``MultiWorkerMirroredStrategy`` configures the service itself with TensorFlow's defaults (a peer
    silent for 10 s is lost) unless it is configured already; on a loaded machine those 10 s can
    pass while a worker is only slow, so a peer counts as lost after ``timeout`` seconds of silence.
    A TensorFlow without this internal API keeps its defaults.
    """
    try:
        from tensorflow.python.distribute.collective_all_reduce_strategy import coordination_config_pb2
        from tensorflow.python.eager import context

        context.context().configure_coordination_service(
            service_type="standalone", service_leader="/job:worker/replica:0/task:0",
            coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=spec.num_workers)],
            heartbeat_timeout_in_ms=int(timeout * 1000), cluster_register_timeout_in_ms=int(timeout * 1000))
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other TensorFlow versions
        pass
