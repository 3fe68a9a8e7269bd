"""The web server: JSON API, limits, archive, concurrency and the live camera view.

Every test talks HTTP to a real waitress server started on 127.0.0.1 with an
ephemeral port, serving the tiny test models. Expected answers come from a
``Classifier`` run directly on the same bytes.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import struct
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, draw_photo
from PIL import Image

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")

from edge_runner.core.image import preprocess  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.web.server import build_parser, main, start_server  # noqa: E402
from edge_runner.web.service import ServerOptions, build_service  # noqa: E402

ARCHIVE_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{32}\.(jpg|png)$")


# -- HTTP helpers (standard library only) ---------------------------------------


class Answer:
    def __init__(self, status: int, body: bytes, headers) -> None:
        self.status, self.body, self.headers = status, body, headers

    def json(self):
        return json.loads(self.body)


def request(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None) -> Answer:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Answer(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.read(), exc.headers)


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, dict]:
    """``{"field": (filename, bytes)}`` → (body, headers) of a multipart/form-data request."""
    boundary = uuid.uuid4().hex
    parts = []
    for field, (filename, data) in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_file(base: str, filename: str, data: bytes, path: str = "/api/classify", field: str = "file") -> Answer:
    body, headers = multipart({field: (filename, data)})
    return request(base + path, body, headers)


def post_raw(base: str, data: bytes, filename: str | None = None, path: str = "/api/classify") -> Answer:
    headers = {"Content-Type": "application/octet-stream"}
    if filename is not None:
        headers["X-Filename"] = filename
    return request(base + path, data, headers)


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def without_latency(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "latency_ms"}


def expected(classifier: Classifier, data: bytes, name: str, top_k: int = 3) -> dict:
    pixels = preprocess(data, classifier.spec, name=name)
    return without_latency(classifier.classify(pixels.array, top_k=top_k).to_dict(name))


def bomb_png(side: int = 20_000) -> bytes:
    """A real decompression bomb: a 1-bit PNG of side x side black pixels, a few tens of KB on disk."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_path(tiny_models) -> Path:
    return tiny_models["int8"]


@pytest.fixture(scope="module")
def reference(model_path) -> Classifier:
    return Classifier(model_path)


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes]]:
    """Generated photos of every class colour, as JPEG and PNG, with their file names."""
    out = []
    for index, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for seed in range(4):
            image = draw_photo(colour, size=(96 + 16 * seed, 72 + 8 * seed), seed=100 * index + seed)
            fmt = "PNG" if seed % 2 else "JPEG"
            out.append((f"{name}_{seed}.{fmt.lower()}", encode(image, fmt)))
    return out


@pytest.fixture
def serve(model_path):
    """A factory: ``serve(**options)`` → a running server (stopped after the test)."""
    running = []

    def start(**overrides):
        options = ServerOptions(model=model_path, host="127.0.0.1", port=0, **overrides)
        server = start_server(build_service(options))
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def server(model_path):
    """One shared server with the default options."""
    running = start_server(build_service(ServerOptions(model=model_path, host="127.0.0.1", port=0)))
    yield running
    running.stop()


# -- the API -----------------------------------------------------------------------


def test_classify_multipart_matches_the_classifier(server, reference, photos):
    for name, data in photos:
        answer = post_file(server.url, name, data)
        assert answer.status == 200, answer.body
        result = answer.json()
        assert without_latency(result) == expected(reference, data, name)
        assert result["latency_ms"] >= 0
        assert list(result) == ["source", "label", "detected", "score", "top_k", "latency_ms"]


def test_classify_raw_body_and_client_name_is_display_only(server, reference, photos):
    name, data = photos[0]
    answer = post_raw(server.url, data, filename="../../etc/passwd%00.jpg")
    assert answer.status == 200, answer.body
    result = answer.json()
    assert result["source"] == "passwd.jpg"  # last component, control character dropped
    assert without_latency(result) == expected(reference, data, "passwd.jpg")
    windows = post_raw(server.url, data, filename="C:%5CUsers%5Cme%5Ccat%20%C3%A9t%C3%A9.jpg").json()
    assert windows["source"] == "cat \u00e9t\u00e9.jpg"
    anonymous = post_raw(server.url, data).json()
    assert anonymous["source"] == "upload"


