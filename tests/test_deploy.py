"""Deploying a model to a device: the folder and its kill-at-each-step safety, the hot swap's parts, the token throttle.

The real ``serve`` process (upload, rollback, CLI, restart, the camera across a swap) is in test_deploy_serve.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO
from deploy_helpers import deploy_models, http, multipart, red_jpeg

from edge_runner.common.crash import CRASH_ENV, CRASH_EXIT_STATUS
from edge_runner.core.model import Classifier
from edge_runner.core.pool import ClassifierPool
from edge_runner.core.slot import CURRENT, DeployDir, DeployError, check_model
from edge_runner.web.throttle import Throttle

TOKEN = "k7Qp-" + "x9" * 12 + "Zr"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return deploy_models(tmp_path_factory.mktemp("models"))


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- checking a model before it may become current -------------------------------------------------


def test_check_model_refuses_what_cannot_serve(models, tmp_path):
    assert check_model(models["colours"], load=Classifier).labels == ("red", "green", "blue")
    cases = {
        "junk": (b"\x00" * 64, "TFL3"),
        "bare": (models["bare"].read_bytes(), "no input contract embedded"),
        "cut": (models["pets"].read_bytes()[:2000], "the model"),
    }
    for name, (data, words) in cases.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        with pytest.raises(DeployError, match=words) as caught:
            check_model(path, load=Classifier)
        assert caught.value.status == 422 and str(tmp_path) not in caught.value.message


def test_deploy_refuses_and_keeps_the_old_state(models, tmp_path):
    folder = DeployDir(tmp_path / "dep")
    running = Classifier(models["colours"])
    load = lambda p: (check_model(p, load=Classifier),) * 2  # noqa: E731
    applied = []
    with pytest.raises(DeployError):
        folder.deploy(b"\x00" * 100, running=running, load=load, apply=applied.append)
    assert applied == [] and not (tmp_path / "dep" / CURRENT).exists() and not list((tmp_path / "dep" / "models").iterdir())
    done = folder.deploy(models["pets"].read_bytes(), running=running, load=load, apply=applied.append)
    assert done.current.sha256 == sha(models["pets"]) and done.previous.sha256 == running.sha256 and len(applied) == 1
    state = json.loads((tmp_path / "dep" / CURRENT).read_text())
    assert state["version"] == 1 and state["current"]["labels"] == ["cat", "dog", "other"]
    assert state["previous"]["file"] == f"models/{running.sha256[:16]}.tflite"
    again = folder.deploy(models["pets"].read_bytes(), running=applied[0], load=load, apply=applied.append)
    assert again.unchanged and len(applied) == 1
    back = folder.rollback(load=load, apply=applied.append)
    assert back.current.sha256 == running.sha256 and back.previous.sha256 == sha(models["pets"])


# -- kill at each step: a child process per crash point --------------------------------------------

CHILD = """
import sys
from pathlib import Path
from edge_runner.core.model import Classifier
from edge_runner.core.slot import DeployDir, check_model
folder, running, op = DeployDir(sys.argv[1]), Classifier(sys.argv[2]), sys.argv[3]
load = lambda p: (check_model(p, load=Classifier),) * 2
if op == "rollback":
    folder.rollback(load=load, apply=lambda c: None)
else:
    folder.deploy(Path(op).read_bytes(), running=running, load=load, apply=lambda c: None)
