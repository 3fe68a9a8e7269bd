"""The watcher: smoothing on constructed sequences, snapshots, actions and the whole `watch` command on clips."""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import BLUE, GREEN, RED, visit_clip, write_clip

from edge_runner.cli import runner as cli
from edge_runner.watcher.notify import ActionWorker, CommandAction, WebhookAction
from edge_runner.watcher.snapshots import SnapshotStore
from edge_runner.watcher.strip import ThumbnailStrip
from edge_runner.watcher.visits import VisitTracker

INTEREST = {"cat", "dog"}.__contains__


def feed(tracker, labels, fps=10.0, score=0.9):
    """Feed one label per frame at ``fps``; returns every event, plus those of ``finish()``."""
    events = []
    for i, label in enumerate(labels):
        events += tracker.update(i / fps, label, score)
    return events, tracker.finish()


# -- the tracker ---------------------------------------------------------------------


def test_single_misclassified_frames_never_make_an_event():
    tracker = VisitTracker(INTEREST, k=3, n=5, hold_s=1.0)
    labels = ["other"] * 10 + ["cat"] + ["other"] * 10 + ["dog"] + ["other"] * 3 + ["cat", "other", "other", "dog"] + ["other"] * 20
    events, closing = feed(tracker, labels)
    assert events == [] and closing == []


def test_frames_below_the_visit_threshold_count_as_nothing():
    """A misread background scores low frame after frame: smoothing keeps it, the score threshold removes it."""
    events = []
    tracker = VisitTracker(INTEREST, k=5, n=8, hold_s=1.0, min_score=0.8)
    for i in range(40):  # a scene the model calls "cat" at 0.6-0.79 for 4 s, then a real cat at 0.95 for 2 s
        events += tracker.update(i / 10, "cat", 0.6 + 0.19 * (i % 2))
    assert events == []
    for i in range(40, 60):
        events += tracker.update(i / 10, "cat", 0.95)
    assert [(e.event, e.start) for e in events] == [("arrived", 4.0)]  # 5th confident frame, started at the 1st
    with pytest.raises(ValueError, match="min_score"):
        VisitTracker(INTEREST, min_score=1.5)


def test_watch_threshold_is_the_stricter_of_the_contract_and_the_default_unless_given():
    from types import SimpleNamespace

    from edge_runner.watcher.settings import WatchSettings, visit_threshold
    from edge_runner.watcher.visits import DEFAULT_MIN_SCORE

    assert visit_threshold(WatchSettings(), SimpleNamespace(threshold=0.5)) == DEFAULT_MIN_SCORE == 0.8
    assert visit_threshold(WatchSettings(), SimpleNamespace(threshold=0.95)) == 0.95
    assert visit_threshold(WatchSettings(), SimpleNamespace(threshold=None)) == 0.8
    assert visit_threshold(WatchSettings(threshold=0.3), SimpleNamespace(threshold=0.5)) == 0.3


def test_k_of_n_needs_two_wins_at_least():
    with pytest.raises(ValueError, match="2 <= k <= n"):
        VisitTracker(INTEREST, k=1, n=5)
    with pytest.raises(ValueError, match="hold_s"):
        VisitTracker(INTEREST, k=2, n=3, hold_s=0)


def test_a_visit_gives_exactly_one_arrived_and_one_left():
    tracker = VisitTracker(INTEREST, k=3, n=5, hold_s=1.0)
    visit = ["cat"] * 30
    visit[10] = "other"  # a glitch inside the visit
    visit[20] = "dog"  # and a wrong label
    events, closing = feed(tracker, ["other"] * 20 + visit + ["other"] * 30)
    assert closing == []
    assert [(e.event, e.label) for e in events] == [("arrived", "cat"), ("left", "cat")]
    arrived, left = events
    assert arrived.start == pytest.approx(2.0) and arrived.end is None
    assert arrived.visit == left.visit == 1
    # Arrived on the third cat frame (K=3): frames 20, 21, 22.
    assert arrived.frames == 3
    assert left.start == pytest.approx(2.0) and left.end == pytest.approx(4.9)
    assert left.duration_s == pytest.approx(2.9) and left.frames == 28
    assert left.to_dict()["event"] == "left" and "frame" not in left.to_dict()