def test_top_k_parameter(server, reference, photos):
    name, data = photos[1]
    answer = post_file(server.url, name, data, path="/api/classify?top_k=1")
    assert answer.status == 200
    assert without_latency(answer.json()) == expected(reference, data, name, top_k=1)
    bad = post_file(server.url, name, data, path="/api/classify?top_k=9")
    assert bad.status == 400
    assert "top_k must be an integer from 1 to 3, received '9'" in bad.json()["error"]


def test_model_and_health(server, model_path, reference):
    model = request(server.url + "/api/model").json()
    assert model["name"] == "tiny"
    assert model["labels"] == ["red", "green", "blue"]
    assert model["contract"] == reference.spec.to_dict()
    assert model["runtime"] == {"name": reference.runtime.name, "version": reference.runtime.version}
    assert model["variant"] == reference.variant == "uint8"
    assert model["size_bytes"] == model_path.stat().st_size
    assert model["max_upload_bytes"] == 10 * 1024 * 1024
    assert model["camera"] is False
    health = request(server.url + "/healthz")
    assert health.status == 200
    assert health.json()["status"] == "ok"
    assert health.headers["Cache-Control"] == "no-store"


def test_page_and_static_files_are_served(server):
    page = request(server.url + "/")
    assert page.status == 200
    html = page.body.decode()
    assert '<script src="/static/app.js"' in html and "/static/style.css" in html
    assert "'self'" in page.headers["Content-Security-Policy"]
    for asset in ("app.js", "style.css"):
        assert request(f"{server.url}/static/{asset}").status == 200
    # No resource from another host: the page must work offline.
    for text in (html, request(server.url + "/static/app.js").body.decode(), request(server.url + "/static/style.css").body.decode()):
        assert "http://" not in text and "https://" not in text


# -- refusals -------------------------------------------------------------------------


def test_not_an_image_is_refused_with_a_message(server):
    answer = post_file(server.url, "notes.txt", b"just some text, not a photo")
    assert answer.status == 415
    assert answer.json()["error"] == "notes.txt: not an image (no decoder recognises its content)"
    raw = post_raw(server.url, b"\x00" * 100, filename="zeros.bin")
    assert raw.status == 415 and raw.json()["error"].startswith("zeros.bin: not an image")


