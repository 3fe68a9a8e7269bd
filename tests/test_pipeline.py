"""The main job (``python -m edgekit``): its data step, its stages on files export really wrote, its command line.

The stages after training run on a tiny model (fast); the whole job, training
included, runs on generated photos with the local ImageNet weights (slow).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from conftest import build_colour_keras, draw_photo, write_class_folders

pytest.importorskip("keras", reason="the main job needs TensorFlow (pip install .[train])")

from edge_runner.core.spec import InputSpec, contract_path_for  # noqa: E402
from edgekit import dataset, pipeline, summary  # noqa: E402

# A label with a space: export names its files by the sanitised model name, so the
# main job must take the file names from what export wrote.
LABELS = ("golden retriever", "poodle", "other")
COLOURS = {"golden retriever": (220, 40, 40), "poodle": (40, 200, 60), "other": (40, 70, 220)}  # colour model's order
STEM = "golden_retriever_poodle"


def make_archive(tmp_path, seed: int = 0):
    root = tmp_path / "src" / "cats_and_dogs_filtered"
    for split in ("train", "validation"):
        write_class_folders(root / split, ["cats", "dogs"], per_class=3, seed=seed)
    archive = tmp_path / "cats_and_dogs_filtered.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(root.rglob("*.jpg")):
            handle.write(path, path.relative_to(root.parent).as_posix())
    digest, count = dataset.content_digest(root)
    return archive, digest, count


def test_fetch_downloads_extracts_and_verifies(tmp_path, monkeypatch):
    archive, digest, count = make_archive(tmp_path)
    assert count == 12
    monkeypatch.setattr(dataset, "DATA_URL", archive.as_uri())
    monkeypatch.setattr(dataset, "DATA_CONTENT_SHA256", digest)
    root = dataset.fetch_data(cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["train", "validation"]
    assert (root / ".edgekit-verified").read_text().strip() == digest
    # Cached: with the archive gone and a digest that would not match, a second call
    # neither downloads nor checks again.
    archive.unlink()
    monkeypatch.setattr(dataset, "DATA_CONTENT_SHA256", "0" * 64)
    assert dataset.fetch_data(cache_dir=tmp_path / "cache") == root


def test_fetch_refuses_photos_that_do_not_match(tmp_path, monkeypatch):
    archive, _, _ = make_archive(tmp_path, seed=1)
    monkeypatch.setattr(dataset, "DATA_URL", archive.as_uri())
    monkeypatch.setattr(dataset, "DATA_CONTENT_SHA256", "0" * 64)
    with pytest.raises(pipeline.PipelineError, match="do not match the known set"):
        dataset.fetch_data(cache_dir=tmp_path / "cache")


def test_content_digest_matches_the_reference_photos(shared_data):
    assert dataset.content_digest(shared_data) == (dataset.DATA_CONTENT_SHA256, dataset.DATA_PHOTOS)


def test_background_photos_and_false_alarms_for_the_summary(tmp_path):
    """The held-out background photos are split.json's validation photos of the background label; a false alarm is `detected`."""
    split = {"labels": ["cats", "dogs", "other"], "background_label": "other", "train": [{"path": "/o/1.jpg", "label": "other"}],
             "validation": [{"path": "/c/1.jpg", "label": "cats"}, {"path": "/o/2.jpg", "label": "other"},
                            {"path": "/o/3.jpg", "label": "other"}]}
    assert [str(p) for p in summary.background_validation(split)] == ["/o/2.jpg", "/o/3.jpg"]
    assert summary.background_validation({**split, "background_label": None}) == []

    lines = tmp_path / "runner.jsonl"
    records = [{"source": "/o/2.jpg", "label": "other", "detected": False}, {"source": "/o/3.jpg", "label": "cats", "detected": True},
               {"source": "/o/4.jpg", "label": "unknown", "detected": False}, {"source": "/o/5.jpg", "label": "other", "detected": False}]
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert summary.runner_false_alarms(lines) == summary.Share(1, 4)
    lines.write_text("")
    with pytest.raises(pipeline.PipelineError, match="classified no background photos"):
        summary.runner_false_alarms(lines)


