"""Publish events and the current state to an MQTT broker, with Home Assistant discovery.

paho-mqtt (the ``watch`` extra: ``pip install .[watch]``) keeps the connection on
its own network thread: :meth:`MqttPublisher.publish_event` only queues a
message, so a slow or dead broker never blocks the camera loop. A broker that is
down at start or goes away later is retried every 1–30 s (paho's reconnect
back-off) and messages published meanwhile (QoS 1) are sent once it is back.

Topics under ``prefix`` (default ``edgekit/<hostname>``):

* ``<prefix>/event``         each event's JSON (QoS 1)
* ``<prefix>/state``         ``{"state": "cat"|"none", "label": …, "present": …, "since": …}`` (retained)
* ``<prefix>/availability``  ``online`` / ``offline`` (retained; ``offline`` is the last will)

and, unless discovery is off, Home Assistant discovery configs (retained) in
HA's format ``<discovery>/<component>/<node_id>/<object_id>/config``:
``binary_sensor/<node>/<label>`` for every label of interest (on while that label
is present) and ``sensor/<node>/label`` (the label present now, or ``none``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from typing import Any, Sequence

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install .[watch]  (or: pip install 'paho-mqtt>=2.0')"
DEFAULT_PORT = 1883
DISCOVERY_PREFIX = "homeassistant"
USERNAME_ENV, PASSWORD_ENV = "EDGEKIT_MQTT_USERNAME", "EDGEKIT_MQTT_PASSWORD"
MAX_QUEUED = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class MqttError(ValueError):
    """A bad ``--mqtt`` address or a missing paho-mqtt."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` (``[v6]:PORT`` for IPv6) → ``(host, port)``; raises ``MqttError``."""
    text = text.strip()
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, text)
    if not host:
        raise MqttError(f"--mqtt must be HOST or HOST:PORT, received {text!r}")
    return host, port


def _port(number: str, text: str) -> int:
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise MqttError(f"--mqtt: the port must be a number from 1 to 65535, received {text!r}")
    return int(number)


def default_prefix() -> str:
    return f"edgekit/{slug(socket.gethostname()) or 'device'}"


