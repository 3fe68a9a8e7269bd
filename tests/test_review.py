"""The review queue on the device: records, disk cap, torn records, the collector policy, labelling, the export,
the ``review`` command, and a kill at each step of every multi-file write (issue 23)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from edge_runner.core.spec import InputSpec
from edge_runner.review.collector import ReviewCollector
from edge_runner.review.export import FORMAT, MANIFEST, ExportError, export_folder, export_zip
from edge_runner.review.queue import TORN_GRACE_S, ReviewQueue
from edge_runner.review.record import ID_PATTERN, ReviewError, encode_jpeg

SPEC = InputSpec(labels=("cat", "dog", "other"), height=32, width=32, name="door", background_label="other")
SHA = "ab" * 32


def frame(value: int = 128, size=(48, 64), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(value + rng.integers(0, 60, (*size, 3)), 0, 255).astype(np.uint8)


def add(queue: ReviewQueue, kind="close", t=1_800_000_000.0, group="t-20270115-0800", label="cat", score=0.7, seed=0):
    return queue.add(kind, encode_jpeg(frame(seed=seed)), t, group=group, model_label=label, model_score=score,
                     model_sha256=SHA, labels=SPEC.labels, background_label=SPEC.background_label)


def age(path: Path, seconds: float = TORN_GRACE_S + 5) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


# -- the queue ------------------------------------------------------------------------


def test_add_list_and_label_a_record(tmp_path):
    queue = ReviewQueue(tmp_path / "q")
    first = add(queue, t=1_800_000_000.0)
    second = add(queue, kind="quiet", t=1_800_000_060.0, label="other", score=0.97, seed=1)
    assert ID_PATTERN.match(first["id"]) and "-close-" in first["id"] and "-quiet-" in second["id"]
    assert (tmp_path / "q" / f"{first['id']}.jpg").stat().st_size > 0
    on_disk = json.loads((tmp_path / "q" / f"{first['id']}.json").read_text())
    assert on_disk == first and on_disk["version"] == 1 and on_disk["review"] is None
    assert on_disk["model_sha256"] == SHA and on_disk["labels"] == ["cat", "dog", "other"] and on_disk["background_label"] == "other"
    assert on_disk["time"][10] == "T" and on_disk["time"][-6] in "+-"  # ISO 8601 with the UTC offset
    assert [r["id"] for r in queue.records()] == [second["id"], first["id"]]  # newest first
    labelled = queue.set_review(first["id"], "nothing")
    assert labelled["review"]["label"] == "nothing" and queue.get(first["id"])["review"]["label"] == "nothing"
    assert ReviewQueue(tmp_path / "q").get(first["id"])["review"]["label"] == "nothing"  # survives a restart
    assert queue.set_review(first["id"], None)["review"] is None  # undo
    for label in ("cat", "other", "skip"):
        assert queue.set_review(second["id"], label)["review"]["label"] == label
    assert queue.summary() == {"total": 2, "pending": 1, "reviewed": 1, "by_label": {"skip": 1}, "nothing_label": "nothing"}


def test_a_wrong_label_or_id_is_refused_naming_the_allowed_values(tmp_path):
    queue = ReviewQueue(tmp_path)
    record = add(queue)
    with pytest.raises(ReviewError, match=r"label must be one of \['cat', 'dog', 'other', 'nothing', 'skip'\].*'horse'") as err:
        queue.set_review(record["id"], "horse")
    assert err.value.status == 400
    for bad in ("../etc/passwd", "20270115-080000-close-0999", record["id"] + "x"):
        with pytest.raises(ReviewError) as missing:
            queue.set_review(bad, "cat")
        assert missing.value.status == 404
        assert queue.image_path(bad) is None


def test_ids_are_unique_after_a_restart(tmp_path):
    ids = {add(ReviewQueue(tmp_path), t=1_800_000_000.0)["id"] for _ in range(3)}
    assert len(ids) == 3


def test_disk_cap_by_count_removes_the_oldest_first(tmp_path):
    queue = ReviewQueue(tmp_path, max_files=3)
    made = [add(queue, t=1_800_000_000.0 + i * 10, seed=i)["id"] for i in range(5)]
    assert [r["id"] for r in queue.records()] == made[:1:-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.{s}" for i in made[2:] for s in ("jpg", "json"))


def test_the_cap_holds_after_every_add_and_frees_a_margin_once_reached(tmp_path):
    queue = ReviewQueue(tmp_path, max_files=20)
    counts = []
    for i in range(45):
        add(queue, t=1_800_000_000.0 + i)
        counts.append(len(list(tmp_path.glob("*.json"))))
    assert max(counts) == 20 and counts[20] == 19  # the 21st add removes two: the next one needs no folder scan
    assert [r["t"] for r in queue.records()][-1] == 1_800_000_000.0 + 45 - counts[-1]  # the oldest went first


def test_disk_cap_by_bytes_keeps_at_most_the_limit_and_always_the_newest(tmp_path):
    one = len(encode_jpeg(frame())) + 600
    queue = ReviewQueue(tmp_path, max_bytes=int(2.5 * one))
    made = [add(queue, t=1_800_000_000.0 + i, seed=0)["id"] for i in range(6)]
    kept = [r["id"] for r in queue.records()]
    assert kept == made[:-3:-1]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2.5 * one
    tiny = ReviewQueue(tmp_path / "tiny", max_bytes=10)  # smaller than any record: the newest one still stays
    last = [add(tiny, t=1_800_000_000.0 + i)["id"] for i in range(3)][-1]
    assert [r["id"] for r in tiny.records()] == [last]


def test_torn_records_are_skipped_with_one_warning_and_removed_by_the_next_cap_pass(tmp_path, caplog):
    queue = ReviewQueue(tmp_path)
    good = add(queue, t=1_800_000_000.0)
    jpg_only = tmp_path / "20270115-080000-visit-0900.jpg"
    jpg_only.write_bytes(encode_jpeg(frame()))
    truncated = tmp_path / "20270115-080001-close-0901.json"
    truncated.write_text(json.dumps(dict(good, id="20270115-080001-close-0901"))[:40])
    (tmp_path / "20270115-080001-close-0901.jpg").write_bytes(b"\xff\xd8")
    leftover = tmp_path / ".20270115-080002-close-0902.json.abc.tmp"
    leftover.write_text("{")
    for path in (jpg_only, truncated, leftover, tmp_path / "20270115-080001-close-0901.jpg"):
        age(path)
    with caplog.at_level(logging.WARNING, logger="edge_runner.review"):
        for _ in range(3):
            assert [r["id"] for r in queue.records()] == [good["id"]]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # once per torn file, however often the queue is listed
    assert any(str(jpg_only) in w and "no record" in w for w in warnings)
    assert any(str(truncated) in w and "unreadable" in w for w in warnings)
    young = tmp_path / "20270115-080003-close-0903.jpg"  # another process's record half-way through: left alone
    young.write_bytes(b"\xff\xd8")
    queue.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{good['id']}.jpg", f"{good['id']}.json", young.name])


def test_a_full_disk_never_stops_the_watcher(tmp_path, monkeypatch, caplog):
    import edge_runner.review.queue as queue_module

    queue = ReviewQueue(tmp_path)

    def full(path, data, step):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(queue_module, "write_steps", full)
    with caplog.at_level(logging.WARNING, logger="edge_runner.review"):
        assert add(queue) is None
    assert queue.failures == 1 and "No space left on device" in caplog.text and "goes on" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_a_queue_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReviewError, match=r"--review-dir .*file: is a file, not a folder"):
        ReviewQueue(tmp_path / "file")


# -- the collector policy on a synthetic frame stream ------------------------------------------


def collector(tmp_path, **kwargs) -> ReviewCollector:
    options = {"threshold": 0.8, "model_sha256": SHA, "close_per_hour": 3, "quiet_per_hour": 4, "close_margin": 0.15, **kwargs}
    return ReviewCollector(ReviewQueue(tmp_path), SPEC, **options)


def test_close_frames_are_rate_limited_per_hour_and_spaced(tmp_path):
    c = collector(tmp_path, quiet_per_hour=0)
    t0 = 1_800_000_000.0
    made = [c.observe(t0 + i, "cat", 0.72, frame()) for i in range(0, 3 * 3600, 10)]  # 3 hours at 0.1 fps
    times = [r["t"] for r in c.queue.records()][::-1]
    assert len(times) == 9 and made.count("close") == 9  # 3 an hour
    assert all(b - a >= 60 for a, b in zip(times, times[1:]))
    assert all(sum(1 for x in times if start <= x < start + 3600) <= 3 for start in times)
    record = c.queue.records()[0]
    assert record["kind"] == "close" and record["model_label"] == "cat" and record["model_score"] == 0.72
    assert record["group"].startswith("t-") and record["model_sha256"] == SHA
    # far from the threshold (a sure cat outside a visit, or a frame the model calls a cat at 0.3): not "close"
    other = collector(tmp_path / "b", quiet_per_hour=0)
    assert [other.observe(t0 + i * 100, "cat", s, frame()) for i, s in enumerate((0.99, 0.3, 0.66, 0.95))] == \
        [None, None, "close", "close"]


def test_quiet_frames_come_a_few_times_an_hour(tmp_path):
    c = collector(tmp_path, close_per_hour=0)
    t0 = 1_800_000_000.0
    for i in range(0, 2 * 3600, 5):
        c.observe(t0 + i, "other", 0.98, frame())
    records = c.queue.records()
    assert len(records) == 8 and {r["kind"] for r in records} == {"quiet"}  # 4 an hour for 2 hours
    gaps = np.diff(sorted(r["t"] for r in records))
    assert np.all(gaps >= 900 - 1e-6)
    # frames that are nothing: the background label, or a label of interest far below the threshold
    low = collector(tmp_path / "low", close_per_hour=0)
    assert low.observe(t0, "dog", 0.4, frame()) == "quiet"


def test_a_visit_gives_its_best_frame_and_strip_in_one_group_and_no_close_frames(tmp_path):
    c = collector(tmp_path, quiet_per_hour=0)
    t0 = 1_800_000_000.0
    for i in range(20):  # frames inside a visit are never close or quiet frames
        assert c.observe(t0 + i, "cat", 0.75 if i % 2 else 0.97, frame(), visit_label="cat") is None
    c.set_model("cd" * 32, SPEC)  # a model swapped in: the visit's best frame was classified by the old one
    made = c.visit_left(visit=7, label="cat", start=t0, peak_score=0.97, frame=frame(200), strip=frame(50, (20, 100)))
    assert [r["kind"] for r in made] == ["visit", "strip"]
    assert {r["group"] for r in made} == {f"visit-{int(t0)}-7"} and made[0]["model_score"] == 0.97
    assert made[0]["model_sha256"] == SHA
    assert c.observe(t0 + 30, "cat", 0.75, frame()) == "close"  # after the visit: a close frame again
    assert c.queue.records()[0]["model_sha256"] == "cd" * 32


def test_video_time_becomes_wall_time_in_the_records(tmp_path):
    c = collector(tmp_path, clock="video")
    before = time.time()
    c.observe(0.0, "other", 0.99, frame())
    made = c.visit_left(visit=1, label="cat", start=2.0, peak_score=0.9, frame=frame())
    quiet = c.queue.records()[-1]
    assert quiet["kind"] == "quiet" and before - 1 <= quiet["t"] <= time.time() + 1
    assert int(made[0]["group"].split("-")[1]) >= int(before)


# -- export --------------------------------------------------------------------------


def reviewed_queue(root: Path) -> tuple[ReviewQueue, dict]:
    """A queue with two visits (frames + strip), close and quiet frames, reviewed every way."""
    queue = ReviewQueue(root)
    t0 = 1_800_000_000.0
    r = {
        "cat1": add(queue, "visit", t0, "visit-1800000000-1", "cat", 0.95, seed=1),
        "strip1": add(queue, "strip", t0 + 1, "visit-1800000000-1", "cat", 0.95, seed=2),
        "dog": add(queue, "visit", t0 + 60, "visit-1800000060-2", "dog", 0.91, seed=3),
        "mat": add(queue, "visit", t0 + 120, "visit-1800000120-3", "cat", 0.97, seed=4),
        "close": add(queue, "close", t0 + 180, "t-20270115-0800", "cat", 0.74, seed=5),
        "quiet": add(queue, "quiet", t0 + 240, "t-20270115-0800", "other", 0.99, seed=6),
        "skip": add(queue, "close", t0 + 300, "t-20270115-0800", "dog", 0.7, seed=7),
        "todo": add(queue, "quiet", t0 + 360, "t-20270115-0800", "other", 0.99, seed=8),
    }
    for key, label in (("cat1", "cat"), ("strip1", "cat"), ("dog", "dog"), ("mat", "nothing"), ("close", "cat"),
                       ("quiet", "other"), ("skip", "skip")):
        queue.set_review(r[key]["id"], label)
    return queue, r


def test_export_folder_layout_manifest_and_groups(tmp_path):
    queue, r = reviewed_queue(tmp_path / "q")
    result = export_folder(queue, tmp_path / "out")
    assert result.frames == 5 and result.by_label == {"cat": 2, "dog": 1, "other": 2}
    assert result.skipped == 1 and result.unreviewed == 1
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == sorted([
        MANIFEST, f"cat/visit-1800000000-1--{r['cat1']['id']}.jpg", f"dog/visit-1800000060-2--{r['dog']['id']}.jpg",
        f"other/visit-1800000120-3--{r['mat']['id']}.jpg", f"cat/t-20270115-0800--{r['close']['id']}.jpg",
        f"other/t-20270115-0800--{r['quiet']['id']}.jpg",
    ])  # the strip (context, not a training picture), "skip" and the unreviewed frame stay out
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["version"] == 1
    assert manifest["labels"] == ["cat", "dog", "other"] and manifest["background_label"] == "other"
    mat = next(f for f in manifest["frames"] if f["id"] == r["mat"]["id"])
    assert mat == {"file": f"other/visit-1800000120-3--{r['mat']['id']}.jpg", "label": "other", "model_label": "cat",
                   "model_score": 0.97, "model_sha256": SHA, "time": r["mat"]["time"], "group": "visit-1800000120-3",
                   "id": r["mat"]["id"], "kind": "visit"}
    assert (tmp_path / "out" / mat["file"]).read_bytes() == (tmp_path / "q" / f"{r['mat']['id']}.jpg").read_bytes()


def test_nothing_goes_to_a_nothing_folder_when_the_contract_has_no_background(tmp_path):
    queue = ReviewQueue(tmp_path / "q")
    record = queue.add("close", encode_jpeg(frame()), 1_800_000_000.0, group="t-x", model_label="cat", model_score=0.6,
                       model_sha256=SHA, labels=("cat", "dog"), background_label=None)
    queue.set_review(record["id"], "nothing")
    export_folder(queue, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir() if p.is_dir()] == ["nothing"]
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["labels"] == ["cat", "dog", "nothing"]


def test_export_replaces_an_earlier_export_and_refuses_other_folders(tmp_path):
    queue, r = reviewed_queue(tmp_path / "q")
    export_folder(queue, tmp_path / "out")
    queue.set_review(r["todo"]["id"], "other")
    assert export_folder(queue, tmp_path / "out").frames == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder left
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match=r"--out .*photos: the folder holds other files"):
        export_folder(queue, tmp_path / "photos")
    assert (tmp_path / "photos" / "mine.jpg").exists()


def test_zip_holds_the_same_content_as_the_folder(tmp_path):
    import zipfile

    queue, _ = reviewed_queue(tmp_path / "q")
    export_folder(queue, tmp_path / "out")
    with open(tmp_path / "e.zip", "wb") as handle:
        assert export_zip(queue, handle).frames == 5
    with zipfile.ZipFile(tmp_path / "e.zip") as archive:
        names = sorted(archive.namelist())
        folder = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
        assert names == folder
        assert all(archive.read(n) == (tmp_path / "out" / n).read_bytes() for n in names)


def test_train_reads_the_export_as_one_more_source(tmp_path):
    """``train``'s folder finder reads the export from its manifest: one class per label folder, the frames reviewed
    "nothing" join the run's background class (alone, the export has none to join: a clear error)."""
    pytest.importorskip("convert")
    from conftest import draw_photo
    from train.data.folders import find_candidates
    from train.errors import DataError

    queue, _ = reviewed_queue(tmp_path / "q")
    export_folder(queue, tmp_path / "out")
    with pytest.raises(DataError, match="reviewed 'nothing' need a background class"):
        find_candidates([f"door={tmp_path / 'out'}"])
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    for i in range(3):
        draw_photo((200, 200, 40), seed=i).save(negatives / f"neg_{i}.jpg", "JPEG")
    found = find_candidates([f"door={tmp_path / 'out'}"], background=[str(negatives)])
    assert found.labels == ("cat", "dog", "other") and found.background_label == "other"
    assert sorted(s.path.parent.name for s in found.train) == ["cat", "cat", "dog"]
    assert sorted((s.path.parent.name, s.source) for s in found.background) == (
        [("negatives", "negatives")] * 3 + [("other", "door")] * 2)
    assert not found.skipped and {s.source for s in found.train} == {"door"}


