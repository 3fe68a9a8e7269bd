"""``python -m convert evaluate``: a model measured on labelled folders, figure for figure what the runner answers.

Fast tests use the colour model of ``background_models`` (red, green, blue; blue is the
background, threshold 0.6: a grey photo is ``unknown``) on generated folders; the slow one
runs the shipped int8 model on a sample of ``../shared`` photos. Every expected figure is
counted here from a plain loop over :class:`edge_runner.Classifier`, photo by photo.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED, build_colour_keras, draw_photo, write_class_folders
from PIL import Image

from convert.cli import main
from edge_runner.core.image import find_images, preprocess
from edge_runner.core.model import Classifier


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """``data/{red,green}`` (6 each, plus 2 grey and 1 green photo in red, one corrupt file in green); ``bg/``: 5 blue
    (nested), a red one (a false alarm) and a grey one (``unknown``: not a false alarm)."""
    root = tmp_path_factory.mktemp("evaluate")
    data = write_class_folders(root / "data", ["red", "green"], 6)
    draw_photo((128, 128, 128), seed=1).save(data / "red" / "grey.1.jpg")
    draw_photo((120, 120, 130), seed=2).save(data / "red" / "grey.2.jpg")
    draw_photo((40, 200, 60), seed=3).save(data / "red" / "mislabelled.jpg")
    (data / "green" / "broken.jpg").write_bytes(b"not a jpeg")
    write_class_folders(root / "bg" / "nested", ["blue"], 5)
    draw_photo((220, 40, 40), seed=4).save(root / "bg" / "red_thing.png")
    draw_photo((128, 128, 128), seed=5).save(root / "bg" / "grey_wall.png")
    return {"data": data, "bg": root / "bg", "root": root}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def runner_answers(model: Path, photos: list[tuple[Path, str]], threshold: float | None = None) -> list[tuple]:
    """``(path, true, answer, score)`` per photo from the runner's Classifier, photo by photo."""
    classifier = Classifier(model)
    answers = []
    for path, true in photos:
        prediction = classifier.classify(preprocess(path, classifier.spec).array, threshold=threshold)
        answers.append((str(path), true, prediction.label, prediction.score))
    return answers


def expected_figures(answers: list[tuple], labels, background: str) -> dict:
    """Recall, precision, wrong answers, accuracy and false alarms counted from runner answers."""
    classes = {}
    for label in labels:
        mine = [a for a in answers if a[1] == label]
        if not mine:
            continue
        said = [a for a in answers if a[2] == label]
        wrong = Counter(a[2] for a in mine if a[2] != label)
        classes[label] = {"photos": len(mine), "recall": sum(a[2] == label for a in mine) / len(mine),
                          "precision": sum(a[1] == label for a in said) / len(said) if said else None,
                          "wrong_answers": dict(wrong)}
    negatives = [a for a in answers if a[1] == background]
    alarms = sum(a[2] in labels and a[2] != background for a in negatives)
    return {"photos": len(answers), "accuracy": sum(a[1] == a[2] for a in answers) / len(answers),
            "classes": classes, "false_alarms": alarms, "background_photos": len(negatives)}


def labelled(folders: dict[str, Path]) -> list[tuple[Path, str]]:
    """The readable photos as the command should find them: data class folders, then the background."""
    photos = [(p, label) for label in ("green", "red") for p in find_images(folders["data"] / label)
              if p.name != "broken.jpg"]
    return photos + [(p, "blue") for p in find_images(folders["bg"])]