def test_truncated_and_empty_uploads(server, photos):
    name, data = next(p for p in photos if p[0].endswith(".jpeg"))
    truncated = post_file(server.url, name, data[: len(data) // 3])
    assert truncated.status == 415
    assert truncated.json()["error"].startswith(f"{name}: corrupt or truncated image data")
    empty = post_file(server.url, "empty.jpg", b"")
    assert empty.status == 400 and "empty upload" in empty.json()["error"]
    no_body = request(server.url + "/api/classify", b"", {"Content-Type": "application/octet-stream"})
    assert no_body.status == 400
    no_file = request(server.url + "/api/classify", b"--x--", {"Content-Type": "multipart/form-data; boundary=x"})
    assert no_file.status == 400
    assert "multipart field named 'file'" in no_file.json()["error"]


def test_unknown_routes_and_methods_answer_json(server):
    missing = request(server.url + "/api/nothing")
    assert missing.status == 404 and "error" in missing.json()
    wrong_method = request(server.url + "/api/classify")
    assert wrong_method.status == 405 and "error" in wrong_method.json()
    camera = request(server.url + "/api/camera")
    assert camera.status == 404
    assert camera.json()["error"] == "the camera is off: start the server with --camera [SOURCE]"


def test_decompression_bomb_is_refused(server):
    bomb = bomb_png()
    assert len(bomb) < 200_000
    answer = post_file(server.url, "bomb.png", bomb)
    assert answer.status == 415
    assert "bomb.png: refused as a possible decompression bomb" in answer.json()["error"]
    assert request(server.url + "/healthz").status == 200


def test_upload_size_limit(serve, reference):
    running = serve(max_upload_mb=0.25)  # 256 KiB
    limit = 256 * 1024
    noise = np.random.default_rng(0).integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
    big = encode(Image.fromarray(noise), "PNG")  # ~270 KB of incompressible pixels
    assert len(big) > limit
    for answer in (post_file(running.url, "big.png", big), post_raw(running.url, big, "big.png")):
        assert answer.status == 413
        message = answer.json()["error"]
        assert "the limit is 256 KB (server option --max-upload-mb)" in message
    # Far beyond the limit waitress refuses the request from its headers, before reading the body.
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as conn:
        conn.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 413 ")
    # Just under the limit is fine, and the server still answers afterwards.
    small = encode(Image.fromarray(noise[:200, :200]), "PNG")
    assert len(small) < limit
    answer = post_file(running.url, "small.png", small)
    assert answer.status == 200
    assert without_latency(answer.json()) == expected(reference, small, "small.png")
    assert request(running.url + "/api/model").json()["max_upload_bytes"] == limit


def test_bad_requests_never_take_the_server_down(server, photos, monkeypatch):
    host, port = "127.0.0.1", server.port
    # Garbage instead of HTTP, a request cut off mid-body, and a client that just disconnects.
    for payload in (
        b"GARBAGE\r\n\r\n",
        b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"\xff\xd8" * 10,
        b"",
    ):
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(payload)
    # A bug inside a request is a 500 with a message, and only that request fails.
    def broken(*args, **kwargs):
        raise RuntimeError("simulated interpreter failure")

    monkeypatch.setattr(Classifier, "classify", broken)
    name, data = photos[0]
    failed = post_file(server.url, name, data)
    assert failed.status == 500
    assert failed.json()["error"] == "internal error (RuntimeError); see the server log"
    monkeypatch.undo()
    assert post_file(server.url, name, data).status == 200
    assert request(server.url + "/healthz").json()["interpreters_idle"] == 2


def test_uploads_are_never_written_to_disk_without_archive(server, photos, monkeypatch, tmp_path):
    """A 2 MB multipart upload is bigger than Werkzeug's and waitress's default spooling thresholds."""
    created = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        original = getattr(tempfile, name)

        def recording(*args, _original=original, _name=name, **kwargs):
            created.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(tempfile, name, recording)
    monkeypatch.chdir(tmp_path)
    noise = np.random.default_rng(1).integers(0, 256, size=(820, 820, 3), dtype=np.uint8)
    big = encode(Image.fromarray(noise), "PNG")
    assert len(big) > 1_900_000
    answer = post_file(server.url, "../big.png", big)
    assert answer.status == 200
    assert "X-Archived-As" not in answer.headers
    assert created == []
    assert list(tmp_path.iterdir()) == []


# -- archive -----------------------------------------------------------------------------


def test_archive_keeps_uploads_under_generated_names(serve, photos, tmp_path, reference):
    archive = tmp_path / "kept" / "uploads"
    running = serve(archive=archive)
    jpeg = next(p for p in photos if p[0].endswith(".jpeg"))[1]
    png = next(p for p in photos if p[0].endswith(".png"))[1]
    kept = []
    for client_name, data in (("../../escape.png", jpeg), ("/etc/cron.d/x.jpg", png), ("a/b/c.gif", jpeg)):
        answer = post_file(running.url, client_name, data)
        assert answer.status == 200
        kept.append((answer.headers["X-Archived-As"], data, answer.json()))
    assert post_file(running.url, "bad.jpg", b"not an image").status == 415  # refused uploads are not kept

    files = sorted(p.name for p in archive.iterdir() if p.name != "predictions.jsonl")
    assert files == sorted(name for name, _, _ in kept)
    for name, data, result in kept:
        assert ARCHIVE_NAME.match(name), name
        assert (archive / name).read_bytes() == data
    assert [Path(name).suffix for name, _, _ in kept] == [".jpg", ".png", ".jpg"]  # sniffed, not the client's
    # Nothing anywhere else under tmp_path, no temp file left behind.
    everything = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert everything == sorted(["kept", "kept/uploads", "kept/uploads/predictions.jsonl"] + [f"kept/uploads/{n}" for n, _, _ in kept])
    log = [json.loads(line) for line in (archive / "predictions.jsonl").read_text().splitlines()]
    assert [entry["file"] for entry in log] == [name for name, _, _ in kept]
    assert [entry["client_name"] for entry in log] == ["escape.png", "x.jpg", "c.gif"]
    for entry, (_, data, result) in zip(log, kept):
        assert entry["prediction"]["label"] == result["label"]
        assert entry["prediction"]["top_k"] == result["top_k"]


def test_archive_that_cannot_be_created_is_a_clear_error(model_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from edge_runner.web.archive import ArchiveError

    with pytest.raises(ArchiveError, match="--archive must be a folder"):
        build_service(ServerOptions(model=model_path, port=0, archive=blocker))


# -- concurrency -------------------------------------------------------------------------


def test_eight_clients_fifty_requests_each(server, reference, photos):
    answers = {name: expected(reference, data, name) for name, data in photos}
    errors: list[str] = []
    counts = [0] * 8

    def client(index: int) -> None:
        rng = np.random.default_rng(index)
        for _ in range(50):
            name, data = photos[int(rng.integers(len(photos)))]
            try:
                answer = post_file(server.url, name, data) if rng.random() < 0.5 else post_raw(server.url, data, name)
                if answer.status != 200:
                    errors.append(f"{name}: HTTP {answer.status} {answer.body[:200]!r}")
                elif without_latency(answer.json()) != answers[name]:
                    errors.append(f"{name}: wrong answer {answer.json()}")
                else:
                    counts[index] += 1
            except Exception as exc:  # a connection error is a failure too
                errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert counts == [50] * 8


def test_single_interpreter_server_is_also_correct_under_load(serve, reference, photos):
    running = serve(interpreters=1)
    answers = {name: expected(reference, data, name) for name, data in photos}
    results: list[bool] = []

    def client(offset: int) -> None:
        for i in range(20):
            name, data = photos[(offset + i) % len(photos)]
            answer = post_file(running.url, name, data)
            results.append(answer.status == 200 and without_latency(answer.json()) == answers[name])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [True] * 80


# -- live camera ----------------------------------------------------------------------------


def write_video(path: Path, colour: tuple[int, int, int], frames: int = 12, size: tuple[int, int] = (160, 120)) -> Path:
    cv2 = pytest.importorskip("cv2", reason="the live view reads video through OpenCV (pip install .[camera])")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened(), "OpenCV cannot write an MJPG .avi here"
    for i in range(frames):
        image = np.array(draw_photo(colour, size=size, seed=i))
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def video_labels(path: Path, classifier: Classifier) -> set[str]:
    """The label of every frame, read the way the live view reads them."""
    from edge_runner.watcher.camera import open_camera
    from edge_runner.core.image import preprocess_array

    labels = set()
    with open_camera(str(path)) as source:
        while (frame := source.read()) is not None:
            labels.add(classifier.classify(preprocess_array(frame, classifier.spec)).label)
    return labels


def read_mjpeg_parts(response: http.client.HTTPResponse, count: int) -> list[tuple[int, bytes]]:
    """``count`` parts of a multipart/x-mixed-replace stream → [(X-Frame seq, JPEG bytes)]."""
    parts = []
    while len(parts) < count:
        line = response.readline()
        assert line, "the stream ended early"
        if line.strip() != b"--frame":
            continue
        headers = {}
        while (line := response.readline().strip()) != b"":
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        jpeg = response.read(int(headers["content-length"]))
        parts.append((int(headers["x-frame"]), jpeg))
    return parts


def open_stream(running, path: str = "/camera.mjpg") -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=20)
    conn.request("GET", path)
    return conn, conn.getresponse()


def test_live_view_streams_annotated_frames_from_one_loop(serve, tmp_path, reference):
    video = write_video(tmp_path / "red.avi", CLASS_COLOURS["red"])
    loops_before = sum(t.name == "edgekit-live-view" for t in threading.enumerate())
    running = serve(camera=str(video), camera_fps=40.0)
    assert request(running.url + "/api/model").json()["camera"] is True

    conn_a, stream_a = open_stream(running)
    conn_b, stream_b = open_stream(running)
    try:
        assert stream_a.status == 200
        assert stream_a.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
        parts_a = read_mjpeg_parts(stream_a, 20)  # more frames than the video has: it loops
        parts_b = read_mjpeg_parts(stream_b, 5)
        loops = sum(t.name == "edgekit-live-view" for t in threading.enumerate())
        assert loops == loops_before + 1  # one capture loop, whatever the number of viewers
    finally:
        conn_a.close()
        conn_b.close()

    seqs_a = [seq for seq, _ in parts_a]
    assert seqs_a == sorted(seqs_a) and len(set(seqs_a)) == len(seqs_a)
    # Both viewers got frames of the same sequence, byte for byte the same JPEG.
    by_seq = dict(parts_a)
    shared = [(seq, jpeg) for seq, jpeg in parts_b if seq in by_seq]
    assert shared, "the two viewers saw no common frame"
    assert all(by_seq[seq] == jpeg for seq, jpeg in shared)

    frame = Image.open(io.BytesIO(parts_a[-1][1]))
    assert frame.format == "JPEG" and frame.size == (160, 120)
    band = np.asarray(frame.convert("L"))[:16].astype(float)
    # The label band: dark background with white text drawn on it.
    assert band.max() > 200 and np.median(band) < 60

    state = request(running.url + "/api/camera").json()
    assert state["error"] is None and state["running"] is True
    assert state["label"] in video_labels(video, reference)
    assert 0.0 < state["score"] <= 1.0 and state["fps"] > 0
    assert running.service.live.reopen_count >= 1  # the 12-frame video ended and was reopened

    snapshot = request(running.url + "/api/camera/frame.jpg")
    assert snapshot.status == 200 and snapshot.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(snapshot.body)).size == (160, 120)
    health = request(running.url + "/healthz").json()
    assert health["camera"] == {"running": True, "error": None}


def test_live_view_label_matches_the_classifier(serve, tmp_path, reference):
    for name in ("green", "blue"):
        video = write_video(tmp_path / f"{name}.avi", CLASS_COLOURS[name], frames=6)
        running = serve(camera=str(video), camera_fps=40.0)
        assert running.service.live.wait_frame(0, timeout=20) is not None
        state = request(running.url + "/api/camera").json()
        assert state["label"] in video_labels(video, reference)
        assert [item["label"] for item in state["top_k"]][0] == state["label"]
        running.stop()


def test_stop_ends_the_server_when_its_wake_up_pipe_is_already_closed(serve):
    """stop() empties waitress's map itself when the loop's trigger cannot be pulled (EBADF: a pipe closed under it,
    seen once in a browser test's teardown): no error, the loop thread ends, the port stops answering."""
    running = serve()
    assert request(running.url + "/healthz").status == 200
    trigger = running._server.trigger

    def dead_pipe(thunk=None):
        raise OSError(9, "Bad file descriptor")

    trigger.pull_trigger = dead_pipe
    running.stop(timeout=10)
    assert not running._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=2).close()