# -- the command ----------------------------------------------------------------------


def test_review_list_and_export_commands(tmp_path, capsys):
    from edge_runner.cli import runner

    queue, r = reviewed_queue(tmp_path / "q")
    assert runner.main(["review", "list", "--review-dir", str(tmp_path / "q"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 9 and lines[0]["id"] == r["todo"]["id"]
    assert lines[-1]["summary"]["pending"] == 1 and lines[-1]["summary"]["reviewed"] == 6
    assert runner.main(["review", "list", "--review-dir", str(tmp_path / "q"), "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "7 frames, 6 reviewed, 1 to review" in err
    assert runner.main(["review", "export", "--review-dir", str(tmp_path / "q"), "--out", str(tmp_path / "e"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 5
    assert runner.main(["review", "export", "--review-dir", str(tmp_path / "none"), "--out", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.startswith("edge_runner review: error: --review-dir")
    assert runner.main(["review", "export", "--review-dir", str(tmp_path / "q")]) == 2
    assert "edge_runner review: error:" in capsys.readouterr().err


# -- kill at each step --------------------------------------------------------------------

CHILD = """
import sys
from edge_runner.review.queue import ReviewQueue
from edge_runner.review.export import export_folder
from edge_runner.review.record import encode_jpeg
import numpy as np
queue = ReviewQueue(sys.argv[2])
if sys.argv[1] == "add":
    queue.add("close", encode_jpeg(np.full((8, 8, 3), 90, np.uint8)), 1_800_000_900.0, group="t-x", model_label="cat",
              model_score=0.7, model_sha256="ee", labels=["cat", "dog", "other"], background_label="other")
elif sys.argv[1] == "label":
    queue.set_review(sys.argv[3], "dog")
elif sys.argv[1] == "prune":
    ReviewQueue(sys.argv[2], max_files=3).prune()
else:
    export_folder(queue, sys.argv[3])
"""


def child(tmp_path, crash_at: str, *args) -> int:
    env = {**os.environ, "EDGEKIT_CRASH_AT": crash_at, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], env=env, cwd=REPO, timeout=60).returncode


ADD_STEPS = ["review-add-jpg:temp-written", "review-add-jpg:renamed", "review-add:jpg-written",
             "review-add-json:temp-written", "review-add-json:renamed"]


@pytest.mark.parametrize("step", ADD_STEPS)
def test_kill_while_adding_a_record_leaves_no_record_or_a_whole_one(tmp_path, step):
    queue, _ = reviewed_queue(tmp_path / "q")
    before = {r["id"] for r in queue.records()}
    assert child(tmp_path, step, "add", tmp_path / "q") == 86
    after = ReviewQueue(tmp_path / "q").records()
    new = [r for r in after if r["id"] not in before]
    assert {r["id"] for r in after} >= before
    assert new == [] if step != "review-add-json:renamed" else len(new) == 1 and new[0]["model_sha256"] == "ee"
    for path in (tmp_path / "q").iterdir():
        age(path)
    ReviewQueue(tmp_path / "q").prune()  # the next run clears what the crash left
    assert all(ID_PATTERN.match(p.name.rsplit(".", 1)[0]) for p in (tmp_path / "q").iterdir())
    assert child(tmp_path, "", "add", tmp_path / "q") == 0 and len(ReviewQueue(tmp_path / "q").records()) == len(after) + 1


@pytest.mark.parametrize("step", ["review-label:temp-written", "review-label:renamed"])
def test_kill_while_labelling_leaves_the_old_or_the_new_label(tmp_path, step):
    queue, r = reviewed_queue(tmp_path / "q")
    target = r["cat1"]["id"]
    assert child(tmp_path, step, "label", tmp_path / "q", target) == 86
    label = ReviewQueue(tmp_path / "q").get(target)["review"]["label"]
    assert label == ("cat" if step.endswith("temp-written") else "dog")
    assert len(ReviewQueue(tmp_path / "q").records()) == 8
    assert child(tmp_path, "", "label", tmp_path / "q", target) == 0
    assert ReviewQueue(tmp_path / "q").get(target)["review"]["label"] == "dog"


@pytest.mark.parametrize("step", ["review-export:first-frame", "review-export:tmp-complete", "review-export:exchanged"])
def test_kill_while_exporting_leaves_the_old_or_the_new_export(tmp_path, step):
    queue, r = reviewed_queue(tmp_path / "q")
    export_folder(queue, tmp_path / "out")
    old = json.loads((tmp_path / "out" / MANIFEST).read_text())
    queue.set_review(r["todo"]["id"], "other")
    assert child(tmp_path, step, "export", tmp_path / "q", tmp_path / "out") == 86
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.jpg"))
    assert manifest == old if step != "review-export:exchanged" else len(manifest["frames"]) == 6
    assert files == sorted(f["file"] for f in manifest["frames"])  # never a mix
    assert child(tmp_path, "", "export", tmp_path / "q", tmp_path / "out") == 0
    assert len(json.loads((tmp_path / "out" / MANIFEST).read_text())["frames"]) == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_kill_while_pruning_never_leaves_a_record_without_its_frame(tmp_path):
    queue, r = reviewed_queue(tmp_path / "q")
    assert child(tmp_path, "review-prune:json-removed", "prune", tmp_path / "q") == 86
    left = ReviewQueue(tmp_path / "q").records()
    assert len(left) == 7 and r["cat1"]["id"] not in {x["id"] for x in left}  # the oldest lost its JSON first
    assert all((tmp_path / "q" / f"{x['id']}.jpg").is_file() for x in left)
    age(tmp_path / "q" / f"{r['cat1']['id']}.jpg")
    assert child(tmp_path, "", "prune", tmp_path / "q") == 0
    assert len(ReviewQueue(tmp_path / "q").records()) == 3 and len(list((tmp_path / "q").iterdir())) == 6


def test_kill_during_the_first_export_leaves_no_folder(tmp_path):
    queue, _ = reviewed_queue(tmp_path / "q")
    assert child(tmp_path, "review-export:tmp-complete", "export", tmp_path / "q", tmp_path / "out") == 86
    assert not (tmp_path / "out").exists()
    assert child(tmp_path, "", "export", tmp_path / "q", tmp_path / "out") == 0 and (tmp_path / "out" / MANIFEST).is_file()
