"""Who may look: the access token of ``serve``, on every route of the real app, over real HTTP.

The routes are read from the Flask app's own ``url_map`` at collection time, so
a route added later (a blueprint, say) is tested without touching this file:
without the token, with a wrong one and with the right one (header and cookie).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from conftest import CLASS_COLOURS, REPO, draw_photo

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")

from edge_runner.web.access import (  # noqa: E402
    COOKIE_NAME,
    OPEN_PATHS,
    TOKEN_ENV,
    AccessError,
    Token,
    check_exposure,
    is_loopback,
    load_token,
)
from edge_runner.web.app import create_app  # noqa: E402
from edge_runner.web.server import main, start_server  # noqa: E402
from edge_runner.web.service import ServerOptions, Service, build_service  # noqa: E402

TOKEN = "k7Qp-" + "x9" * 12 + "Zr"  # 30 characters, as the installer's token_urlsafe(24) would be 32
WRONG = TOKEN[:-1] + "s"  # one character off
SAMPLE_VALUES = {"path": "app.js", "filename": "app.js", "string": "x", "int": "1", "float": "1.0", "uuid": str(uuid.UUID(int=1))}


def app_routes() -> list[tuple[str, str]]:
    """``(method, concrete path)`` for every rule of the app ``serve`` builds (static files as ``app.js``)."""
    options = ServerOptions(model=Path("unused.tflite"), token=Token(TOKEN, "test"))
    app = create_app(Service(options, pool=None))  # the routes only; nothing is loaded
    routes = []
    for rule in app.url_map.iter_rules():
        # <name> or <converter:name> or <converter(args):name> -> a sample value
        path = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: SAMPLE_VALUES.get(m.group(2)) or SAMPLE_VALUES.get(m.group(1) or "string", "x"),
            rule.rule,
        )
        for method in sorted(rule.methods):
            routes.append((method, path))
    return routes


ROUTES = app_routes()


# -- HTTP without following redirects ---------------------------------------------------


class Answer:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def call(base: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None, read: bool = True) -> Answer:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        # The MJPEG stream never ends: read its first bytes only.
        data = response.read(64) if response.getheader("Content-Type", "").startswith("multipart/x-mixed") else response.read()
        return Answer(response.status, response.headers, data)
    finally:
        conn.close()


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    draw_photo(CLASS_COLOURS["green"], size=(64, 48), seed=3).save(buffer, "JPEG")
    return buffer.getvalue()


def body_for(method: str) -> tuple[bytes | None, dict]:
    if method in ("POST", "PUT", "PATCH"):
        return photo_jpeg(), {"Content-Type": "application/octet-stream", "X-Filename": "green.jpg"}
    return None, {}


def write_video(path: Path, frames: int = 6) -> Path:
    cv2 = pytest.importorskip("cv2", reason="the live view reads video through OpenCV (pip install .[camera])")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.array(draw_photo(CLASS_COLOURS["red"], size=(64, 48), seed=i)), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def guarded(tiny_models, tmp_path_factory):
    """A server with a token and a live view (so the camera routes answer), on 127.0.0.1."""
    video = write_video(tmp_path_factory.mktemp("access") / "red.avi")
    options = ServerOptions(
        model=tiny_models["int8"], host="127.0.0.1", port=0, camera=str(video), camera_fps=20,
        token=Token(TOKEN, "test"), max_wrong_tokens=1_000_000,  # every route is tried with wrong tokens; the throttle: test_deploy.py
    )
    running = start_server(build_service(options))
    yield running
    running.stop()


def test_the_route_list_is_complete():
    paths = {path for _, path in ROUTES}
    assert {"/", "/healthz", "/api/model", "/api/classify", "/api/camera", "/api/camera/frame.jpg", "/camera.mjpg", "/static/app.js",
            "/api/model/rollback"} <= paths


# -- every route, three ways ---------------------------------------------------------------


@pytest.mark.parametrize("method, path", ROUTES)
def test_without_the_token_every_route_but_healthz_is_refused(guarded, method, path):
    body, headers = body_for(method)
    answer = call(guarded.url, method, path, headers, body)
    if path in OPEN_PATHS:
        assert answer.status == 200
        return
    assert answer.status == 401, (method, path, answer.status)
    assert TOKEN.encode() not in answer.body
    if method not in ("HEAD",):
        assert answer.json()["status"] == 401 and "Authorization: Bearer TOKEN" in answer.json()["error"]
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="edgekit"'


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("how", ["header", "cookie", "query"])
def test_a_wrong_token_is_refused_on_every_route(guarded, method, path, how):
    body, headers = body_for(method)
    if how == "header":
        headers["Authorization"] = f"Bearer {WRONG}"
    elif how == "cookie":
        headers["Cookie"] = f"{COOKIE_NAME}={Token(WRONG, 'x').session}"
    else:
        path = f"{path}?{urlencode({'token': WRONG})}"
    answer = call(guarded.url, method, path, headers, body)
    if path.split("?")[0] in OPEN_PATHS:  # open whatever is sent
        assert answer.status == 200
        return
    assert answer.status == 401, (method, path, how, answer.status)
    assert "Set-Cookie" not in answer.headers
    assert WRONG.encode() not in answer.body and TOKEN.encode() not in answer.body


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("how", ["header", "cookie"])
def test_the_right_token_opens_every_route(guarded, method, path, how):
    body, headers = body_for(method)
    if how == "header":
        headers["Authorization"] = f"Bearer {TOKEN}"
    else:
        headers["Cookie"] = f"{COOKIE_NAME}={Token(TOKEN, 'x').session}"
    answer = call(guarded.url, method, path, headers, body)
    # Every route of the kit answers 200 here; a route added later must at least not refuse a right token.
    assert answer.status not in (401, 403) and answer.status < 500, (method, path, how, answer.status, answer.body[:200])
    if path in {"/", "/api/model", "/api/classify", "/static/app.js", "/api/camera", "/api/camera/frame.jpg", "/camera.mjpg"} and (
            method, path) != ("POST", "/api/model"):  # a model upload (404 here: no --deploy-dir) is tested in test_deploy*.py
        assert answer.status == 200, (method, path, answer.status)


def test_right_token_answers_are_the_real_ones(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call(guarded.url, "GET", "/api/model", auth).json()["name"] == "tiny"
    body, headers = body_for("POST")
    answer = call(guarded.url, "POST", "/api/classify", {**auth, **headers}, body).json()
    assert answer["source"] == "green.jpg" and answer["label"] in ("red", "green", "blue")
    assert call(guarded.url, "GET", "/api/camera/frame.jpg", auth).body[:2] == b"\xff\xd8"
    assert call(guarded.url, "GET", "/camera.mjpg", auth).body.startswith(b"--frame")


# -- the browser's way in: asked once, then a cookie -------------------------------------------


def test_a_browser_is_shown_a_form_not_json(guarded):
    answer = call(guarded.url, "GET", "/", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status == 401 and answer.headers["Content-Type"].startswith("text/html")
    page = answer.body.decode()
    assert '<form method="post" action="/">' in page and 'type="password"' in page and "Set-Cookie" not in answer.headers
    assert "script" not in page  # nothing to run on the login page
    assert "script-src" not in answer.headers["Content-Security-Policy"] and "default-src 'none'" in answer.headers["Content-Security-Policy"]


def test_query_token_sets_a_strict_httponly_cookie_and_is_stripped_from_the_address(guarded):
    answer = call(guarded.url, "GET", f"/?lang=en&token={TOKEN}", {"Accept": "text/html"})
    assert answer.status == 303
    assert answer.headers["Location"] == "/?lang=en"  # the token is gone from the address bar
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and TOKEN not in cookie  # the cookie holds an HMAC, not the token
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes and "SameSite=Strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    page = call(guarded.url, "GET", "/", {"Cookie": f"{COOKIE_NAME}={value}"})
    assert page.status == 200 and b'<script src="/static/app.js"' in page.body
    assert call(guarded.url, "GET", "/camera.mjpg", {"Cookie": f"{COOKIE_NAME}={value}"}).status == 200


def test_login_form_post_sets_the_cookie_and_redirects_to_the_page(guarded):
    form = urlencode({"token": TOKEN}).encode()
    answer = call(guarded.url, "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    assert answer.status == 303 and answer.headers["Location"] == "/"
    assert "SameSite=Strict" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
    wrong = call(guarded.url, "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, urlencode({"token": WRONG}).encode())
    assert wrong.status == 401 and b"not right" in wrong.body and "Set-Cookie" not in wrong.headers


def test_redirect_after_the_token_stays_on_this_server(guarded):
    answer = call(guarded.url, "GET", f"//evil.example/?token={TOKEN}")
    assert answer.status == 303 and answer.headers["Location"].startswith("/evil.example")
    assert not answer.headers["Location"].startswith("//")


def test_the_page_in_a_real_browser_asks_once_then_works(guarded, tmp_path, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(guarded.url + "/")
        page.fill("#token", WRONG)
        page.click("button[type=submit]")
        assert page.inner_text(".error") == "That token is not right. Try again."
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_function("() => document.querySelector('#model') && document.querySelector('#model').textContent.includes('tiny')")
        assert page.url == guarded.url + "/"
        page.wait_for_function("() => document.querySelector('#live').naturalWidth > 0", timeout=20_000)
        cookies = context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [(COOKIE_NAME, True, "Strict")]
        assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it
        page.screenshot(path=str(tmp_path / "after_login.png"))
    finally:
        context.close()


# -- where the server may listen -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False),
     ("10.0.0.1", False), ("no-such-host.invalid", False)],
)  # fmt: skip
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_all_interfaces_without_a_token_is_refused_with_exit_2(tiny_models, capsys, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["--model", str(tiny_models["int8"]), "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edge_runner serve: error: --host 0.0.0.0 opens the camera")
    assert "--token-file" in err and "--trusted-network" in err
    with pytest.raises(AccessError):
        build_service(ServerOptions(model=tiny_models["int8"], host="192.168.1.20"))
    check_exposure("0.0.0.0", Token(TOKEN, "t"), trusted_network=False)  # a token makes it fine
    check_exposure("127.0.0.1", None, trusted_network=False)  # loopback without a token, as before


def test_trusted_network_serves_without_a_token(tiny_models):
    server = start_server(build_service(ServerOptions(model=tiny_models["int8"], host="0.0.0.0", port=0, trusted_network=True)))
    try:
        assert call(f"http://127.0.0.1:{server.port}", "GET", "/api/model").status == 200
    finally:
        server.stop()


def test_token_from_file_or_environment(tmp_path, monkeypatch):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    path.chmod(0o600)
    token = load_token(path, environ={TOKEN_ENV: WRONG})
    assert token.matches(TOKEN) and token.origin == f"--token-file {path}"  # the file wins
    assert load_token(None, environ={TOKEN_ENV: TOKEN}).origin == f"${TOKEN_ENV}"
    assert load_token(None, environ={}) is None and load_token(None, environ={TOKEN_ENV: " "}) is None
    assert TOKEN not in repr(token) and TOKEN not in repr(ServerOptions(model=Path("m.tflite"), token=token))
    assert not token.matches(WRONG) and not token.matches("") and not token.matches(None)


@pytest.mark.parametrize(
    "content, message",
    [("", "the token is empty"), ("short", "the token has 5 characters; at least 16"), ("has a space in it!!", "printable ASCII without spaces")],
)
def test_bad_token_files_are_one_line_errors(tmp_path, capsys, tiny_models, content, message):
    path = tmp_path / "token"
    path.write_text(content)
    assert main(["--model", str(tiny_models["int8"]), "--token-file", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"edge_runner serve: error: --token-file {path}: {err.split(': ', 3)[3]}" and message in err
    assert err.count("\n") == 1 and (not content or content not in err)


def test_missing_token_file(tmp_path, capsys, tiny_models):
    assert main(["--model", str(tiny_models["int8"]), "--token-file", str(tmp_path / "absent"), "--port", "0"]) == 2
    assert f"--token-file {tmp_path / 'absent'}: no such file" in capsys.readouterr().err


# -- the token never reaches a log -----------------------------------------------------------


def test_the_token_never_appears_in_logs(tiny_models, caplog):
    caplog.set_level(logging.DEBUG)
    service = build_service(ServerOptions(model=tiny_models["int8"], host="127.0.0.1", port=0, token=Token(TOKEN, "test")))
    server = start_server(service)
    try:
        body, headers = body_for("POST")
        for path, extra in [
            (f"/?token={TOKEN}", {}), (f"/?token={WRONG}", {}), ("/api/model", {"Authorization": f"Bearer {WRONG}"}),
            (f"/nowhere?token={TOKEN}", {"Authorization": f"Bearer {TOKEN}"}),
        ]:
            call(server.url, "GET", path, extra)

        def broken(*args, **kwargs):
            raise RuntimeError("the interpreter fell over")

        service.pool.acquire = broken  # an internal error is logged with the request: not with its token
        answer = call(server.url, "POST", f"/api/classify?token={TOKEN}", {**headers, "Authorization": f"Bearer {TOKEN}"}, body)
        assert answer.status == 500
    finally:
        server.stop()
    assert "unexpected error on POST /api/classify" in caplog.text  # the log was captured
    assert TOKEN not in caplog.text and WRONG not in caplog.text


def test_the_command_line_never_prints_the_token(tiny_models, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    command = [
        sys.executable, "-m", "edge_runner", "serve", "--model", str(tiny_models["int8"]), "--port", "0",
        "--token-file", str(token_file), "--camera", str(write_video(tmp_path / "red.avi")),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
            if found:
                break
        assert found, process.stderr.read()
        base = found.group(1)
        assert call(base, "GET", "/api/model").status == 401
        assert call(base, "GET", "/api/model", {"Authorization": f"Bearer {TOKEN}"}).status == 200
        assert call(base, "GET", f"/?token={TOKEN}").status == 303
        assert call(base, "GET", f"/?token={WRONG}").status == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        out, err = "".join(lines) + process.stdout.read(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"access token required (from --token-file {token_file})" in out
    assert TOKEN not in out + err and WRONG not in out + err
