"""The review queue through the commands and the web: ``watch --review-dir`` on a clip, ``serve --camera --review-dir``,
the JSON API behind the token, the export zip round trip, and the ``/review`` page in Chromium (keys label frames)."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from conftest import BLUE, DESKTOP, PHONE, RED, visit_clip, write_clip
from test_review import MANIFEST, add, reviewed_queue

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")

from edge_runner.cli import runner  # noqa: E402
from edge_runner.core.model import Classifier  # noqa: E402
from edge_runner.review.export import export_folder  # noqa: E402
from edge_runner.review.options import ReviewSettings  # noqa: E402
from edge_runner.review.queue import ReviewQueue  # noqa: E402
from edge_runner.watcher.settings import WatchSettings  # noqa: E402
from edge_runner.web.access import Token  # noqa: E402
from edge_runner.web.server import start_server  # noqa: E402
from edge_runner.web.service import ServerOptions, build_service  # noqa: E402
from test_server_access import TOKEN, call  # noqa: E402

AUTH = {"Authorization": f"Bearer {TOKEN}"}


# -- the watcher fills the queue ---------------------------------------------------------------


def test_watch_with_review_dir_fills_the_queue(watch_model, tmp_path, capsys):
    clip = visit_clip(tmp_path / "visit.avi")  # 2 s background, 3 s cat, 2 s background
    code = runner.main(["watch", "--camera", str(clip), "--model", str(watch_model), "--hold", "1",
                        "--snapshots", str(tmp_path / "snaps"), "--review-dir", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert code == 0, err
    records = ReviewQueue(tmp_path / "q").records()
    kinds = sorted(r["kind"] for r in records)
    assert kinds == ["quiet", "strip", "visit"], kinds  # 7 s of video: one quiet frame (4 an hour), the visit, its strip
    visit = next(r for r in records if r["kind"] == "visit")
    strip = next(r for r in records if r["kind"] == "strip")
    assert visit["group"] == strip["group"] and visit["group"].startswith("visit-") and visit["group"].endswith("-1")
    assert visit["model_label"] == "cat" and visit["model_score"] > 0.9
    assert visit["model_sha256"] == Classifier(watch_model).sha256 and visit["labels"] == ["cat", "dog", "other"]
    quiet = next(r for r in records if r["kind"] == "quiet")
    assert quiet["model_label"] == "other" and quiet["group"].startswith("t-")


def test_watch_review_options_are_checked(watch_model, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    clip = write_clip(tmp_path / "c.avi", [BLUE] * 3)
    code = runner.main(["watch", "--camera", str(clip), "--model", str(watch_model), "--review-dir", str(tmp_path / "file")])
    err = capsys.readouterr().err
    assert code == 2 and f"edge_runner watch: error: --review-dir {tmp_path / 'file'}: is a file, not a folder" in err
    code = runner.main(["watch", "--camera", str(clip), "--model", str(watch_model), "--review-dir", str(tmp_path / "q"),
                        "--review-close-margin", "2"])
    assert code == 2 and "--review-close-margin" in capsys.readouterr().err


def test_serve_camera_with_review_dir_fills_the_queue(watch_model, tmp_path, browser):
    clip = write_clip(tmp_path / "v.avi", [BLUE] * 10 + [RED] * 30 + [BLUE] * 20)
    options = ServerOptions(model=watch_model, port=0, camera=str(clip), camera_fps=60,
                            watch=WatchSettings(hold_s=0.5, review=ReviewSettings(tmp_path / "q")))
    server = start_server(build_service(options))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kinds = {r["kind"] for r in ReviewQueue(tmp_path / "q").records()}
            if "visit" in kinds:
                break
            time.sleep(0.2)
        listing = call(server.url, "GET", "/api/review?status=all").json()
        context = browser.new_context(**DESKTOP)
        try:  # the page shows this server's watcher events beside the queue
            page = context.new_page()
            page.goto(f"{server.url}/review")
            page.wait_for_selector("#events li:has-text('cat arrived')", timeout=15000)
            page.wait_for_selector("#visits li:has-text('model cat')", timeout=15000)
        finally:
            context.close()
    finally:
        server.stop()
    assert "visit" in kinds and "quiet" in kinds
    visit = next(r for r in listing["records"] if r["kind"] == "visit")
    assert visit["model_label"] == "cat" and visit["model_sha256"] == Classifier(watch_model).sha256


# -- the API -------------------------------------------------------------------------------


@pytest.fixture
def review_server(watch_model, tmp_path):
    """``serve --review-dir Q`` (no camera: a separate watcher fills Q) with a token, and its reviewed queue."""
    queue, records = reviewed_queue(tmp_path / "q")
    options = ServerOptions(model=watch_model, port=0, token=Token(TOKEN, "test"),
                            watch=WatchSettings(review=ReviewSettings(tmp_path / "q")))
    server = start_server(build_service(options))
    yield server, queue, records
    server.stop()


def test_review_routes_need_the_token(review_server):
    server, _, records = review_server
    record_id = records["todo"]["id"]
    for method, path in (("GET", "/api/review"), ("GET", f"/api/review/{record_id}.jpg"), ("POST", f"/api/review/{record_id}"),
                         ("GET", "/api/review/export.zip"), ("GET", "/review")):
        answer = call(server.url, method, path, {"Content-Type": "application/json"}, b'{"label": "cat"}' if method == "POST" else None)
        assert answer.status == 401, (method, path)
    page = call(server.url, "GET", "/review", {"Accept": "text/html"})
    assert page.status == 401 and b'type="password"' in page.body  # a browser is asked for the token
    redirect = call(server.url, "GET", f"/review?token={TOKEN}", {"Accept": "text/html"})
    assert redirect.status == 303 and redirect.headers["Location"] == "/review"
    assert ReviewQueue(server.service.options.watch.review.directory).get(record_id)["review"] is None  # nothing changed


def test_review_api_lists_serves_labels_and_pages(review_server):
    server, queue, records = review_server
    pending = call(server.url, "GET", "/api/review", AUTH).json()
    assert [r["id"] for r in pending["records"]] == [records["todo"]["id"]] and pending["total"] == 1
    assert pending["summary"]["pending"] == 1 and pending["summary"]["reviewed"] == 6
    everything = call(server.url, "GET", "/api/review?status=all", AUTH).json()
    assert everything["total"] == 7 and all(r["kind"] != "strip" for r in everything["records"])  # a strip rides on its visit
    cat1 = next(r for r in everything["records"] if r["id"] == records["cat1"]["id"])
    assert cat1["strip"] == f"/api/review/{records['strip1']['id']}.jpg" and cat1["image"] == f"/api/review/{cat1['id']}.jpg"
    page = call(server.url, "GET", "/api/review?status=all&limit=2&offset=2", AUTH).json()
    assert [r["id"] for r in page["records"]] == [r["id"] for r in everything["records"][2:4]]
    assert call(server.url, "GET", "/api/review?limit=0", AUTH).status == 400
    assert call(server.url, "GET", "/api/review?status=new", AUTH).json()["error"].startswith("status must be one of")
    image = call(server.url, "GET", cat1["image"], AUTH)
    assert image.status == 200 and image.body == (queue.directory / f"{cat1['id']}.jpg").read_bytes()
    assert call(server.url, "GET", "/api/review/..%2Fsecret.jpg", AUTH).status == 404

    def post(record_id, body):
        return call(server.url, "POST", f"/api/review/{record_id}", {**AUTH, "Content-Type": "application/json"}, body)

    todo = records["todo"]["id"]
    wrong = post(todo, b'{"label": "horse"}')
    assert wrong.status == 400 and "['cat', 'dog', 'other', 'nothing', 'skip']" in wrong.json()["error"] and "horse" in wrong.json()["error"]
    assert post(todo, b'"cat"').status == 400 and post(todo, b'{"label": 3}').status == 400
    assert post("20270115-080000-close-0999", b'{"label": "cat"}').status == 404
    done = post(todo, b'{"label": "nothing"}')
    assert done.status == 200 and done.json()["review"]["label"] == "nothing"
    assert queue.get(todo)["review"]["label"] == "nothing"
    recent = call(server.url, "GET", "/api/review?status=reviewed&limit=1", AUTH).json()
    assert recent["records"][0]["id"] == todo  # the most recently reviewed first
    assert post(todo, b'{"label": null}').json()["review"] is None  # undo


def test_export_zip_round_trip_matches_the_export_folder(review_server, tmp_path):
    server, queue, _ = review_server
    answer = call(server.url, "GET", "/api/review/export.zip", AUTH)
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/zip"
    assert "attachment" in answer.headers["Content-Disposition"] and answer.headers["X-Exported-Frames"] == "5"
    export_folder(queue, tmp_path / "folder")
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = sorted(str(p.relative_to(tmp_path / "folder")) for p in (tmp_path / "folder").rglob("*") if p.is_file())
    unzipped = sorted(str(p.relative_to(tmp_path / "unzipped")) for p in (tmp_path / "unzipped").rglob("*") if p.is_file())
    assert unzipped == folder and MANIFEST in unzipped
    assert all((tmp_path / "unzipped" / n).read_bytes() == (tmp_path / "folder" / n).read_bytes() for n in folder)
    assert json.loads((tmp_path / "unzipped" / MANIFEST).read_text())["background_label"] == "other"


def test_without_review_dir_the_api_says_how_to_get_one(watch_model):
    server = start_server(build_service(ServerOptions(model=watch_model, port=0)))
    try:
        answer = call(server.url, "GET", "/api/review")
    finally:
        server.stop()
    assert answer.status == 404 and "--review-dir" in answer.json()["error"]


# -- the page in Chromium -----------------------------------------------------------------------


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_review_page_labels_frames_with_one_key_each(browser, watch_model, tmp_path, keep_screenshot, device):
    queue = ReviewQueue(tmp_path / "q")
    t0 = time.time() - 600
    ids = [add(queue, "visit", t0 + i, f"visit-{int(t0)}-{i}", "cat", 0.9, seed=i)["id"] for i in range(4)]
    ids.reverse()  # the page shows the newest first
    options = ServerOptions(model=watch_model, port=0, token=Token(TOKEN, "test"),
                            watch=WatchSettings(review=ReviewSettings(tmp_path / "q")))
    server = start_server(build_service(options))
    context = browser.new_context(**(PHONE if device == "phone" else DESKTOP))
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{server.url}/review?token={TOKEN}")

        def showing(record_id):
            page.wait_for_selector(f'#current[data-id="{record_id}"] img.frame', timeout=15000)

        def label_of(record_id):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                review = queue.get(record_id)["review"]
                if review is not None:
                    return review["label"]
                time.sleep(0.1)
            return None

        showing(ids[0])
        assert "cat 90%" in page.inner_text("#answer")
        buttons = page.locator("#current .choices button")
        assert [b.get_attribute("data-label") for b in buttons.all()] == ["cat", "dog", "nothing", "skip"]
        if device == "phone":  # one column, nothing wider than the phone
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            keep_screenshot(page, "review-phone.png")
        page.keyboard.press("1")
        assert label_of(ids[0]) == "cat"
        showing(ids[1])
        page.keyboard.press("0")
        assert label_of(ids[1]) == "nothing"
        showing(ids[2])
        page.keyboard.press("s")
        assert label_of(ids[2]) == "skip"
        showing(ids[3])
        page.keyboard.press("u")  # undo the skip: that frame comes back
        showing(ids[2])
        deadline = time.monotonic() + 10
        while queue.get(ids[2])["review"] is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.get(ids[2])["review"] is None
        page.locator('#current button[data-label="dog"]').click()  # one tap
        assert label_of(ids[2]) == "dog"
        page.wait_for_selector("#reviewed li:has-text('→ dog')")
        assert "1 to review, 3 reviewed" in page.inner_text("#summary")
        if device == "desktop":
            keep_screenshot(page, "review-desktop.png")
        assert not problems, problems
    finally:
        context.close()
        server.stop()
