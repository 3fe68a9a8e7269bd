"""The watcher with real services: a real MQTT broker (Debian's mosquitto) and the web server's events."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import BLUE, GREEN, PHONE, RED, REPO, visit_clip, write_clip

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:``port`` with a config file of its own (no persistence)."""

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.config = root / "mosquitto.conf"
        self.log = root / "mosquitto.log"  # every PUBLISH the broker receives is logged here
        self.config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stdout\nlog_type all\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.process.poll() is None, "mosquitto exited at start"
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen within 10 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class Subscriber:
    """A paho client that records every message under ``topics`` (re-subscribing after a reconnection)."""

    def __init__(self, port: int, topics: list[str]) -> None:
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="edgekit-test-subscriber")
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda client, *_: [client.subscribe(t, qos=1) for t in topics]
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no MQTT message {what} within {timeout} s; got {[m[0] for m in self.messages]}")

    def events(self, prefix: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t == f"{prefix}/event"]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not found (Debian: apt install mosquitto; `make test` installs it as root)")
def test_mqtt_events_state_and_discovery_survive_a_broker_that_dies(watch_model, tmp_path):
    pytest.importorskip("paho.mqtt", reason="the MQTT publisher needs paho-mqtt (pip install .[watch])")
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    prefix = "edgekit/test-node"
    subscriber = Subscriber(port, [f"{prefix}/#", "homeassistant/#"])
    # Played in real time at 10 fps: a cat at 1-2.5 s, a dog at 8-9.5 s; the broker is killed
    # after the cat left, restarted a second later, and the dog's events still arrive.
    clip = write_clip(tmp_path / "two.avi", [BLUE] * 10 + [RED] * 15 + [BLUE] * 55 + [GREEN] * 15 + [BLUE] * 10)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "edge_runner", "watch", "--camera", str(clip), "--model", str(watch_model), "--realtime",
         "--json", "--hold", "0.5", "--mqtt", f"127.0.0.1:{port}", "--mqtt-prefix", prefix],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        configs = subscriber.wait_for(lambda m: m[0].endswith("/config"), 15, "with a discovery config")
        subscriber.wait_for(lambda m: m[0] == f"{prefix}/event" and b'"left"' in m[1], 20, "for the cat leaving")
        broker.kill()
        time.sleep(1.0)
        broker.start()
        subscriber.wait_for(lambda m: m[0] == f"{prefix}/event" and b'"dog"' in m[1] and b'"left"' in m[1], 30,
                            "for the dog leaving after the broker came back")
        out, err = watcher.communicate(timeout=30)
        late = Subscriber(port, [f"{prefix}/state", f"{prefix}/availability"])
        try:
            state = late.wait_for(lambda m: m[0] == f"{prefix}/state" and m[2], 10, "retained on the state topic")
            availability = late.wait_for(lambda m: m[0] == f"{prefix}/availability" and m[2], 10, "retained availability")
        finally:
            late.close()
        late_state = (json.loads(state[-1][1])["state"],)
        late_availability = availability[-1][1]
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
        subscriber.close()
        broker.kill()
    assert watcher.returncode == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert [(e["event"], e["label"]) for e in printed] == [("arrived", "cat"), ("left", "cat"), ("arrived", "dog"), ("left", "dog")]
    received = subscriber.events(prefix)
    assert [(e["event"], e["label"]) for e in received] == [(e["event"], e["label"]) for e in printed]
    assert "connection lost" in err  # the watcher said the broker went away, and went on
    # Home Assistant discovery: a binary sensor per label of interest and a label sensor, retained.
    with subscriber.lock:
        topics = {t: json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/config")}
    node = "edgekit_test-node"
    assert set(topics) == {
        f"homeassistant/binary_sensor/{node}/cat/config", f"homeassistant/binary_sensor/{node}/dog/config",
        f"homeassistant/sensor/{node}/label/config",
    }
    cat = topics[f"homeassistant/binary_sensor/{node}/cat/config"]
    assert cat["state_topic"] == f"{prefix}/state" and cat["unique_id"] == f"{node}_cat"
    assert cat["availability_topic"] == f"{prefix}/availability" and cat["device"]["identifiers"] == [node]
    assert "value_json.label" in cat["value_template"] and configs
    # Retained: a subscriber arriving after the watcher stopped gets the last state ("none": the dog
    # left) and the availability ("offline") at once, with the retain flag.
    assert late_state[0] == "none" and late_availability == b"offline"


def test_serve_camera_lists_events_and_serves_only_generated_snapshots(watch_model, tmp_path):
    from edge_runner.web.service import ServerOptions, build_service
    from edge_runner.web.server import start_server
    from edge_runner.watcher.settings import WatchSettings

    clip = visit_clip(tmp_path / "visit.avi", before=5, visit=20, after=15)
    options = ServerOptions(
        model=watch_model, host="127.0.0.1", port=0, camera=str(clip), camera_fps=30.0,
        watch=WatchSettings(hold_s=0.3, snapshots=tmp_path / "snaps", events=tmp_path / "events.jsonl"),
    )
    with start_server(build_service(options)) as server:
        deadline = time.monotonic() + 30
        events = []
        while time.monotonic() < deadline:  # no viewer needed: the watcher keeps the capture loop running
            with urllib.request.urlopen(f"{server.url}/api/events", timeout=5) as response:
                events = json.load(response)["events"]
            if any(e["event"] == "left" for e in events):
                break
            time.sleep(0.2)
        left = next(e for e in events if e["event"] == "left")
        assert left["label"] == "cat" and left["snapshot"] and left["snapshot_url"].startswith("/api/events/snapshot/")
        for url in (left["snapshot_url"], left["strip_url"]):  # the best frame and the visit's thumbnail strip
            with urllib.request.urlopen(server.url + url, timeout=5) as response:
                assert response.headers["Content-Type"] == "image/jpeg" and response.read(3) == b"\xff\xd8\xff"
        for bad in ("..%2F..%2Fetc%2Fpasswd", "x.jpg", "20990101-000000-cat-0001.jpg", "%2Fetc%2Fpasswd"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{server.url}/api/events/snapshot/{bad}", timeout=5)
            assert refused.value.code == 404
        with urllib.request.urlopen(f"{server.url}/events", timeout=5) as response:
            page = response.read().decode()
        assert "cat left" in page and left["snapshot_url"] in page and left["strip_url"] in page
        with pytest.raises(urllib.error.HTTPError) as bad_limit:
            urllib.request.urlopen(f"{server.url}/api/events?limit=0", timeout=5)
        assert bad_limit.value.code == 400
        assert json.load(bad_limit.value) == {"error": "limit must be an integer from 1 to 200, received '0'", "status": 400}
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert logged[0]["event"] == "arrived" and logged[0]["label"] == "cat"


def test_api_events_without_camera_says_how_to_turn_it_on(tiny_models):
    from edge_runner.web.service import ServerOptions, build_service
    from edge_runner.web.server import start_server

    with start_server(build_service(ServerOptions(model=tiny_models["int8"], host="127.0.0.1", port=0))) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/api/events", timeout=5)
        assert refused.value.code == 404 and "--camera" in json.load(refused.value)["error"]


def test_serve_camera_with_a_model_without_background_records_no_events(tiny_models, tmp_path):
    from edge_runner.web.service import ServerOptions, build_service

    pytest.importorskip("cv2", reason="the clip is written with OpenCV (pip install .[camera])")
    clip = write_clip(tmp_path / "c.avi", [BLUE] * 3)
    service = build_service(ServerOptions(model=tiny_models["int8"], host="127.0.0.1", port=0, camera=str(clip)))
    try:
        assert service.live is not None and service.recorder is None and service.live.on_frame is None
    finally:
        service.close()


def test_sigterm_closes_the_open_visit_before_exiting(watch_model, tmp_path):
    """systemd stops the service with SIGTERM: the visit in progress still gets its `left` event."""
    import signal

    clip = write_clip(tmp_path / "long.avi", [BLUE] * 5 + [RED] * 300)  # a cat that stays for 30 s
    events_file = tmp_path / "events.jsonl"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "edge_runner", "watch", "--camera", str(clip), "--model", str(watch_model), "--realtime",
         "--events", str(events_file)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (events_file.exists() and events_file.read_text()):
            time.sleep(0.1)
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0, err
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [(e["event"], e["label"]) for e in events] == [("arrived", "cat"), ("left", "cat")]
    assert "cat left after" in out and "(interrupted)" in err


def test_events_page_in_a_real_browser(watch_model, tmp_path, browser):
    """Debian's chromium opens /events (from the live page's link): the visit is listed and its snapshot shows."""
    from edge_runner.watcher.settings import WatchSettings
    from edge_runner.web.server import start_server
    from edge_runner.web.service import ServerOptions, build_service

    clip = visit_clip(tmp_path / "visit.avi", before=5, visit=20, after=15)
    options = ServerOptions(model=watch_model, host="127.0.0.1", port=0, camera=str(clip), camera_fps=30.0,
                            watch=WatchSettings(hold_s=0.3, snapshots=tmp_path / "snaps"))
    with start_server(build_service(options)) as server:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.service.recorder.state()["events"][1:]:
            time.sleep(0.2)
        context = browser.new_context(**PHONE)
        try:
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.goto(server.url + "/")
            page.click("text=Recent events and snapshots")
            page.wait_for_url("**/events")
            assert page.locator("h2", has_text="cat left").count() >= 1
            image = page.locator("img[alt^='best frame of cat']").first
            image.wait_for()
            assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
            assert not problems, problems  # no Content-Security-Policy refusal, no broken image
        finally:
            context.close()


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not found (Debian: apt install mosquitto; `make test` installs it as root)")
def test_mqtt_broker_down_at_start_gets_the_queued_event_once_it_is_up(tmp_path, caplog):
    pytest.importorskip("paho.mqtt", reason="the MQTT publisher needs paho-mqtt (pip install .[watch])")
    from edge_runner.watcher.mqtt import MqttPublisher

    port = free_port()
    broker = Broker(tmp_path, port)
    publisher = MqttPublisher("127.0.0.1", port, ["cat", "dog"], prefix="edgekit/late")
    try:
        publisher.publish_event({"event": "arrived", "label": "cat", "visit": 1, "start": 5.0, "peak_score": 0.9})
        time.sleep(1.5)  # at least one failed attempt
        assert not publisher.connected and "cannot connect" in caplog.text
        broker.start()
        subscriber = Subscriber(port, ["edgekit/late/#", "homeassistant/#"])
        try:
            # The state and the discovery configs arrive (live, or retained when the publisher
            # reconnected before the subscriber) ...
            state = subscriber.wait_for(lambda m: m[0] == "edgekit/late/state", 40, "with the state")
            assert json.loads(state[-1][1])["label"] == "cat"
            subscriber.wait_for(lambda m: m[0] == "homeassistant/sensor/edgekit_late/label/config", 10, "discovery")
        finally:
            subscriber.close()
        assert publisher.connected and publisher.connections == 1
        # ... and the event queued while the broker was down reached it (the broker's own log says so;
        # it is flushed when the broker stops).
        publisher.close()
        broker.process.terminate()
        broker.process.wait(10)
        assert re.search(r"Received PUBLISH from edgekit_late-\d+ \(d0, q1, r0, m\d+, 'edgekit/late/event'", broker.log.read_text())
    finally:
        publisher.close()
        broker.kill()


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not found (Debian: apt install mosquitto; `make test` installs it as root)")
def test_a_label_change_replaces_the_retained_discovery_on_a_real_broker(tmp_path):
    """A deployed model with other labels: Home Assistant (a subscriber arriving later) sees only the new ones."""
    pytest.importorskip("paho.mqtt", reason="the MQTT publisher needs paho-mqtt (pip install .[watch])")
    from edge_runner.watcher.mqtt import MqttPublisher

    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    publisher = MqttPublisher("127.0.0.1", port, ["red", "green"], prefix="edgekit/swap")
    topic = "homeassistant/binary_sensor/edgekit_swap/{}/config".format
    try:
        before = Subscriber(port, ["homeassistant/#"])
        try:
            before.wait_for(lambda m: m[0] == topic("red") and m[1], 20, "with the red sensor's config")
        finally:
            before.close()
        assert publisher.set_labels(["cat", "green"])
        after = Subscriber(port, ["homeassistant/#"])  # a new subscriber gets only what the broker retains
        try:
            after.wait_for(lambda m: m[0] == topic("cat") and m[2], 20, "with the cat sensor's retained config")
            time.sleep(0.5)  # every retained message arrives in one burst on subscription
            with after.lock:
                retained = {t: p for t, p, r in after.messages if r}
        finally:
            after.close()
        assert json.loads(retained[topic("cat")])["name"] == "Cat"
        assert topic("green") in retained and topic("red") not in retained  # the broker dropped red's config
    finally:
        publisher.close()
        broker.kill()
