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
