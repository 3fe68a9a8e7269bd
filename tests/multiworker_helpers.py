"""Loopback ports and ``TF_CONFIG`` values for multi-worker tests and benchmarks."""

from __future__ import annotations

import json
import socket


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago (the OS picks them)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """``TF_CONFIG`` of worker ``index`` in a cluster of workers on ``127.0.0.1:ports``."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})