def test_live_view_reports_a_missing_camera_in_words(serve, tmp_path):
    running = serve(camera=str(tmp_path / "no-such-video.avi"))
    snapshot = request(running.url + "/api/camera/frame.jpg")
    assert snapshot.status == 200
    assert Image.open(io.BytesIO(snapshot.body)).format == "JPEG"  # a card with the message on it
    state = request(running.url + "/api/camera").json()
    assert state["running"] is False
    assert "no-such-video.avi: no such video file or camera" in state["error"]
    assert request(running.url + "/healthz").status == 200


def test_live_viewers_are_capped(serve, tmp_path):
    video = write_video(tmp_path / "red.avi", CLASS_COLOURS["red"], frames=4)
    running = serve(camera=str(video), camera_fps=20.0, max_viewers=1)
    conn, stream = open_stream(running)
    try:
        read_mjpeg_parts(stream, 1)
        refused = request(running.url + "/camera.mjpg")
        assert refused.status == 503
        assert "too many live viewers (at most 1)" in refused.json()["error"]
    finally:
        conn.close()
    # The slot is given back when the viewer leaves.
    for _ in range(50):
        conn, stream = open_stream(running)
        if stream.status == 200:
            conn.close()
            break
        conn.close()
        threading.Event().wait(0.1)
    else:
        pytest.fail("the live-view slot was never released")


