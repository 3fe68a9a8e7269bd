"""Tell the world about an event without ever slowing the camera loop.

Each action (a command, a webhook, MQTT) gets its own :class:`ActionWorker`: a
daemon thread with a bounded queue. The camera loop only calls
:meth:`ActionWorker.submit`, which never blocks; a slow or dead receiver
delays only its own queue, and when that queue is full the oldest event is
dropped (and counted) rather than the camera waiting.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

logger = logging.getLogger(__name__)

QUEUE_SIZE = 100
COMMAND_TIMEOUT_S = 30.0
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_RETRIES = 3
WEBHOOK_BACKOFF_S = 1.0
ENV_PREFIX = "EDGEKIT_EVENT_"


class ActionWorker:
    """Runs ``handler(event_dict)`` for each submitted event on a daemon thread.

    Args:
        name: shown in log lines, e.g. ``"webhook http://…"``.
        handler: raises on failure; the failure is logged and the next event goes on.
    """

    def __init__(self, name: str, handler: Callable[[dict], None], maxsize: int = QUEUE_SIZE) -> None:
        self.name = name
        self.handler = handler
        self.done = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._run, name=f"edgekit-action-{name[:20]}", daemon=True)
        self._thread.start()

    def submit(self, event: dict) -> None:
        """Queue ``event`` (never blocks; drops the oldest queued event when full)."""
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    logger.warning("%s: too slow, an older event was dropped", self.name)
                except queue.Empty:
                    pass

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued events (up to ``timeout`` seconds), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.handler(event)
                self.done += 1
            except Exception as exc:  # a failing action must never kill its worker
                self.failed += 1
                logger.warning("%s: %s", self.name, exc)


def event_environment(event: dict, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus ``EDGEKIT_EVENT_<KEY>`` for each event field.

    ``None`` becomes an empty string; ``EDGEKIT_EVENT_JSON`` holds the whole event.
    """
    env = dict(os.environ if base is None else base)
    for key, value in event.items():
        env[ENV_PREFIX + key.upper()] = "" if value is None else str(value)
    env[ENV_PREFIX + "JSON"] = json.dumps(event)
    return env


class CommandAction:
    """``--on-event CMD``: run CMD (split like a shell line, no shell) with the event JSON on stdin.

    The event is also in the environment (:func:`event_environment`). A command
    running longer than ``timeout`` seconds is killed; a non-zero exit is logged.
    """

    def __init__(self, command: str, timeout: float = COMMAND_TIMEOUT_S) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("--on-event: the command is empty")
        self.timeout = timeout

    def __call__(self, event: dict) -> None:
        try:
            result = subprocess.run(
                self.argv, input=json.dumps(event) + "\n", text=True, env=event_environment(event),
                capture_output=True, timeout=self.timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"killed after {self.timeout:g} s (the timeout)") from None
        except OSError as exc:
            raise RuntimeError(f"cannot run {self.argv[0]!r} ({exc.strerror or exc})") from None
        if result.returncode != 0:
            tail = (result.stderr or "").strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"exited with status {result.returncode} {tail[0]}".rstrip())


class WebhookAction:
    """``--webhook URL``: POST the event as JSON; retries with exponential backoff on errors.

    ``retries`` further attempts after the first, waiting ``backoff``, ``2*backoff``, …
    seconds; each attempt times out after ``timeout`` seconds. A 4xx answer (other
    than 408/429) is not retried: the receiver refused the event itself.
    """

    def __init__(
        self, url: str, *, timeout: float = WEBHOOK_TIMEOUT_S, retries: int = WEBHOOK_RETRIES,
        backoff: float = WEBHOOK_BACKOFF_S, sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--webhook must be an http:// or https:// URL, received {url!r}")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self._sleep = sleep

    def __call__(self, event: dict) -> None:
        body = json.dumps(event).encode("utf-8")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(
                self.url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "edgekit-watch"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        raise RuntimeError(f"POST {self.url} failed ({last})")