def test_held_out_sources_in_the_summary(tmp_path):
    """Per held-out source and class: right labels of pets, false alarms (`detected`) of background photos."""
    entries = [{"path": f"/h/{i}.jpg", "label": label, "source": source}
               for i, (label, source) in enumerate([("dogs", "web"), ("dogs", "web"), ("cats", "web"), ("other", "wild"),
                                                     ("other", "wild"), ("other", "wild")])]
    answers = [("dogs", True), ("other", False), ("cats", True), ("cats", True), ("unknown", False), ("other", False)]
    lines = tmp_path / "held.jsonl"
    lines.write_text("".join(json.dumps({"source": f"/h/{i}.jpg", "label": label, "detected": detected}) + "\n"
                             for i, (label, detected) in enumerate(answers)))
    rows = summary.runner_by_source(lines, entries, "other")
    assert [(r.source, r.label, r.background, r.share) for r in rows] == [
        ("web", "cats", False, summary.Share(1, 1)), ("web", "dogs", False, summary.Share(1, 2)),
        ("wild", "other", True, summary.Share(1, 3))]
    text = summary.format_summary(summary.Summary(
        out=tmp_path, files=(), keras_accuracy=0.9, variants=(), runner=summary.Share(9, 10), false_alarms=None,
        threshold=0.5, background_label="other", times=(), held_out=rows))
    assert "runner on held-out sources (never trained on, threshold 0.5):" in text
    assert "wild" in text.splitlines()[-3] and "false alarms  33.33% (1/3)" in text
    lines.write_text("")
    with pytest.raises(pipeline.PipelineError, match="classified none of the held-out photos"):
        summary.runner_by_source(lines, entries, "other")


@pytest.mark.parametrize("extra, message", [
    (["--background", "nope"], "--background {tmp}/nope: not a directory of photos"),
    (["--more-data", "nope"], "--more-data {tmp}/nope: not a directory of photos"),
    (["--variants", "float32,float16"], "--variants must include int8"),
    (["--variants", "int8", "--install"], "--variants must include float16"),
])
def test_arguments_that_cannot_work_are_refused_before_any_stage(tmp_path, capsys, extra, message):
    data = tmp_path / "data"
    for split in ("train", "validation"):
        write_class_folders(data / split, ["cats", "dogs"], per_class=2)
    extra = [str(tmp_path / a) if a == "nope" else a for a in extra]
    code = pipeline.main(["--data", str(data), "--out", str(tmp_path / "out"), *extra])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("edgekit: error: ") and message.format(tmp=tmp_path) in line, line
    assert not (tmp_path / "out").exists()


def test_data_without_train_and_validation_is_a_usage_error(tmp_path, capsys):
    write_class_folders(tmp_path / "flat", ["cats", "dogs"], per_class=2)
    assert pipeline.main(["--data", str(tmp_path / "flat"), "--out", str(tmp_path / "out")]) == 2
    assert "edgekit: error: --data " in capsys.readouterr().err


def test_python_dash_m_edgekit_shows_its_help(capsys):
    assert pipeline.main(["--help"]) == 0
    assert "usage: python -m edgekit" in capsys.readouterr().out
    assert pipeline.main(["--image-size", "100"]) == 2
    assert "edgekit: error: argument --image-size: invalid choice: 100" in capsys.readouterr().err


def write_photos(root: Path, per_class: int, seed: int, labels=LABELS) -> list[dict]:
    entries = []
    for c, label in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = root / label / f"{label}.{i}.jpg"
            draw_photo(COLOURS[label], size=(64, 48), seed=seed * 1000 + c * 100 + i).save(path, "JPEG", quality=90)
            entries.append({"path": str(path), "label": label})
    return entries


@pytest.fixture
def trained(tmp_path):
    """A training output as train/ writes it, for a model named ``golden retriever_poodle`` (the colour model)."""
    train = write_photos(tmp_path / "photos" / "train", 6, seed=1)
    validation = write_photos(tmp_path / "photos" / "validation", 4, seed=2)
    spec = InputSpec(labels=LABELS, height=32, width=32, name="golden retriever_poodle", background_label="other")
    out = tmp_path / "run" / "train"
    out.mkdir(parents=True)
    build_colour_keras(32).save(out / "model.keras")
    spec.save(out / "contract.json")
    spec.save_labels(out / "labels.txt")
    split = {"data_dir": str(tmp_path / "photos"), "labels": list(LABELS), "background_label": "other",
             "train": train, "validation": validation, "skipped": []}
    (out / "split.json").write_text(json.dumps(split))
    return out