# -- command line ------------------------------------------------------------------------------


def test_parser_defaults_are_safe():
    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1"
    assert args.port == 8000
    assert args.camera is None and args.archive is None
    assert args.max_upload_mb == 10.0 and args.top_k == 3
    assert build_parser().parse_args(["--camera"]).camera == "0"  # the default camera, as in the runner and watch
    assert build_parser().parse_args(["--camera", "video.mp4"]).camera == "video.mp4"


def test_parser_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--port", "70000"])
    assert "must be a port number from 0 to 65535, received 70000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-upload-mb", "0"])
    assert "must be a number > 0, received 0.0" in capsys.readouterr().err


def test_without_a_model_serve_says_model_is_required(monkeypatch, tmp_path, capsys):
    from edge_runner.cli import runner as cli
    from edge_runner.core import loading

    monkeypatch.delenv("EDGEKIT_MODEL", raising=False)
    monkeypatch.setattr(loading, "shipped_model_path", lambda: tmp_path / "absent.tflite")
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m edge_runner serve")
    assert err.splitlines()[-1].startswith("edge_runner serve: error: --model is required"), err


def test_main_model_errors_exit_2_and_a_taken_port_exits_1(capsys, tmp_path, model_path, server):
    """The runner's convention: a missing or invalid model is a usage/model error (2); failing to listen is 1."""
    assert main(["--model", str(tmp_path / "missing.tflite"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge_runner serve: error: ") and "missing.tflite: model file not found" in err
    assert err.count("\n") == 1, err
    # The shared server's port is taken.
    assert main(["--model", str(model_path), "--port", str(server.port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edge_runner serve: error: cannot listen on 127.0.0.1:{server.port}"), err


def test_main_usage_errors_are_one_prefixed_line_and_exit_2(capsys, model_path, tmp_path):
    assert main(["--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "edge_runner serve: error: argument --port: must be a port number from 0 to 65535, received 70000"
    blocker = tmp_path.resolve() / "a-file"
    blocker.write_text("not a folder")
    assert main(["--model", str(model_path), "--archive", str(blocker), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"edge_runner serve: error: {blocker}: --archive must be a folder, but a file has that name\n"
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m edge_runner serve")


def test_command_line_serves_until_sigterm(model_path, tmp_path, photos, reference):
    """``python -m edge_runner serve`` end to end: the printed address answers, SIGTERM stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    video = write_video(tmp_path / "red.avi", CLASS_COLOURS["red"], frames=4)
    archive = tmp_path / "archive"
    command = [
        sys.executable, "-m", "edge_runner", "serve", "--model", str(model_path), "--port", "0",
        "--archive", str(archive), "--camera", str(video), "--top-k", "2",
    ]  # fmt: skip
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:
            found = re.search(r"open (http://127\.0\.0\.1:\d+)/ \(only this device", line)
            if found:
                url = found.group(1)
                break
        assert url, process.stderr.read()
        name, data = photos[0]
        answer = post_file(url, name, data)
        assert answer.status == 200
        assert without_latency(answer.json()) == expected(reference, data, name, top_k=2)
        assert (archive / answer.headers["X-Archived-As"]).read_bytes() == data
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/camera.mjpg")
        read_mjpeg_parts(conn.getresponse(), 2)  # a viewer is watching while the server is told to stop
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
        conn.close()
        assert "edgekit: stopped" in process.stdout.read()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "red.avi"]  # nothing written in the working dir
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
