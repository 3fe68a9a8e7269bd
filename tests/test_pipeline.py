"""The main job's data step: download through Keras, verify by content, refuse what does not match."""

from __future__ import annotations

import zipfile

import pytest

from conftest import write_class_folders

pipeline = pytest.importorskip("convert.pipeline", reason="the pipeline needs TensorFlow (pip install .[train])")


def make_archive(tmp_path, seed: int = 0):
    root = tmp_path / "src" / "cats_and_dogs_filtered"
    for split in ("train", "validation"):
        write_class_folders(root / split, ["cats", "dogs"], per_class=3, seed=seed)
    archive = tmp_path / "cats_and_dogs_filtered.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(root.rglob("*.jpg")):
            handle.write(path, path.relative_to(root.parent).as_posix())
    digest, count = pipeline.content_digest(root)
    return archive, digest, count


def test_fetch_downloads_extracts_and_verifies(tmp_path, monkeypatch):
    archive, digest, count = make_archive(tmp_path)
    assert count == 12
    monkeypatch.setattr(pipeline, "DATA_URL", archive.as_uri())
    monkeypatch.setattr(pipeline, "DATA_CONTENT_SHA256", digest)
    root = pipeline.fetch_data(cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["train", "validation"]
    assert (root / ".edgekit-verified").read_text().strip() == digest
    assert pipeline.fetch_data(cache_dir=tmp_path / "cache") == root  # cached: no second download or check


def test_fetch_refuses_photos_that_do_not_match(tmp_path, monkeypatch):
    archive, _, _ = make_archive(tmp_path, seed=1)
    monkeypatch.setattr(pipeline, "DATA_URL", archive.as_uri())
    monkeypatch.setattr(pipeline, "DATA_CONTENT_SHA256", "0" * 64)
    with pytest.raises(pipeline.PipelineError, match="do not match the known set"):
        pipeline.fetch_data(cache_dir=tmp_path / "cache")


def test_content_digest_matches_the_reference_photos(shared_data):
    assert pipeline.content_digest(shared_data) == (pipeline.DATA_CONTENT_SHA256, pipeline.DATA_PHOTOS)


def test_background_photos_and_false_alarms_for_the_summary(tmp_path):
    """The summary's false-alarm rate: the held-out background photos of split.json, counted by the runner's `detected`."""
    import json

    train_out = tmp_path / "train"
    train_out.mkdir()
    split = {"labels": ["cats", "dogs", "other"], "background_label": "other", "train": [{"path": "/o/1.jpg", "label": "other"}],
             "validation": [{"path": "/c/1.jpg", "label": "cats"}, {"path": "/o/2.jpg", "label": "other"},
                            {"path": "/o/3.jpg", "label": "other"}]}
    (train_out / "split.json").write_text(json.dumps(split))
    assert [str(p) for p in pipeline.background_validation(train_out)] == ["/o/2.jpg", "/o/3.jpg"]
    (train_out / "split.json").write_text(json.dumps({**split, "background_label": None}))
    assert pipeline.background_validation(train_out) == []

    lines = tmp_path / "runner.jsonl"
    records = [{"source": "/o/2.jpg", "label": "other", "detected": False}, {"source": "/o/3.jpg", "label": "cats", "detected": True},
               {"source": "/o/4.jpg", "label": "unknown", "detected": False}, {"source": "/o/5.jpg", "label": "other", "detected": False}]
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert pipeline.runner_false_alarms(lines) == (0.25, 1, 4)
    lines.write_text("")
    with pytest.raises(pipeline.PipelineError, match="classified no background photos"):
        pipeline.runner_false_alarms(lines)


def test_pipeline_refuses_a_missing_background_folder(tmp_path, capsys):
    data = tmp_path / "data"
    for split in ("train", "validation"):
        write_class_folders(data / split, ["cats", "dogs"], per_class=2)
    code = pipeline.main(["--data", str(data), "--background", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert "pipeline: error: --background" in err and "nope: not a directory" in err