def test_open_visit_is_closed_at_the_end_of_the_source():
    tracker = VisitTracker(INTEREST, k=2, n=3, hold_s=5.0)
    events, closing = feed(tracker, ["other"] * 3 + ["dog"] * 10)
    assert [(e.event, e.label) for e in events] == [("arrived", "dog")]
    assert [(e.event, e.label, e.frames) for e in closing] == [("left", "dog", 10)]


def test_a_visit_confirm_refuses_is_followed_silently_and_asked_about_once():
    asked = []

    def confirm(label, frame):
        asked.append(label)
        return label == "cat"

    tracker = VisitTracker(INTEREST, k=2, n=3, hold_s=0.5, confirm=confirm)
    events, final = feed(tracker, ["other"] * 3 + ["dog"] * 20 + ["other"] * 10 + ["cat"] * 5)
    assert [(e.event, e.label, e.visit) for e in events + final] == [("arrived", "cat", 1), ("left", "cat", 1)]
    assert asked == ["dog", "cat"] and tracker.silenced == 1  # the dog's 20 frames: asked once
    assert tracker.current is None


def test_another_label_never_splits_a_visit_and_starts_once_it_is_gone():
    tracker = VisitTracker(INTEREST, k=3, n=5, hold_s=2.0)
    visit = ["cat"] * 30
    visit[10:13] = ["dog"] * 3  # the model calls the cat "dog" for three frames in a row
    events = []
    for i, label in enumerate(visit + ["dog"] * 40):  # then a dog stays
        events += tracker.update(i / 10, label, 0.9)
    assert [(e.event, e.label) for e in events] == [("arrived", "cat"), ("left", "cat"), ("arrived", "dog")]
    assert events[1].end == pytest.approx(2.9) and events[2].start == pytest.approx(4.5)  # dog: its wins in the window
    assert tracker.current == "dog" and tracker.tick(7.0) == []
    assert [(e.event, e.label) for e in tracker.tick(100.0)] == [("left", "dog")] and tracker.current is None


def test_best_frame_and_scores_follow_the_visit():
    tracker = VisitTracker(INTEREST, k=2, n=3, hold_s=1.0)
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
    scores = [0.6, 0.7, 0.95, 0.8, 0.5]
    events = []
    for i, (frame, score) in enumerate(zip(frames, scores)):
        events += tracker.update(i * 0.1, "cat", score, frame)
    left = tracker.finish()[0]
    assert events[0].peak_score == pytest.approx(0.7) and events[0].frame is frames[1]
    assert left.peak_score == pytest.approx(0.95) and left.frame is frames[2]
    assert left.mean_score == pytest.approx(np.mean(scores))


# -- snapshots -----------------------------------------------------------------------


def frame(value=128, size=(48, 64)):
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)  # noise: JPEGs of a known, non-trivial size


def test_snapshot_retention_keeps_the_newest_within_count_and_size(tmp_path):
    store = SnapshotStore(tmp_path / "snaps", max_files=3, max_bytes=10**9)
    names = []
    for i in range(6):
        name = store.make_name("cat", i + 1, when=1_700_000_000 + i)
        assert store.save(name, frame(i)) == name
        names.append(name)
        time.sleep(0.01)  # distinct modification times
    assert store.names() == names[-3:]
    one = (tmp_path / "snaps" / names[-1]).stat().st_size
    small = SnapshotStore(tmp_path / "snaps", max_files=100, max_bytes=int(one * 1.5))
    small.prune()
    assert small.names() == names[-1:]
    (tmp_path / "snaps" / "notes.txt").write_text("not ours")
    small.prune()
    assert (tmp_path / "snaps" / "notes.txt").exists()  # only generated names are ever removed