"""
DEPLOY_POINTS = ["store:temp-written", "store:renamed", "deploy:loaded", "deploy:switch-temp", "deploy:switched", "deploy:pruned"]
ROLLBACK_POINTS = ["rollback:loaded", "rollback:switch-temp", "rollback:switched"]


def child(folder: Path, running: Path, op: str, crash: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run([sys.executable, "-c", CHILD, str(folder), str(running), op], env=env, capture_output=True,
                          text=True, timeout=120)


def served_after_restart(folder: Path, fallback: Path) -> str:
    """The sha256 ``serve --deploy-dir folder --model fallback`` starts on (the same build_service), leftovers gone."""
    from edge_runner.web.service import ServerOptions, build_service

    service = build_service(ServerOptions(model=fallback, deploy_dir=folder, interpreters=1))
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], "a temporary file survived the start"
    state = DeployDir(folder).read()
    kept = {Path(e.file).name for e in (state.current, state.previous) if e}
    assert {p.name for p in (folder / "models").iterdir()} == kept
    return service.pool.template.sha256


@pytest.mark.parametrize("crash", DEPLOY_POINTS)
def test_killed_during_the_first_deploy_leaves_the_old_model_or_the_new(models, tmp_path, crash):
    folder = tmp_path / "dep"
    done = child(folder, models["colours"], str(models["pets"]), crash)
    assert done.returncode == CRASH_EXIT_STATUS, done.stderr
    served = served_after_restart(folder, models["colours"])
    switched = crash in ("deploy:switched", "deploy:pruned")
    assert served == sha(models["pets"] if switched else models["colours"])
    # the next run works: a deploy after the crash switches
    assert child(folder, models["colours"] if not switched else models["pets"], str(models["swapped"]), None).returncode == 0
    assert served_after_restart(folder, models["colours"]) == sha(models["swapped"])


@pytest.mark.parametrize("crash", DEPLOY_POINTS[:1] + DEPLOY_POINTS[3:5] + ROLLBACK_POINTS)
def test_killed_during_a_later_deploy_or_a_rollback(models, tmp_path, crash):
    folder = tmp_path / "dep"
    assert child(folder, models["colours"], str(models["pets"]), None).returncode == 0
    op = "rollback" if crash.startswith("rollback") else str(models["swapped"])
    done = child(folder, models["pets"], op, crash)
    assert done.returncode == CRASH_EXIT_STATUS, done.stderr
    new = models["colours"] if op == "rollback" else models["swapped"]
    switched = crash.endswith(":switched")
    assert served_after_restart(folder, models["colours"]) == sha(new if switched else models["pets"])
    state = DeployDir(folder).read()
    assert state.previous is not None and state.previous.sha256 == sha(models["pets"] if switched else models["colours"])


# -- the running parts ------------------------------------------------------------------------------


def test_pool_replace_lets_borrowed_interpreters_finish_on_the_old_model(models):
    pool = ClassifierPool(models["colours"], size=2)
    old = pool.template
    with pool.acquire() as borrowed:
        pool.replace(ClassifierPool(models["pets"], size=2))
        assert borrowed.sha256 == old.sha256  # the request in flight keeps its interpreter
        with pool.acquire() as fresh:
            assert fresh.labels == ("cat", "dog", "other")
    assert pool.idle == 2 and all(c.labels[0] == "cat" for c in list(pool._idle.queue))


def test_mqtt_discovery_is_republished_when_the_labels_change(monkeypatch):
    pytest.importorskip("paho.mqtt", reason="MQTT needs paho-mqtt (pip install .[watch])")
    from edge_runner.watcher.mqtt import MqttPublisher

    publisher = MqttPublisher("127.0.0.1", 9, ["red", "green"], prefix="edgekit/test")
    sent = []

    class Info:
        rc = 0

    monkeypatch.setattr(publisher._client, "publish", lambda topic, payload, qos, retain: sent.append((topic, payload, retain)) or Info())
    assert not publisher.set_labels(["red", "green"]) and sent == []
    assert publisher.set_labels(["cat", "green"])
    topics = {topic: payload for topic, payload, retain in sent if retain}
    assert topics["homeassistant/binary_sensor/edgekit_test/red/config"] == b""  # removed from Home Assistant
    assert json.loads(topics["homeassistant/binary_sensor/edgekit_test/cat/config"])["name"] == "Cat"
    assert "homeassistant/sensor/edgekit_test/label/config" in topics
    publisher.close(timeout=0.1)


def test_watch_follows_the_folder_and_refuses_a_model_that_cannot_watch(models, tmp_path):
    from edge_runner.watcher.follow import FollowedModel
    from edge_runner.watcher.settings import WatchSettings

    folder = DeployDir(tmp_path / "dep")
    running = Classifier(models["colours"])
    load = lambda p: (check_model(p, load=Classifier),) * 2  # noqa: E731
    said = []
    switched = []

    class Recorder:
        def switch_model(self, is_interest, min_score, labels, *, model_sha256=None, spec=None):
            switched.append((tuple(labels), min_score, model_sha256))

    follow = FollowedModel(DeployDir(tmp_path / "dep", create=False), running, WatchSettings(), Recorder(), say=said.append)
    assert not follow.poll()
    folder.deploy(models["pets"].read_bytes(), running=running, load=load, apply=lambda c: None)
    frame = __import__("numpy").full((48, 64, 3), (220, 40, 40), "uint8")
    assert follow.classify_image(frame).label == "red"
    assert follow.poll() and follow.classify_image(frame).label == "cat"
    assert switched == [(("cat", "dog"), 0.8, sha(models["pets"]))] and "sha256 " + sha(models["pets"]) in said[-1] and "labels now cat" in said[-1]
    # a current model that cannot make visits (no background label, no threshold) is reported once and not used
    from deploy_helpers import _embed
    from edge_runner.core.spec import InputSpec

    plain = tmp_path / "plain.tflite"
    spec = InputSpec(labels=("a", "b", "c"), height=32, width=32, name="plain")
    plain.write_bytes(_embed(models["bare"].read_bytes(), spec))
    folder.deploy(plain.read_bytes(), running=follow.current, load=load, apply=lambda c: None)
    assert not follow.poll() and not follow.poll()
    assert follow.current.labels == ("cat", "dog", "other") and len([s for s in said if "not switching" in s]) == 1


# -- the token throttle ------------------------------------------------------------------------------


def test_throttle_locks_out_grows_caps_resets_and_stays_bounded():
    now = [1000.0]
    throttle = Throttle(5, window_s=60, first_lockout_s=30, max_lockout_s=300, max_addresses=3, clock=lambda: now[0])
    assert [throttle.failed("10.0.0.1") for _ in range(5)] == [0, 0, 0, 0, 30]
    assert throttle.retry_after("10.0.0.1") == 31 and throttle.retry_after("10.0.0.2") == 0
    lengths = []
    for _ in range(6):
        now[0] += 400
        lengths.append([throttle.failed("10.0.0.1") for _ in range(5)][-1])
    assert lengths == [60, 120, 240, 300, 300, 300]
    throttle.succeeded("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 0
    assert [throttle.failed("10.0.0.1") for _ in range(5)][-1] == 30  # back to the first lock-out
    now[0] += 1000
    assert [throttle.failed("10.0.0.9") for _ in range(4)] == [0] * 4  # 4 in a minute: no lock-out
    now[0] += 61
    assert throttle.failed("10.0.0.9") == 0  # the old ones fell out of the window
    for i in range(10):
        throttle.failed(f"192.168.1.{i}")
    assert len(throttle) == 3
    assert Throttle.key("2001:db8::1") == Throttle.key("2001:db8::ffff") == "2001:db8::/64"
    assert Throttle.key("::ffff:10.0.0.1") == "10.0.0.1"


@pytest.fixture
def guarded_server(models, tmp_path):
    pytest.importorskip("flask")
    from edge_runner.web.access import Token
    from edge_runner.web.server import start_server
    from edge_runner.web.service import ServerOptions, build_service

    options = ServerOptions(model=models["colours"], port=0, interpreters=1, token=Token(TOKEN, "test"), deploy_dir=tmp_path / "dep")
    running = start_server(build_service(options))
    yield running
    running.stop()


def call(url: str, path: str, token: str | None, source: str, method: str = "GET", body: bytes | None = None,
         headers: dict | None = None):
    import http.client

    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    try:
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        conn.close()


def test_wrong_tokens_are_throttled_per_address_over_http(guarded_server):
    url, wrong = guarded_server.url, TOKEN[:-1] + "s"
    statuses = [call(url, "/api/model", wrong, "127.0.0.1")[0] for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    status, retry, body = call(url, "/api/model", TOKEN, "127.0.0.1")  # locked out: even the right token waits
    assert status == 429 and 25 <= int(retry) <= 31 and b"too many wrong access tokens" in body
    status, retry, _ = call(url, "/api/model", wrong, "127.0.0.1", method="POST", body=b"x")
    assert status == 429 and retry
    assert call(url, "/healthz", None, "127.0.0.1")[0] == 200  # the liveness probe stays open
    assert call(url, "/api/model", TOKEN, "127.0.0.2")[0] == 200  # another address is not affected
    assert [call(url, "/api/model", wrong, "127.0.0.2")[0] for _ in range(4)] == [401] * 4
    assert call(url, "/api/model", TOKEN, "127.0.0.2")[0] == 200  # a right token resets its count
    assert [call(url, "/api/model", wrong, "127.0.0.2")[0] for _ in range(4)] == [401] * 4


def test_model_routes_are_behind_the_token(guarded_server, models):
    body, headers = multipart("model", "pets.tflite", models["pets"].read_bytes())
    for path, data in (("/api/model", body), ("/api/model/rollback", b"")):
        status, _, answer = call(guarded_server.url, path, None, "127.0.0.3", method="POST", body=data, headers=headers)
        assert status == 401 and b"Authorization: Bearer TOKEN" in answer
    assert guarded_server.service.pool.template.labels == ("red", "green", "blue")
    status, _, answer = call(guarded_server.url, "/api/model", TOKEN, "127.0.0.3", method="POST", body=body, headers=headers)
    assert status == 200 and json.loads(answer)["labels"] == ["cat", "dog", "other"]


def test_requests_during_a_swap_all_answer(guarded_server, models):
    """Uploads racing with switches back and forth: every answer is a 200 from one of the two models."""
    url, auth = guarded_server.url, {"Authorization": f"Bearer {TOKEN}"}
    photo, photo_headers = multipart("file", "red.jpg", red_jpeg())
    labels, errors = [], []

    def classify():
        for _ in range(25):
            status, _, answer = http(url + "/api/classify", data=photo, headers={**auth, **photo_headers})
            (labels if status == 200 else errors).append(answer.get("label") if status == 200 else (status, answer))

    threads = [threading.Thread(target=classify) for _ in range(3)]
    for thread in threads:
        thread.start()
    for name in ("pets", "larger", "pets", "colours"):
        body, headers = multipart("model", f"{name}.tflite", models[name].read_bytes())
        status, _, answer = http(url + "/api/model", data=body, headers={**auth, **headers})
        assert status == 200, answer
    for thread in threads:
        thread.join()
    assert not errors and set(labels) <= {"red", "cat"} and len(labels) == 75
    body, headers = multipart("model", "larger.tflite", models["larger"].read_bytes())  # another input size is accepted
    assert http(url + "/api/model", data=body, headers={**auth, **headers})[2]["labels"] == ["red", "green", "blue"]
    assert guarded_server.service.pool.template.spec.height == 48
    status, _, answer = http(url + "/api/classify", data=photo, headers={**auth, **photo_headers})
    assert status == 200 and answer["label"] == "red"


def test_serve_camera_recorder_switches_and_a_model_without_visits_is_refused(models, tmp_path):
    pytest.importorskip("cv2", reason="the clip is read with OpenCV (pip install .[camera])")
    from conftest import write_clip
    from deploy_helpers import _embed
    from edge_runner.core.spec import InputSpec
    from edge_runner.web.service import ServerOptions, build_service

    clip = write_clip(tmp_path / "red.avi", [(220, 40, 40)] * 5)
    service = build_service(ServerOptions(model=models["colours"], camera=str(clip), interpreters=1, deploy_dir=tmp_path / "dep"))
    try:
        assert service.recorder.tracker.is_interest("red") and not service.recorder.tracker.is_interest("cat")
        answer = service.models.deploy(models["pets"].read_bytes())
        assert answer["labels_changed"] and service.live.classifier.sha256 == answer["sha256"]
        assert service.recorder.tracker.is_interest("cat") and not service.recorder.tracker.is_interest("other")
        plain = _embed(models["bare"].read_bytes(), InputSpec(labels=("a", "b", "c"), height=32, width=32, name="plain"))
        with pytest.raises(DeployError, match="watcher") as caught:
            service.models.deploy(plain)
        assert caught.value.status == 422 and service.pool.template.sha256 == answer["sha256"]
        assert service.describe_model()["deployed"]["switches"] == 1
    finally:
        service.close()


def test_deploy_command_line_usage_errors(capsys, models):
    from edge_runner.cli.runner import main

    assert main(["deploy", "--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "edge_runner deploy: error: MODEL is required (or --rollback)"
    assert main(["deploy", str(models["pets"]), "--rollback", "--url", "http://127.0.0.1:9"]) == 2
    assert "either MODEL or --rollback" in capsys.readouterr().err
    assert main(["deploy", str(models["pets"]), "--url", "pi.local:8000"]) == 2
    assert "--url must start with http://" in capsys.readouterr().err
    assert main(["deploy", "missing.tflite", "--url", "http://127.0.0.1:9"]) == 2
    assert "missing.tflite: cannot read it" in capsys.readouterr().err
    assert main(["deploy", str(models["pets"]), "--url", "http://127.0.0.1:9", "--timeout", "5"]) == 1
    assert capsys.readouterr().err.startswith("edge_runner deploy: error: http://127.0.0.1:9: cannot reach the device")


def test_a_damaged_current_json_serves_the_model_given_and_the_next_deploy_repairs_it(models, tmp_path, caplog):
    folder = tmp_path / "dep"
    assert child(folder, models["colours"], str(models["pets"]), None).returncode == 0
    (folder / CURRENT).write_text("{ not json")
    with caplog.at_level("WARNING"):
        assert served_after_restart_unchecked(folder, models["colours"]) == sha(models["colours"])
    assert "current.json: unreadable" in caplog.text
    assert child(folder, models["colours"], str(models["swapped"]), None).returncode == 0
    assert served_after_restart(folder, models["colours"]) == sha(models["swapped"])


def served_after_restart_unchecked(folder: Path, fallback: Path) -> str:
    from edge_runner.web.service import ServerOptions, build_service

    return build_service(ServerOptions(model=fallback, deploy_dir=folder, interpreters=1)).pool.template.sha256