def check_figures(data: dict, answers: list[tuple], spec) -> None:
    expected = expected_figures(answers, spec.labels, spec.background_label)
    assert data["photos"] == expected["photos"]
    assert data["accuracy"] == pytest.approx(expected["accuracy"])
    assert (data["false_alarms"], data["background_photos"]) == (expected["false_alarms"], expected["background_photos"])
    assert set(data["classes"]) == set(expected["classes"])
    for label, figures in expected["classes"].items():
        got = data["classes"][label]
        assert got["photos"] == figures["photos"]
        assert got["recall"] == pytest.approx(figures["recall"])
        assert got["precision"] == pytest.approx(figures["precision"])
        assert got["wrong_answers"] == figures["wrong_answers"]
    wrong = sorted((a[0], a[1], a[2]) for a in answers if a[1] != a[2])
    assert sorted((m["path"], m["true"], m["answer"]) for m in data["mistakes"]) == wrong
    # one of each kind (source, true, answer) in turn, the most confident of each first
    kinds = [(m["source"], m["true"], m["answer"]) for m in data["mistakes"]]
    distinct = len(set(kinds))
    assert len(set(kinds[:distinct])) == distinct
    for kind in set(kinds):
        scores = [m["score"] for m, k in zip(data["mistakes"], kinds) if k == kind]
        assert scores == sorted(scores, reverse=True)
        best = max(a[3] for a in answers if a[1] != a[2] and (a[1], a[2]) == kind[1:])
        assert scores[0] == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_figures_equal_the_runner_photo_by_photo(background_models, folders, capsys, tmp_path, kind):
    model = background_models[kind]
    code, out, err = run(capsys, model, "--data", folders["data"], "--background", f"cams={folders['bg']}",
                         "--out", tmp_path / "out", "--json", "--quiet")
    assert code == 0, err
    data = last_json(out)
    answers = runner_answers(model, labelled(folders))
    check_figures(data, answers, background_models["spec"])
    assert data["threshold"] == 0.6 and data["threshold_from"] == "the model's contract"
    # the planted mistakes are there: grey photos are `unknown`, a green photo in red/ is called green, a red one is an alarm
    assert data["classes"]["red"]["wrong_answers"] == {"unknown": 2, "green": 1}
    assert data["false_alarms"] == 1
    # per source: the data root has no background photos, the background root only those
    data_source, cams = data["sources"]
    assert (data_source["name"], data_source["kind"], cams["name"], cams["kind"]) == ("data", "data", "cams", "background")
    assert data_source["photos"] + cams["photos"] == data["photos"]
    assert (cams["false_alarms"], cams["background_photos"]) == (1, 7)
    assert cams["classes"]["blue"]["wrong_answers"] == {"red": 1, "unknown": 1}
    # the threshold table: at 0.6 it counts what the answers say; the recall falls (never rises) with the threshold
    row = next(r for r in data["thresholds"] if r["threshold"] == 0.6)
    real = [a for a in answers if a[1] != "blue"]
    assert row["correct"] == sum(a[1] == a[2] for a in real) and row["false_alarms"] == 1
    recalls = [r["recall"] for r in data["thresholds"]]
    assert recalls == sorted(recalls, reverse=True)
    # the corrupt photo: one warning line naming it, listed as skipped, the rest evaluated
    warnings = [line for line in err.splitlines() if "broken.jpg" in line]
    assert len(warnings) == 1 and warnings[0].startswith("convert: warning: ")
    assert [s.split(":")[0] for s in data["skipped"]] == [str(folders["data"] / "green" / "broken.jpg")]
    # the files, and the table on stdout
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert written == data
    assert "mistakes.png" in (tmp_path / "out" / "evaluation.md").read_text()
    assert "true class" in out and "false alarms: cams" in out


def test_threshold_flag_overrides_the_contract(background_models, folders, capsys):
    model = background_models["float32"]
    code, out, _ = run(capsys, model, "--data", folders["data"], "--background", folders["bg"], "--threshold", "0",
                       "--json", "--quiet")
    assert code == 0
    data = last_json(out)
    assert data["threshold"] == 0.0 and data["threshold_from"] == "--threshold"
    check_figures(data, runner_answers(model, labelled(folders), threshold=0.0), background_models["spec"])
    assert "unknown" not in data["classes"]["red"]["wrong_answers"]


def test_contact_sheet_has_one_tile_per_mistake(background_models, folders, capsys, tmp_path):
    from convert.evaluation.contact_sheet import COLUMNS, cell_size, sheet_size

    model = background_models["int8"]
    for limit in (2, 24):
        out_dir = tmp_path / str(limit)
        code, out, _ = run(capsys, model, "--data", folders["data"], "--background", folders["bg"], "--out", out_dir,
                           "--mistakes", limit, "--json", "--quiet")
        assert code == 0
        tiles = min(limit, len(last_json(out)["mistakes"]))
        image = Image.open(out_dir / "mistakes.png")
        image.load()
        assert image.format == "PNG" and image.size == sheet_size(tiles, 3)
        pixels = np.asarray(image.convert("RGB"))
        width = cell_size(3)[0]
        for k in range(min(tiles, COLUMNS)):  # each tile of the first row holds a photo, not a blank
            assert pixels[:, k * width: (k + 1) * width].std() > 20


def test_split_folders_and_names(background_models, folders, capsys, tmp_path):
    """``DIR/train/<class>`` and ``DIR/validation/<class>`` are class folders too; NAME=DIR names a source."""
    root = tmp_path / "split"
    write_class_folders(root / "train", ["red", "green"], 2)
    write_class_folders(root / "validation", ["red"], 3, seed=5)
    code, out, _ = run(capsys, background_models["float32"], "--data", f"door={root}", "--json", "--quiet")
    assert code == 0
    data = last_json(out)
    assert data["photos"] == 7 and [s["name"] for s in data["sources"]] == ["door"]
    assert data["classes"]["red"]["photos"] == 5 and data["false_alarm"] is None