def test_snapshot_names_are_generated_and_checked(tmp_path):
    store = SnapshotStore(tmp_path)
    name = store.make_name("../../etc/passwd", 7)
    assert "/" not in name and name.endswith("-0007.jpg")
    assert store.path_for("../x.jpg") is None and store.path_for(name) is None
    with pytest.raises(ValueError):
        store.save("../evil.jpg", frame())


def test_full_disk_is_reported_and_the_watcher_goes_on(watch_model, tmp_path, monkeypatch, capsys):
    model = watch_model
    clip = write_clip(tmp_path / "two.avi", [BLUE] * 5 + [RED] * 10 + [BLUE] * 25 + [GREEN] * 10 + [BLUE] * 5)

    def full(self, path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(SnapshotStore, "_write", full)
    # /dev/full answers every write with ENOSPC: a real full disk for the events file.
    events_file = "/dev/full" if os.path.exists("/dev/full") else str(tmp_path / "events.jsonl")
    code = cli.main(["watch", "--camera", str(clip), "--model", str(model), "--json", "--hold", "1",
                     "--snapshots", str(tmp_path / "snaps"), "--events", events_file])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["event"], e["label"]) for e in events] == [("arrived", "cat"), ("left", "cat"), ("arrived", "dog"), ("left", "dog")]
    assert all(e["snapshot"] is None for e in events)
    assert "No space left on device" in captured.err and "goes on" in captured.err
    if events_file == "/dev/full":
        assert captured.err.count("event not written") == 4


# -- actions ---------------------------------------------------------------------------


EVENT = {"event": "arrived", "label": "cat", "visit": 1, "start": 1.5, "end": None, "peak_score": 0.97}


def test_command_hook_gets_the_event_on_stdin_and_in_the_environment(tmp_path):
    out = tmp_path / "hook.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "event = json.load(sys.stdin)\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('EDGEKIT_EVENT_')}\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'stdin': event, 'env': env}}))\n"
    )
    worker = ActionWorker("hook", CommandAction(f"{sys.executable} {script}", timeout=20))
    started = time.perf_counter()
    worker.submit(EVENT)
    assert time.perf_counter() - started < 0.05  # submitting never waits for the command
    worker.close(timeout=20)
    result = json.loads(out.read_text())
    assert result["stdin"] == EVENT
    assert result["env"]["EDGEKIT_EVENT_EVENT"] == "arrived" and result["env"]["EDGEKIT_EVENT_LABEL"] == "cat"
    assert result["env"]["EDGEKIT_EVENT_END"] == "" and json.loads(result["env"]["EDGEKIT_EVENT_JSON"]) == EVENT
    assert worker.done == 1 and worker.failed == 0


def test_command_hook_timeout_and_failure_are_counted_not_fatal(tmp_path):
    slow = ActionWorker("slow", CommandAction(f"{sys.executable} -c 'import time; time.sleep(30)'", timeout=0.5))
    slow.submit(EVENT)
    slow.close(timeout=10)
    assert slow.failed == 1
    with pytest.raises(RuntimeError, match="status 3"):
        CommandAction(f"{sys.executable} -c 'import sys; sys.exit(3)'")(EVENT)
    with pytest.raises(RuntimeError, match="cannot run"):
        CommandAction(str(tmp_path / "missing-program"))(EVENT)


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.bodies.append(body)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.answers, _Receiver.bodies = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_posts_json_and_retries_with_backoff(receiver):
    server, url = receiver
    _Receiver.answers = [500, 503]
    waits = []
    WebhookAction(url, timeout=5, retries=3, backoff=0.5, sleep=waits.append)(EVENT)
    assert _Receiver.bodies == [EVENT] and waits == [0.5, 1.0]
    _Receiver.answers = [400]
    with pytest.raises(RuntimeError, match="HTTP 400"):  # the receiver refused it: not retried
        WebhookAction(url, retries=3, sleep=waits.append)(EVENT)
    assert waits == [0.5, 1.0]


def test_webhook_to_a_dead_address_fails_after_its_retries(receiver):
    server, url = receiver
    server.shutdown()
    server.server_close()
    waits = []
    with pytest.raises(RuntimeError, match="failed"):
        WebhookAction(url, timeout=1, retries=2, backoff=0.01, sleep=waits.append)(EVENT)
    assert waits == [0.01, 0.02]


