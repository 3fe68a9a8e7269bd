"""Slow down token guessing: wrong access tokens are counted per client address, and too many lock it out.

With the defaults, 5 wrong tokens within 60 s from one address lock that address out for 30 s; each
further lock-out doubles (60 s, 120 s, …) up to 5 minutes. While locked out, every request from it
(but ``/healthz``) is answered 429 with ``Retry-After`` before its token is even looked at, so a
guesser learns nothing; a right token afterwards resets the address's record. Other addresses are
not affected. IPv6 clients are counted per /64 (one household's prefix), since a host can pick any
address inside it.

Memory is bounded: at most ``max_addresses`` addresses are remembered, the least recently seen
forgotten first. Behind a reverse proxy every client has the proxy's address: they then share one
record (one guesser locks out everyone), which is the safe side. Standard library only.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

MAX_FAILURES = 5
WINDOW_S = 60.0
FIRST_LOCKOUT_S = 30.0
MAX_LOCKOUT_S = 300.0
MAX_ADDRESSES = 4096


@dataclass
class _Record:
    failures: deque = field(default_factory=deque)  # monotonic times of recent wrong tokens
    lockouts: int = 0  # lock-outs so far (the next one lasts FIRST_LOCKOUT_S * 2**lockouts)
    locked_until: float = 0.0
    last_failure: float = 0.0


class Throttle:
    """Per-address wrong-token counter.

    Args:
        max_failures: wrong tokens within ``window_s`` seconds that lock an address out.
        first_lockout_s, max_lockout_s: the first lock-out's length (seconds) and the cap of the doubling.
        max_addresses: addresses remembered at most (least recently seen forgotten first).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, max_failures: int = MAX_FAILURES, *, window_s: float = WINDOW_S, first_lockout_s: float = FIRST_LOCKOUT_S,
                 max_lockout_s: float = MAX_LOCKOUT_S, max_addresses: int = MAX_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be 1 or more, received {max_failures}")
        self.max_failures, self.window_s = max_failures, window_s
        self.first_lockout_s, self.max_lockout_s = first_lockout_s, max_lockout_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(address: str | None) -> str:
        """The record's key: the address itself, or its /64 network for IPv6."""
        try:
            parsed = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return address or "?"
        mapped = getattr(parsed, "ipv4_mapped", None)
        if mapped is not None:
            return str(mapped)
        if parsed.version == 6:
            return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
        return str(parsed)

    def retry_after(self, address: str | None) -> int:
        """Whole seconds this address must still wait (0: it may try)."""
        with self._lock:
            record = self._records.get(self.key(address))
            left = record.locked_until - self.clock() if record is not None else 0.0
        return int(left) + 1 if left > 0 else 0

    def failed(self, address: str | None) -> int:
        """Count one wrong token; returns the lock-out in whole seconds that it starts (0: none yet)."""
        now = self.clock()
        key = self.key(address)
        with self._lock:
            record = self._records.pop(key, None) or _Record()
            self._records[key] = record  # most recently seen last
            while len(self._records) > self.max_addresses:
                self._records.popitem(last=False)
            if now - record.last_failure > 2 * self.max_lockout_s:
                record.lockouts = 0  # a long quiet spell forgives earlier lock-outs
            record.last_failure = now
            record.failures.append(now)
            while record.failures and now - record.failures[0] > self.window_s:
                record.failures.popleft()
            if len(record.failures) < self.max_failures:
                return 0
            length = min(self.first_lockout_s * 2 ** record.lockouts, self.max_lockout_s)
            record.lockouts += 1
            record.failures.clear()
            record.locked_until = now + length
            return int(length)

    def succeeded(self, address: str | None) -> None:
        """A right token: forget the address's wrong ones and lock-outs."""
        with self._lock:
            self._records.pop(self.key(address), None)

    def __len__(self) -> int:
        return len(self._records)