def test_stages_after_training_use_the_files_export_wrote(trained, tmp_path, capsys):
    """Export, benchmark, runner and install on a model whose name needs sanitising: every path comes from export."""
    run = trained.parent
    times: list[summary.StageTime] = []
    report, models = pipeline.export_models(trained, run / "tflite", "float32,float16,int8", times)
    assert {v: p.name for v, p in models.items()} == {v: f"{STEM}_{v}.tflite" for v in ("float32", "float16", "int8")}
    assert all(p.is_file() and contract_path_for(p).is_file() for p in models.values())

    photos = tmp_path / "photos" / "validation"
    bench = pipeline.benchmark_models(models, photos, trained / "model.keras", run / "benchmark", times)
    lines = pipeline.run_runner("runner", models["int8"], [photos], run / "runner.jsonl", times, "runner")
    held_out = summary.background_validation(json.loads((trained / "split.json").read_text()))
    assert len(held_out) == 4
    alarms_lines = pipeline.run_runner("runner (bg)", models["int8"], held_out, run / "bg.jsonl", times, "runner (bg)")
    assert [t.name for t in times] == ["convert + gate", "benchmark", "runner", "runner (bg)"]

    # The colour model tells the three colours apart: every validation photo right, no background photo an alarm.
    assert summary.runner_accuracy(lines, photos) == summary.Share(12, 12)
    assert summary.runner_false_alarms(alarms_lines) == summary.Share(0, 4)
    rows = summary.variant_rows(report, bench)
    assert [r.variant for r in rows] == ["float32", "float16", "int8"]
    for row in rows:
        assert row.accepted and row.accuracy == 1.0 and row.agreement == 1.0, row
        assert row.path == models[row.variant] and row.size_bytes == row.path.stat().st_size
        assert row.p50_ms is not None and row.p50_ms > 0

    target = tmp_path / "installed"
    copied = pipeline.install_models(models, run / "tflite" / "labels.txt", target)
    assert sorted(p.name for p in copied) == sorted(
        [f"{STEM}_int8.tflite", f"{STEM}_int8.contract.json", f"{STEM}_float16.tflite", f"{STEM}_float16.contract.json",
         "labels.txt"])
    assert (target / "labels.txt").read_text().splitlines() == list(LABELS)
    assert (target / f"{STEM}_int8.tflite").read_bytes() == models["int8"].read_bytes()


@pytest.mark.slow
def test_the_whole_main_job_on_generated_photos(tmp_path, shared_weights, monkeypatch, capsys):
    """``python -m edgekit`` end to end (train → export + gate → benchmark → runner → install) on a label needing sanitising.

    Offline: the local ImageNet weights file; the photos are generated. Several minutes on 2 cores.
    """
    data = tmp_path / "data"
    for i, split in enumerate(("train", "validation")):
        write_photos(data / split, 12 if split == "train" else 6, seed=i, labels=LABELS[:2])  # no background class
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    installed = tmp_path / "models"
    monkeypatch.setattr(pipeline, "models_dir", lambda: installed)
    out = tmp_path / "out"
    code = pipeline.main(["--data", str(data), "--weights", str(shared_weights), "--image-size", "96", "--epochs", "8",
                          "--fine-tune-epochs", "0", "--variants", "int8,float16", "--install", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out

    report = json.loads((out / "tflite" / "report.json").read_text())
    assert [(v["variant"], Path(v["path"]).name) for v in report["variants"]] == [
        ("int8", f"{STEM}_int8.tflite"), ("float16", f"{STEM}_float16.tflite")]
    assert sorted(p.name for p in installed.iterdir()) == sorted(
        [f"{STEM}_int8.tflite", f"{STEM}_int8.contract.json", f"{STEM}_float16.tflite", f"{STEM}_float16.contract.json",
         "labels.txt"])
    lines = [json.loads(line) for line in (out / "runner_validation.jsonl").read_text().splitlines()]
    assert sorted(Path(r["source"]).name for r in lines) == sorted(p.name for p in (data / "validation").rglob("*.jpg"))
    right = sum(r["label"] == Path(r["source"]).parent.name for r in lines)
    int8 = report["variants"][0]
    # No background class, so no threshold: the runner's answers are the gate's int8 answers on the same photos.
    assert right == round(int8["accuracy"] * len(lines))
    assert f"runner (int8, decode → resize → invoke): {100 * right / len(lines):.2f}% ({right}/{len(lines)})" in printed
    keras_accuracy = json.loads((out / "train" / "report.json").read_text())["summary"]["val_accuracy"]
    assert f"Keras float model: validation accuracy {100 * keras_accuracy:.2f}%" in printed
    for row in report["variants"]:  # the table shows the gate's figures for the files it lists
        assert re.search(rf"^{row['variant']} +yes +{100 * row['accuracy']:.2f}% +{100 * row['agreement']:.2f}% "
                         rf"+{row['size_bytes'] / 1e6:.2f} +\d+\.\d$", printed, re.M), printed
    assert (out / "benchmark" / "benchmark.json").is_file() and "runner false alarms" not in printed


def test_the_main_job_trains_the_rescue_head_when_there_is_a_background_class(tmp_path):
    """With --background the train stage gets --teacher imagenet --rescue-limit 0.5 (the recipe of train/README.md);
    without a background class, or with --teacher none, it does not."""
    def flags(**overrides):
        config = pipeline.PipelineConfig(data=tmp_path, weights="imagenet", out=tmp_path / "out", **overrides)
        argv = pipeline.train_command(config, tmp_path, tmp_path / "out" / "train")
        return [a for a in argv if a.startswith("--teacher") or a.startswith("--rescue")], argv

    teach, argv = flags(background=(tmp_path,))
    assert teach == ["--teacher", "--rescue-limit"] and argv[argv.index("--teacher") + 1] == "imagenet"
    assert argv[argv.index("--rescue-limit") + 1] == str(pipeline.RESCUE_LIMIT) == "0.5"
    assert flags()[0] == [] and flags(background=(tmp_path,), teacher="none")[0] == []