def test_strip_spreads_its_thumbnails_over_a_visit_of_any_length():
    """A 3-hour visit keeps as few thumbnails as a 3-second one, spread from its start to its end."""
    for seconds in (3.0, 3 * 3600.0):
        strip = ThumbnailStrip(4, width=16)
        kept = []
        for t in np.arange(0.0, seconds, 0.1):
            # The frame's value records its time, so the strip's columns can be read back.
            if strip.offer(float(t), np.full((24, 32, 3), min(255, int(255 * t / seconds)), np.uint8)):
                kept.append(t)
            assert len(strip) <= 8  # 2 * frames at most, however long the visit
        image = strip.image()
        assert image.shape == (12, 4 * 16 + 3 * 2, 3)  # scaled to 16 wide (aspect kept), 2 px gaps
        firsts = [int(image[0, x, 0]) for x in range(0, image.shape[1], 18)]
        assert firsts == sorted(firsts) and firsts[0] == 0 and firsts[-1] >= 150  # from the start to near the end
    one = ThumbnailStrip(4)
    one.offer(0.0, frame())
    assert one.image() is None  # a single thumbnail makes no strip
    with pytest.raises(ValueError, match="at least 2 frames"):
        ThumbnailStrip(1)


# -- the whole command on clips ------------------------------------------------------------


def run_watch(argv, capsys):
    code = cli.main(["watch", *map(str, argv)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_watch_a_clip_gives_one_visit_with_snapshot_file_and_hooks(watch_model, tmp_path, capsys, receiver):
    clip = visit_clip(tmp_path / "visit.avi")  # 2 s background, 3 s cat (one glitch frame), 2 s background
    events_file = tmp_path / "events.jsonl"
    hook_out = tmp_path / "hook.txt"
    hook = f"{sys.executable} -c \"import os,sys; open({str(hook_out)!r},'a').write(os.environ['EDGEKIT_EVENT_EVENT']+'\\n')\""
    code, out, err = run_watch(
        ["--camera", clip, "--model", watch_model, "--json", "--events", events_file, "--snapshots", tmp_path / "snaps",
         "--hold", "1", "--on-event", hook, "--webhook", receiver[1]],
        capsys,
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["event"], e["label"]) for e in events] == [("arrived", "cat"), ("left", "cat")]
    arrived, left = events
    assert arrived["start"] == pytest.approx(2.0, abs=0.01) and arrived["clock"] == "video"
    assert left["end"] == pytest.approx(4.9, abs=0.01) and left["frames"] == 29
    assert arrived["snapshot"] == left["snapshot"] and (tmp_path / "snaps" / left["snapshot"]).stat().st_size > 0
    # The visit's strip (default 6 thumbnails; 64x48 frames are never scaled up) is named in the `left` event.
    assert arrived["strip"] is None and left["strip"] == left["snapshot"].replace(".jpg", "-strip.jpg")
    from PIL import Image

    with Image.open(tmp_path / "snaps" / left["strip"]) as strip:
        assert strip.size == (6 * 64 + 5 * 2, 48)
        pixels = np.asarray(strip, np.float32)
        assert pixels[..., 0].mean() > pixels[..., 2].mean() + 80  # the red visitor, not the blue background
    assert [json.loads(line) for line in events_file.read_text().splitlines()] == events
    assert hook_out.read_text().split() == ["arrived", "left"]  # the watcher waits for its actions at exit
    assert [body["event"] for body in _Receiver.bodies] == ["arrived", "left"]
    assert "70 frames classified" in err and "2 events" in err


def test_watch_background_only_clip_gives_no_event(watch_model, tmp_path, capsys):
    clip = write_clip(tmp_path / "empty.avi", [BLUE] * 40)
    code, out, err = run_watch(["--camera", clip, "--model", watch_model], capsys)
    assert code == 0 and out == "" and "0 events" in err


def test_watch_closes_a_visit_open_at_the_end_in_text_mode(watch_model, tmp_path, capsys):
    clip = write_clip(tmp_path / "open.avi", [BLUE] * 10 + [GREEN] * 20)
    code, out, err = run_watch(["--camera", clip, "--model", watch_model], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("0:01.0  dog arrived") and "dog left after 1.9 s (20 frames" in lines[1]


def test_watch_realtime_reads_the_newest_frame(watch_model, tmp_path, capsys):
    clip = visit_clip(tmp_path / "rt.avi", before=10, visit=15, after=5, fps=20.0)
    code, out, err = run_watch(["--camera", clip, "--model", watch_model, "--realtime", "--json", "--hold", "0.3"], capsys)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["arrived", "left"] and events[0]["clock"] == "unix"
    assert abs(events[0]["start"] - time.time()) < 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--min-wins", "1"], "--min-wins must be from 2 to --window (8)"),
        (["--min-wins", "9"], "--min-wins must be from 2"),
        (["--strip-frames", "1"], "--strip-frames must be 0 (no strip) or at least 2"),
        (["--threshold", "1.5"], "--threshold"),
        (["--webhook", "ftp://x"], "--webhook must be an http:// or https:// URL"),
        (["--mqtt", "host:99999"], "--mqtt: the port must be a number"),
        (["--hold", "0"], "--hold: must be a number > 0"),
    ],
)
def test_bad_options_are_one_line_usage_errors(watch_model, tmp_path, capsys, argv, message):
    clip = write_clip(tmp_path / "c.avi", [BLUE] * 3)
    code, out, err = run_watch(["--camera", clip, "--model", watch_model, *argv], capsys)
    assert code == 2 and message in err
    assert err.startswith("usage: python -m edge_runner watch") and err.count("error:") == 1, err
    assert err.splitlines()[-1].startswith("edge_runner watch: error: "), err