def slug(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_")


class MqttPublisher:
    """A paho-mqtt client that publishes watcher events and state.

    Args:
        host, port: the broker.
        labels: the labels of interest (one binary sensor each).
        prefix: topic prefix.
        discovery_prefix: Home Assistant's discovery prefix, or ``None`` for no discovery.
        name: the device name shown in Home Assistant.
    """

    def __init__(
        self, host: str, port: int, labels: Sequence[str], *, prefix: str | None = None,
        discovery_prefix: str | None = DISCOVERY_PREFIX, name: str = "edgekit watcher", keepalive: int = 30,
    ) -> None:
        try:
            import paho.mqtt.client as paho
        except ImportError as exc:
            raise MqttError(f"--mqtt needs paho-mqtt ({exc}); install it with: {INSTALL_HINT}") from None
        self.host, self.port = host, port
        self.labels = tuple(labels)
        self.prefix = (prefix or default_prefix()).strip("/")
        self.node_id = slug(self.prefix.replace("/", "_")) or "edgekit"
        self.discovery_prefix = discovery_prefix.strip("/") if discovery_prefix else None
        self.name = name
        self.connected = False
        self.connections = 0
        self._state: dict[str, Any] = {"state": "none", "label": None, "present": False, "since": time.time()}
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{self.node_id}-{os.getpid()}")
        username = os.environ.get(USERNAME_ENV)
        if username:
            client.username_pw_set(username, os.environ.get(PASSWORD_ENV))
        client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._failing = False  # a failed attempt was reported; quiet until the next success
        self._client = client
        # connect_async + loop_start: the network thread makes the first connection
        # and every later one, retrying while the broker is down.
        client.connect_async(host, port, keepalive=keepalive)
        client.loop_start()

    def topic(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    # -- what the watcher calls -------------------------------------------------

    def publish_event(self, event: dict) -> None:
        """Queue ``event`` on ``<prefix>/event`` and the resulting state (retained) on ``<prefix>/state``."""
        present = event.get("event") == "arrived"
        label = event.get("label") if present else None
        self._state = {
            "state": label or "none", "label": label, "present": present,
            "since": event.get("start") if present else event.get("end"), "score": event.get("peak_score"),
        }
        self._publish(self.topic("event"), event, retain=False)
        self._publish(self.topic("state"), self._state, retain=True)

    def set_labels(self, labels: Sequence[str]) -> bool:
        """A new model's labels of interest: re-publish discovery (an emptied config removes a gone label's sensor).

        Returns whether the labels changed. Queued like every message while the broker is away.
        """
        labels = tuple(labels)
        if labels == self.labels:
            return False
        old = self.discovery_messages()
        self.labels = labels
        new = self.discovery_messages()
        for topic in old.keys() - new.keys():
            self._client.publish(topic, b"", qos=1, retain=True)  # Home Assistant's way to remove an entity
        for topic, config in new.items():
            self._publish(topic, config, retain=True)
        logger.info("MQTT: discovery re-published for labels %s", ", ".join(labels))
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Say ``offline``, flush what can be sent within ``timeout`` seconds, disconnect."""
        if self.connected:
            info = self._client.publish(self.topic("availability"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    # -- discovery ------------------------------------------------------------------

    def discovery_messages(self) -> dict[str, dict]:
        """``{topic: config}`` for Home Assistant (empty when discovery is off)."""
        if not self.discovery_prefix:
            return {}
        device = {"identifiers": [self.node_id], "name": self.name, "manufacturer": "edgekit", "model": "edge_runner watch"}
        common = {
            "state_topic": self.topic("state"),
            "availability_topic": self.topic("availability"),
            "payload_available": "online",
            "payload_not_available": "offline",
            "json_attributes_topic": self.topic("state"),
            "device": device,
        }
        messages = {}
        for label in self.labels:
            object_id = slug(label) or "label"
            messages[f"{self.discovery_prefix}/binary_sensor/{self.node_id}/{object_id}/config"] = {
                "name": label.replace("_", " ").capitalize(),
                "unique_id": f"{self.node_id}_{object_id}",
                "device_class": "occupancy",
                "value_template": "{{ 'ON' if value_json.label == %s else 'OFF' }}" % json.dumps(label),
                "payload_on": "ON",
                "payload_off": "OFF",
                **common,
            }
        messages[f"{self.discovery_prefix}/sensor/{self.node_id}/label/config"] = {
            "name": "Label",
            "unique_id": f"{self.node_id}_label",
            "icon": "mdi:paw",
            "value_template": "{{ value_json.state }}",
            **common,
        }
        return messages

    # -- paho callbacks (network thread) -------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            logger.warning("MQTT %s:%s refused the connection (%s); retrying", self.host, self.port, reason_code)
            return
        self.connected = True
        self._failing = False
        self.connections += 1
        for topic, config in self.discovery_messages().items():
            self._publish(topic, config, retain=True)
        self._publish(self.topic("state"), self._state, retain=True)
        client.publish(self.topic("availability"), "online", qos=1, retain=True)

    def _on_connect_fail(self, client, userdata) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("MQTT %s:%s: cannot connect; retrying every 1-30 s (events are queued meanwhile)", self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if self.connected:
            logger.warning("MQTT %s:%s: connection lost (%s); retrying", self.host, self.port, reason_code)
        self.connected = False

    def _publish(self, topic: str, payload: dict, *, retain: bool) -> None:
        info = self._client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        # MQTT_ERR_NO_CONN: queued, sent after the reconnection; a full queue drops it.
        if info.rc not in (0, 4):
            logger.warning("MQTT: %s not queued (paho error %s)", topic, info.rc)