def test_keras_run_folder_and_tflite_give_the_same_answers(background_models, folders, tmp_path):
    from convert.evaluation.scoring import evaluate, load_model
    from convert.evaluation.sources import collect, make_sources

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    build_colour_keras(32).save(run_dir / "model.keras")
    background_models["spec"].save(run_dir / "contract.json")
    results = {}
    for name, path in (("keras", run_dir), ("tflite", background_models["float32"])):
        model = load_model(path)
        sources = make_sources([("data", folders["data"])], [("bg", folders["bg"])])
        results[name] = evaluate(model, sources, collect(sources, model.spec), warn=lambda _m: None, progress=False)
    keras, tflite = results["keras"], results["tflite"]
    assert keras.description.startswith("Keras") and tflite.description.startswith("float .tflite")
    assert [p.path for p in keras.photos] == [p.path for p in tflite.photos]
    assert keras.answers == tflite.answers
    np.testing.assert_allclose(keras.probabilities, tflite.probabilities, atol=1e-5)


@pytest.mark.parametrize(
    "extra, model_key, expected",
    [
        (["--data", "{root}/wrong"], "float32",
         "--data wrong: {root}/wrong has class folders the model does not know: cats (the model's classes: red, green, blue)"),
        (["--data", "{data}", "--background", "{bg}"], "plain",
         "--background: the model has no background label (its labels: red, green, blue)"),
        (["--data", "{data}", "--data", "{data}"], "float32", "two sources are named 'data'"),
        ([], "float32", "give at least one --data DIR"),
        (["--data", "{root}/missing"], "float32", "--data: {root}/missing is not a directory"),
        (["--data", "{data}", "--threshold", "2"], "float32",
         "argument --threshold: must be a number from 0 to 1, received 2.0"),
        (["--data", "{data}", "--runtime", "onnx"], "float32", "argument --runtime: invalid choice: 'onnx'"),
        (["--data", "{data}", "--out", "{data}/red/red.0.jpg"], "float32",
         "--out: {data}/red/red.0.jpg is a file; give a folder"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(background_models, tiny_models, folders, capsys, extra, model_key,
                                                expected):
    root = folders["root"]
    write_class_folders(root / "wrong", ["cats"], 1)
    model = tiny_models["float32"] if model_key == "plain" else background_models[model_key]
    fill = {"root": root, "data": folders["data"], "bg": folders["bg"]}
    code, out, err = run(capsys, model, *[a.format(**fill) for a in extra])
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("convert: error: ")
    assert expected.format(**fill) in err.strip().splitlines()[-1]


def test_missing_model_is_refused(folders, capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "nothing.tflite", "--data", folders["data"])
    assert code == 2
    assert err.strip() == (f"convert: error: MODEL: {tmp_path / 'nothing.tflite'} is neither a .tflite file nor a "
                           "training run folder (the --out of `python -m train`)")


def test_console_script_prints_the_json_last(background_models, folders, tmp_path):
    """``edgekit-convert evaluate`` (a fresh process): the table, then one JSON object as the last line."""
    from conftest import console_script

    done = subprocess.run([console_script("edgekit-convert"), "evaluate", str(background_models["int8"]), "--data",
                           str(folders["data"]), "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "true class" in done.stdout
    assert last_json(done.stdout)["photos"] == len(labelled(folders)) - len(find_images(folders["bg"]))
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"convert: warning: {folders['data'] / 'green' / 'broken.jpg'}: not an image (no decoder recognises its "
        "content) (skipped)"]


def test_train_thresholds_is_the_convert_table():
    import convert.thresholds
    import train.report.thresholds

    assert train.report.thresholds.threshold_table is convert.thresholds.threshold_table
    assert train.report.thresholds.THRESHOLDS == convert.thresholds.THRESHOLDS


@pytest.mark.slow
def test_shipped_model_on_a_sample_of_new_photos_equals_the_runner(tmp_path, capsys):
    """30 cats, 30 dogs (more_pets) and 30 photos of nothing (more_other): the command's figures = a Classifier loop."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (set EDGEKIT_SHARED to the shared/ folder)")
    data = SHARED / "data"
    sample = tmp_path / "sample"
    photos = []
    for label, folder in (("cats", data / "more_pets" / "cats"), ("dogs", data / "more_pets" / "dogs"),
                          ("other", data / "more_other")):
        target = sample / ("pets" if label != "other" else "nothing") / label
        target.mkdir(parents=True)
        for path in find_images(folder)[:30]:
            os.symlink(path, target / path.name)
            photos.append((target / path.name, label))
    model = REPO / "models" / "cats_dogs_int8.tflite"
    code, out, err = run(capsys, model, "--data", sample / "pets", "--background", sample / "nothing", "--json",
                         "--quiet")
    assert code == 0, err
    data_out = last_json(out)
    answers = runner_answers(model, sorted(photos, key=lambda p: (p[1] == "other", str(p[0]))))
    check_figures(data_out, answers, Classifier(model).spec)
    assert data_out["photos"] == 90 and data_out["threshold"] == Classifier(model).spec.threshold