def test_model_without_background_class_is_refused(tmp_models_no_background, tmp_path, capsys):
    clip = write_clip(tmp_path / "c.avi", [BLUE] * 3)
    code, out, err = run_watch(["--camera", clip, "--model", tmp_models_no_background], capsys)
    assert code == 2 and "names no background label" in err
    assert err.splitlines()[-1].startswith("edge_runner watch: error: "), err


@pytest.fixture
def tmp_models_no_background(tiny_models):
    return tiny_models["int8"]


def test_missing_video_is_a_camera_error(watch_model, tmp_path, capsys):
    code, out, err = run_watch(["--camera", tmp_path / "nope.avi", "--model", watch_model], capsys)
    assert code == 1 and "no such video file" in err
    assert err == f"edge_runner watch: error: {tmp_path / 'nope.avi'}: no such video file or camera\n"


def test_missing_model_is_a_model_error_as_in_the_runner_and_serve(tmp_path, capsys):
    code, out, err = run_watch(["--camera", tmp_path / "nope.avi", "--model", tmp_path / "missing.tflite"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("edge_runner watch: error: ") and "missing.tflite: model file not found" in err, err
    assert err.count("\n") == 1, err


def test_bare_camera_means_the_default_camera_in_every_command():
    """``--camera`` with no value is camera 0 in the runner, ``serve`` and ``watch`` (and ``watch`` defaults to it)."""
    from edge_runner.cli import runner as cli
    from edge_runner.watcher import watch
    from edge_runner.web import server
    from edge_runner.common.console import DEFAULT_CAMERA

    assert DEFAULT_CAMERA == "0"
    assert cli.build_parser().parse_args(["--camera"]).camera == DEFAULT_CAMERA
    assert cli.build_parser().parse_args(["x.jpg"]).camera is None  # files, not the camera
    assert server.build_parser().parse_args(["--camera"]).camera == DEFAULT_CAMERA
    assert server.build_parser().parse_args([]).camera is None  # no live view
    assert watch.build_parser().parse_args(["--camera"]).camera == DEFAULT_CAMERA
    assert watch.build_parser().parse_args([]).camera == DEFAULT_CAMERA
    assert cli.build_parser().parse_args(["--camera", "clip.mp4"]).camera == "clip.mp4"
    assert server.build_parser().parse_args(["--camera", "1"]).camera == "1"


def test_systemd_unit_runs_the_watcher_with_settings_from_etc_default():
    import shlex

    from conftest import REPO

    unit = (REPO / "edge_runner" / "deploy" / "edgekit-watch.service").read_text()
    lines = [line for line in unit.splitlines() if line and not line.startswith("#")]
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start == "ExecStart=@VENV@/bin/edge-runner watch $EDGEKIT_WATCH_ARGS"
    assert "EnvironmentFile=-/etc/default/edgekit" in lines and "Environment=EDGEKIT_WATCH_ARGS=--camera" in lines
    assert "Restart=on-failure" in lines and "StateDirectory=edgekit" in lines
    # The documented example settings are a valid command line.
    from edge_runner.watcher.settings import settings_from_args
    from edge_runner.watcher.watch import build_parser

    example = unit.split('EDGEKIT_WATCH_ARGS="', 1)[1].split('"', 1)[0].replace("\\\n#", " ")
    args = build_parser().parse_args(shlex.split(example))
    settings = settings_from_args(args)
    assert args.camera == "0" and settings.mqtt == "192.168.1.10" and settings.snapshot_max_mb == 200


def test_live_reader_hands_out_only_the_newest_frame():
    from edge_runner.watcher.frames import LatestFrame

    class Counting:
        name = "fake camera"

        def __init__(self):
            self.n = 0

        def read(self):
            if self.n >= 200:
                return None
            self.n += 1
            time.sleep(0.002)  # a 500 fps camera
            return np.full((2, 2, 3), self.n % 256, np.uint8)

    source = Counting()
    reader = LatestFrame(source)
    seen = []
    while True:
        item = reader.get(timeout=2.0)
        if item is None and reader.ended:
            break
        if item is not None:
            seen.append(int(item.frame[0, 0, 0]))
            time.sleep(0.02)  # a slow classifier: ten camera frames per classified one
    reader.stop()
    assert seen == sorted(seen) and len(seen) < 100  # in order, most frames skipped
    assert reader.read_count == 200 and reader.dropped == 200 - len(seen)


def _serve_service(argv):
    from edge_runner.web import server
    from edge_runner.web.service import build_service

    return build_service(server.options_from_args(server.build_parser().parse_args([*map(str, argv), "--port", "0"])))


def test_serve_camera_records_visits_whenever_watch_does(tmp_models_no_background, tmp_path, capsys):
    """One rule for "can this model produce events?": a two-class model given --visit-threshold makes visits
    in ``watch`` and in ``serve --camera`` alike (serve once ignored the flag and recorded nothing)."""
    clip = write_clip(tmp_path / "c.avi", [BLUE] * 3)
    code, _, err = run_watch(["--camera", clip, "--model", tmp_models_no_background, "--visit-threshold", "0.9"], capsys)
    assert code == 0, err
    service = _serve_service(["--camera", clip, "--model", tmp_models_no_background, "--visit-threshold", "0.9"])
    try:
        assert service.recorder is not None and service.live.on_frame is not None
        assert service.recorder.tracker.min_score == 0.9
    finally:
        service.close()
    service = _serve_service(["--camera", clip, "--model", tmp_models_no_background])  # watch refuses this one
    try:
        assert service.recorder is None
    finally:
        service.close()


@pytest.mark.parametrize("command", ["watch", "serve"])
def test_old_threshold_spelling_still_works_with_a_warning(command, capsys):
    from edge_runner.watcher import watch
    from edge_runner.web import server

    parser = (watch if command == "watch" else server).build_parser()
    assert parser.parse_args(["--visit-threshold", "0.7"]).visit_threshold == 0.7
    assert "deprecated" not in capsys.readouterr().err
    assert parser.parse_args(["--threshold", "0.7"]).visit_threshold == 0.7
    assert f"edge_runner {command}: warning: --threshold is deprecated here: use --visit-threshold" in capsys.readouterr().err
