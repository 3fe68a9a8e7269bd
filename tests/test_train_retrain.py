"""Retrain from the last run (``--init-from RUN``) with a review export as one more source (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import BLUE, draw_photo, tiny_background_run, write_class_folders


def make_export(root: Path, frames: list[tuple[str, str]], *, labels=("green", "red"), background="other",
                colours=None, seed=0) -> Path:
    """A review export as the device writes it: ``root/<label>/<group>--<id>.jpg`` + ``manifest.json``.

    ``frames``: ``(label, group)``; "nothing" goes to the background folder.
    """
    colours = colours or {"red": (220, 40, 40), "green": (40, 200, 60), "nothing": BLUE, "blue": (40, 70, 220)}
    entries = []
    for n, (label, group) in enumerate(frames):
        folder = background if label == "nothing" else label
        (root / folder).mkdir(parents=True, exist_ok=True)
        name = f"{folder}/{group}--20261206-010000-visit-{n}.jpg"
        draw_photo(colours[label], seed=seed + 500 + n).save(root / name, "JPEG")
        entries.append({"file": name, "label": background if label == "nothing" else label, "model_label": "red",
                        "model_score": 0.9, "model_sha256": "0" * 64, "time": "2026-12-06T01:00:00+00:00",
                        "group": group, "id": f"20261206-010000-visit-{n}"})
    manifest = {"format": "edgekit-review-export", "version": 1, "labels": list(labels) + [background],
                "background_label": background, "frames": entries}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


DOOR = [("nothing", f"t-20261206-01{m:02d}") for m in range(0, 50, 10) for _ in range(4)] + [("red", "visit-1-1")] * 3


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_weights) -> Path:
    """A finished tiny run: red and green photos, a background folder ('other')."""
    return tiny_background_run(tmp_path_factory.mktemp("retrain"), tiny_weights, per_class=8, seed=900, epochs=1)


def test_a_retrain_inherits_the_run_adds_the_export_and_computes_only_its_frames(run, tmp_path, capsys):
    from train.cli import main

    export = make_export(tmp_path / "export", DOOR)
    cache = Path(json.loads((run / "config.json").read_text())["cache_dir"])
    before = {p.name for p in (cache / "activations").glob("*.npy")}
    assert main(["--init-from", str(run), "--data", f"door={export}", "--out", str(tmp_path / "new"), "--quiet"]) == 0
    old, new = (json.loads((d / "config.json").read_text()) for d in (run, tmp_path / "new"))
    assert new["data"] == old["data"] + [f"door={export}"] and new["background"] == old["background"]
    assert (new["alpha"], new["image_size"], new["seed"], new["init_from"]) == (0.35, 48, 0, str(run))
    assert (new["epochs"], new["fine_tune_epochs"]) == (0, 3)  # a retrain's schedule
    split = json.loads((tmp_path / "new" / "split.json").read_text())
    assert split["review_exports"] == ["door"] and split["labels"] == ["green", "other", "red"]
    door = [e for e in split["train"] + split["validation"] if e["source"] == "door"]
    assert len(door) == len(DOOR) and {e["label"] for e in door} == {"other", "red"}
    # Whole groups on one side: of the 5 'nothing' groups, round(5 * 0.2) = 1 validates; the one red visit trains.
    sides = {}
    for part in ("train", "validation"):
        for e in split[part]:
            if e["source"] == "door":
                sides.setdefault(e["group"], set()).add(part)
    assert all(len(s) == 1 for s in sides.values()) and sum(s == {"validation"} for s in sides.values()) == 1
    # Only the export's frames went through the backbone: the new cache files hold exactly their rows.
    added = [p for p in (cache / "activations").glob("*.npy") if p.name not in before]
    door_train = sum(e["source"] == "door" for e in split["train"])
    views = 1 + 1  # view 0 and the mirror image; the head phase is skipped
    assert sum(np.load(p, mmap_mode="r").shape[0] for p in added) == views * door_train + (len(door) - door_train)
    report = json.loads((tmp_path / "new" / "report.json").read_text())
    assert "door" in {f["source"] for f in report["per_source"]["sources"]}
    assert "door" in "".join(report.get("notes", [])) or "door" in (tmp_path / "new" / "report.md").read_text()


def test_pixels_are_decoded_again_only_for_the_folder_that_changed(tmp_path):
    from edge_runner.core.spec import InputSpec
    from train.data.pixels import decode_photos

    spec = InputSpec(labels=("a", "b"), height=32, width=32)
    data = write_class_folders(tmp_path / "photos", ["red", "green"], 5)
    paths = sorted(str(p) for p in data.rglob("*.jpg"))
    first = decode_photos(paths, spec, cache_dir=tmp_path / "cache", progress=False)
    assert first.decoded == 10 and not first.from_cache
    door = write_class_folders(tmp_path / "door", ["blue"], 3)
    more = paths + sorted(str(p) for p in door.rglob("*.jpg"))
    second = decode_photos(more, spec, cache_dir=tmp_path / "cache", progress=False)
    assert second.decoded == 3 and np.array_equal(second.array[:10], first.array)
    draw_photo((1, 2, 3), seed=7).save(data / "red" / "red.99.jpg", "JPEG")
    third = decode_photos(more + [str(data / "red" / "red.99.jpg")], spec, cache_dir=tmp_path / "cache", progress=False)
    assert third.decoded == 6  # the red folder (5 + 1); green and the door come from the cache
    again = decode_photos(more, spec, cache_dir=tmp_path / "cache", progress=False)
    assert again.decoded == 0 and again.from_cache


def test_the_export_is_read_from_its_manifest(tmp_path):
    from train.data.folders import find_candidates

    export = make_export(tmp_path / "export", DOOR)
    (export / "red" / "stray.jpg").write_bytes((export / "red").glob("*.jpg").__next__().read_bytes())  # not listed
    data = write_class_folders(tmp_path / "photos", ["red", "green"], 4)
    found = find_candidates([str(data), f"door={export}"], background=[str(tmp_path / "photos" / "green")],
                            background_label="other")
    door = [s for s in found.all_samples if s.source == "door"]
    assert len(door) == len(DOOR) and found.exports == frozenset({"door"})
    assert sorted({s.label for s in door}) == ["other", "red"] and all(s.group for s in door)
    # Without --background, a class folder named 'other' is the background class the export's frames join.
    write_class_folders(tmp_path / "alone", ["red", "other"], 4)
    alone = find_candidates([str(tmp_path / "alone"), f"door={export}"])
    assert alone.background_label == "other" and {s.label for s in alone.train if s.source == "door"} == {"other", "red"}


def test_group_split_keeps_groups_whole_and_trains_on_all_of_too_few():
    from edge_runner.core.photo import Photo
    from train.data.split import group_split

    samples = [Photo(f"/x/g{g}--{i}.jpg", "other", "door", f"g{g}") for g in range(6) for i in range(3)]
    train, validation = group_split(samples, ("other", "red"), 0.2, 0, "--data door")
    assert {s.group for s in train}.isdisjoint({s.group for s in validation}) and len({s.group for s in validation}) == 1
    train, validation = group_split(samples[:6], ("other", "red"), 0.2, 0, "--data door")  # 2 groups
    assert len(train) == 6 and validation == []


def test_source_weights_given_and_automatic():
    from edge_runner.core.photo import Photo
    from train.data.dataset import source_factors
    from train.errors import ConfigError

    samples = ([Photo(f"/a/{i}", "other", "web") for i in range(90)] + [Photo(f"/b/{i}", "other", "door") for i in range(10)]
               + [Photo(f"/c/{i}", "red", "web") for i in range(50)])
    factors, notes = source_factors(samples, [], ("door",))
    assert factors[:90].tolist() == [1.0] * 90 and np.allclose(factors[90:100], 100 / (2 * 10)) and factors[-1] == 1.0
    factors, _ = source_factors(samples, ["door=3"], ("door",))
    assert np.allclose(factors[90:100], 3.0)
    with pytest.raises(ConfigError, match=r"--source-weight door=-1: .*|--source-weight must be NAME=W"):
        source_factors(samples, ["door=-1"], ("door",))
    with pytest.raises(ConfigError, match="no training photos from source 'garden'"):
        source_factors(samples, ["garden=2"], ())


def test_errors_name_the_run_and_what_was_received(run, tmp_path, capsys):
    from train.cli import main

    assert main(["--init-from", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"train: error: --init-from {tmp_path / 'nope'}: no such directory"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert main(["--init-from", str(tmp_path / "half"), "--out", str(tmp_path / "o")]) == 2
    assert "not a finished training run (no model.keras, contract.json, split.json)" in capsys.readouterr().err
    blue = make_export(tmp_path / "blue", [("blue", "g1"), ("blue", "g2")], labels=("blue", "green", "red"))
    assert main(["--init-from", str(run), "--data", f"door={blue}", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"train: error: --init-from {run}: the classes found ['blue', 'green', 'other', 'red'] differ "
                       "from the run's ['green', 'other', 'red']; a retrain keeps the run's classes (an export's labels "
                       "must be among them)")


def test_an_older_runs_config_is_read_leniently(run, tmp_path, capsys):
    import shutil

    from train import TrainConfig
    from train.retrain import inherit

    old = tmp_path / "old"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("checkpoints"))
    settings = json.loads((old / "config.json").read_text())
    settings["width"] = settings.pop("alpha")
    settings["retired_option"] = 1
    del settings["max_recall_loss"]
    (old / "config.json").write_text(json.dumps(settings))
    config = inherit(TrainConfig(data=[], out=str(tmp_path / "n"), init_from=str(old), fine_tune_epochs=5), {"fine_tune_epochs"})
    assert (config.alpha, config.fine_tune_epochs, config.epochs, config.max_recall_loss) == (0.35, 5, 0, 0.01)
    assert config.data == settings["data"]
    assert "ignoring options this version does not know: retired_option" in capsys.readouterr().err
