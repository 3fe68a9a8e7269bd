"""train/: layouts, splitting, unreadable files, configuration and CLI argument errors (no TensorFlow needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import draw_photo, write_class_folders
from edge_runner.core.spec import InputSpec
from train import ConfigError, DataError, TrainConfig
from train.cli import build_parser, config_from_args, main
from train.data.split import DataSplit, background_split, split_samples
from train.data.folders import LAYOUT_CLASSES, LAYOUT_FILENAMES, LAYOUT_SPLIT, find_candidates, label_from_filename
from train.data.pixels import decode_photos
from train.data.dataset import class_weights_for

SPEC = InputSpec(labels=("a", "b"), height=40, width=40)


def test_class_folders_are_split_by_a_seeded_stratified_fraction(photo_folders):
    root = photo_folders(["red", "green", "blue"], per_class=10)
    candidates = find_candidates(root)
    assert candidates.layout == LAYOUT_CLASSES
    assert candidates.labels == ("blue", "green", "red")
    assert candidates.validation is None

    split = split_samples(candidates, {}, validation_fraction=0.2, seed=1)
    assert split.counts("train") == {"blue": 8, "green": 8, "red": 8}
    assert split.counts("validation") == {"blue": 2, "green": 2, "red": 2}
    assert not {s.path for s in split.train} & {s.path for s in split.validation}
    assert all(Path(s.path).is_absolute() and Path(s.path).parent.name == s.label for s in split.train)

    again = split_samples(find_candidates(root), {}, validation_fraction=0.2, seed=1)
    other = split_samples(find_candidates(root), {}, validation_fraction=0.2, seed=2)
    assert [s.path for s in again.validation] == [s.path for s in split.validation]
    assert [s.path for s in other.validation] != [s.path for s in split.validation]


def test_background_folder_is_a_class_split_by_the_seeded_rule(tmp_path):
    """--background DIR (nested) joins as class 'other', split by fraction even though --data has its own split."""
    write_class_folders(tmp_path / "data" / "train", ["red", "green"], 6)
    write_class_folders(tmp_path / "data" / "validation", ["red", "green"], 3, seed=1)
    write_class_folders(tmp_path / "negatives", ["sky"], 6, seed=2)
    write_class_folders(tmp_path / "negatives" / "deeper", ["sea"], 4, seed=3)
    (tmp_path / "negatives" / "notes.txt").write_text("not a photo")
    candidates = find_candidates(tmp_path / "data", background=tmp_path / "negatives")
    assert candidates.labels == ("green", "other", "red") and candidates.background_label == "other"
    assert len(candidates.background) == 10 and any("notes.txt" in s.path for s in candidates.skipped)

    split = split_samples(candidates, {}, validation_fraction=0.2, seed=0)
    assert split.counts("train") == {"green": 6, "other": 8, "red": 6}
    assert split.counts("validation") == {"green": 3, "other": 2, "red": 3}
    held_out = sorted(Path(s.path) for s in split.validation if s.label == "other")
    assert all(str(p).startswith(str((tmp_path / "negatives").resolve())) for p in held_out)
    # Evaluation scripts find the same held-out photos without the data folder.
    train, validation = background_split(tmp_path / "negatives", validation_fraction=0.2, seed=0)
    assert validation == held_out and len(train) == 8 and not set(train) & set(validation)
    assert background_split(tmp_path / "negatives", validation_fraction=0.2, seed=1)[1] != held_out

    saved = DataSplit.load(split.save(tmp_path / "split.json"))
    assert saved.background_label == "other" and saved.background_dir == (tmp_path / "negatives").resolve()
    assert saved.counts("validation") == split.counts("validation")

    named = find_candidates(tmp_path / "data", background=tmp_path / "negatives", background_label="nothing")
    assert named.labels == ("green", "nothing", "red") and named.background_label == "nothing"


def test_background_class_folder_is_found_by_name(photo_folders):
    root = photo_folders(["cats", "dogs", "other"], per_class=5)
    assert find_candidates(root).background_label == "other"
    assert find_candidates(photo_folders(["a", "background"], per_class=3, name="b")).background_label == "background"
    assert find_candidates(photo_folders(["a", "b"], per_class=3, name="c")).background_label is None
    assert find_candidates(root, background_label="dogs").background_label == "dogs"
    with pytest.raises(DataError, match=r"--background-label birds: no class of that name .*'cats', 'dogs', 'other'"):
        find_candidates(root, background_label="birds")
    # Split with every class by the same rule; the background class is weighted like any imbalanced class.
    split = split_samples(find_candidates(root), {}, validation_fraction=0.2, seed=0)
    assert split.background_label == "other" and split.counts("validation") == {"cats": 1, "dogs": 1, "other": 1}


def test_background_errors_name_the_argument(tmp_path, photo_folders):
    root = photo_folders(["cats", "other"], per_class=3)
    negatives = write_class_folders(tmp_path / "neg", ["x"], 3)
    with pytest.raises(DataError, match="--background .*: --data already has a class folder 'other'"):
        find_candidates(root, background=negatives)
    with pytest.raises(DataError, match="--background .*missing: no such directory"):
        find_candidates(root, background=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="--background .*empty: holds no image files"):
        find_candidates(root, background=tmp_path / "empty", background_label="nothing")
    with pytest.raises(DataError, match="a class may not be named 'unknown'"):
        find_candidates(photo_folders(["cats", "unknown"], per_class=3, name="u"))
    with pytest.raises(DataError, match="--background-label unknown: a class may not be named 'unknown'"):
        find_candidates(photo_folders(["cats", "dogs"], per_class=3, name="v"), background=negatives, background_label="unknown")
    with pytest.raises(ConfigError, match="--background-label must not be 'unknown'"):
        TrainConfig(data="d", out="o", background_label="unknown").validate()
    with pytest.raises(ConfigError, match=r"--max-false-alarm must be a number in \[0, 1\], received 2"):
        TrainConfig(data="d", out="o", max_false_alarm=2).validate()
    assert main(["--data", str(root), "--out", str(tmp_path / "o"), "--background-label", "unknown"]) == 2


def test_threshold_table_counts_recall_and_false_alarms():
    from train.report.thresholds import recommend, threshold_table

    labels = ("cats", "dogs", "other")
    probabilities = np.array([
        [0.95, 0.03, 0.02],  # cat, right, sure
        [0.55, 0.40, 0.05],  # cat, right, unsure
        [0.10, 0.85, 0.05],  # dog, right
        [0.70, 0.20, 0.10],  # dog called cat
        [0.05, 0.05, 0.90],  # nothing, right
        [0.65, 0.05, 0.30],  # nothing called cat at 0.65: a false alarm up to 0.6
    ])
    y_true = np.array([0, 0, 1, 1, 2, 2])
    table = threshold_table(probabilities, y_true, labels, "other", max_false_alarm=0.01)
    rows = {row.threshold: row for row in table.rows}
    assert (rows[0.0].correct, rows[0.0].positives, rows[0.0].false_alarms, rows[0.0].negatives) == (3, 4, 1, 2)
    assert rows[0.5].recall == 0.75 and rows[0.6].recall == 0.5 and rows[0.6].false_alarm == 0.5
    assert rows[0.7].false_alarm == 0.0 and rows[0.99].recall == 0.0
    assert table.recommended == 0.7 and "lowest threshold" in table.rule
    # No threshold reaches the target: the fewest false alarms, the lowest of equals (never below 0.5).
    fallback, rule = recommend(tuple(r for r in table.rows if r.threshold <= 0.6), 0.01)
    assert fallback == 0.5 and "no threshold reached" in rule
    # No false alarm even at 0: still 0.5, the least score that is more likely than the rest together.
    quiet = threshold_table(probabilities[[0, 2, 4]], y_true[[0, 2, 4]], labels, "other", max_false_alarm=0.0)
    assert quiet.row(0.0).false_alarm == 0.0 and quiet.recommended == 0.5
    # No background photo among the validation ones: nothing to measure, the lowest allowed threshold.
    blind = threshold_table(probabilities[:4], y_true[:4], labels, "other", max_false_alarm=0.01)
    assert blind.row(0.0).negatives == 0 and blind.recommended == 0.5 and "no background photos" in blind.rule


def test_train_and_validation_folders_keep_their_split(tmp_path):
    write_class_folders(tmp_path / "data" / "train", ["red", "green"], 6)
    write_class_folders(tmp_path / "data" / "validation", ["red", "green"], 3, seed=1)
    (tmp_path / "data" / "test").mkdir()  # unlabelled extras are ignored
    candidates = find_candidates(tmp_path / "data")
    assert candidates.layout == LAYOUT_SPLIT
    split = split_samples(candidates, {}, validation_fraction=0.5, seed=0)
    assert split.counts("train") == {"green": 6, "red": 6}
    assert split.counts("validation") == {"green": 3, "red": 3}
    assert all("/validation/" in s.key for s in split.validation)


def test_labels_from_filename_flat_folder(tmp_path):
    flat = tmp_path / "kaggle"
    flat.mkdir()
    for i in range(5):
        draw_photo((220, 40, 40), seed=i).save(flat / f"cat.{i}.jpg")
        draw_photo((40, 200, 60), seed=i).save(flat / f"dog.{i}.jpg")
    draw_photo((0, 0, 0)).save(flat / "12345.jpg")  # no label in the name
    candidates = find_candidates(flat, labels_from_filename=True)
    assert candidates.layout == LAYOUT_FILENAMES
    assert candidates.labels == ("cat", "dog")
    assert [s.reason for s in candidates.skipped] == [f"{flat / '12345.jpg'}: no label in the file name (expected names like cat.123.jpg)"]
    split = split_samples(candidates, {}, validation_fraction=0.4, seed=0)
    assert split.counts("validation") == {"cat": 2, "dog": 2}

    assert label_from_filename("cat.123.jpg") == "cat"
    assert label_from_filename("american_bulldog_10.jpg") == "american_bulldog"
    assert label_from_filename("dog (3).png") == "dog"
    assert label_from_filename("cat.jpg") is None


def write_corrupt_files(folder: Path) -> dict[str, str]:
    """PetImages-style rubbish in a class folder; returns {name: expected reason fragment}."""
    (folder / "666.jpg").write_bytes(b"")
    good = folder / "Cat.0.jpg"
    (folder / "11702.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # truncated JPEG
    (folder / "text.jpg").write_text("<html>not a photo</html>")
    (folder / "Thumbs.db").write_bytes(b"\x00" * 64)
    draw_photo((90, 90, 90)).save(folder / "really_a_png.jpg", "PNG")  # readable despite its name
    return {
        "666.jpg": "empty file",
        "11702.jpg": "corrupt or truncated",
        "text.jpg": "not an image",
        "Thumbs.db": "not an image file type (.db)",
    }


def test_unreadable_files_are_skipped_with_reasons(tmp_path):
    root = write_class_folders(tmp_path / "PetImages", ["Cat", "Dog"], 6)
    expected = write_corrupt_files(root / "Cat")
    candidates = find_candidates(root)
    decoded = decode_photos([s.key for s in candidates.all_samples], SPEC, cache_dir=tmp_path / "cache", progress=False)
    split = split_samples(candidates, decoded.errors, validation_fraction=0.25, seed=0)

    reasons = {Path(s.path).name: s.reason for s in split.skipped}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name] and str(root / "Cat" / name) in reasons[name]
    kept = {Path(s.path).name for s in split.train + split.validation}
    assert "really_a_png.jpg" in kept and not kept & set(expected)
    assert split.counts("train")["Cat"] + split.counts("validation")["Cat"] == 7

    # The decoded pixels are exactly the runner's, and a second pass reads the cache.
    from edge_runner.core.image import preprocess

    row = decoded.rows([split.train[0].key])[0]
    assert np.array_equal(decoded.array[row], preprocess(split.train[0].path, SPEC).array)
    again = decode_photos(decoded.paths, SPEC, cache_dir=tmp_path / "cache", progress=False)
    assert again.from_cache and again.errors == decoded.errors and np.array_equal(again.array, decoded.array)


def test_split_json_round_trip(tmp_path, photo_folders):
    split = split_samples(find_candidates(photo_folders(["red", "green"], 5)), {}, validation_fraction=0.2, seed=0)
    path = split.save(tmp_path / "split.json")
    data = json.loads(path.read_text())
    assert set(data) >= {"data_dir", "labels", "train", "validation", "skipped"}
    assert data["train"][0].keys() == {"path", "label", "source"}
    assert DataSplit.load(path).to_dict() == split.to_dict()


def test_imbalance_turns_on_class_weights(photo_folders, tmp_path):
    root = photo_folders(["red", "green"], 4)
    write_class_folders(root, ["blue"], 12)
    split = split_samples(find_candidates(root), {}, validation_fraction=0.25, seed=0)
    config = TrainConfig(data=str(root), out=str(tmp_path / "out"))
    weights = class_weights_for(split, config)
    assert split.imbalance() == 3.0
    assert weights == {"blue": pytest.approx(15 / 27), "green": pytest.approx(15 / 9), "red": pytest.approx(15 / 9)}
    assert class_weights_for(split, TrainConfig(data="d", out="o", class_weights="off")) is None
    balanced = split_samples(find_candidates(photo_folders(["red", "green"], 4, name="b")), {}, validation_fraction=0.25, seed=0)
    assert class_weights_for(balanced, config) is None


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda tmp: tmp / "missing", "no such directory"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no labelled photos found"),
        (lambda tmp: write_class_folders(tmp / "one", ["red"], 3), "only one class ('red')"),
        (lambda tmp: _flat_folder(tmp), "pass --labels-from-filename"),
        (lambda tmp: _empty_class(tmp), "class folder 'green' holds no image files"),
    ],
)
def test_unusable_data_dirs_are_refused(tmp_path, make, fragment):
    data = make(tmp_path)
    with pytest.raises(DataError, match="--data") as info:
        find_candidates(data)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _flat_folder(tmp: Path) -> Path:
    (tmp / "flat").mkdir()
    draw_photo((1, 2, 3)).save(tmp / "flat" / "cat.1.jpg")
    return tmp / "flat"


def _empty_class(tmp: Path) -> Path:
    root = write_class_folders(tmp / "d", ["red"], 3)
    (root / "green").mkdir()
    return root


def test_no_readable_photo_is_refused(tmp_path):
    root = tmp_path / "bad"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        (root / label / "x.jpg").write_bytes(b"not a jpeg")
    candidates = find_candidates(root)
    decoded = decode_photos([s.key for s in candidates.all_samples], SPEC, cache_dir=None, progress=False)
    with pytest.raises(DataError, match="none of the 2 photos could be read"):
        split_samples(candidates, decoded.errors, validation_fraction=0.5, seed=0)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--image-size", "8"], "--image-size must be an integer from 32 to 1024, received 8"),
        (["--width", "0.3"], "--width for mobilenet_v2 must be one of [0.35, 0.5, 0.75, 1.0, 1.3, 1.4], received 0.3"),
        (["--weights", "nowhere.h5"], "--weights must be one of ['imagenet', 'none'] or an existing weights file"),
        (["--validation-fraction", "1.5"], "--validation-fraction must be a number in (0, 1), received 1.5"),
        (["--epochs", "0", "--fine-tune-epochs", "0"], "nothing would be trained"),
        (["--batch-size", "0"], "--batch-size must be an integer from 1 to 4096, received 0"),
        (["--weights", "none", "--fine-tune-epochs", "0"], "--fine-tune-epochs must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, photo_folders, capsys, argv, fragment):
    data = photo_folders(["red", "green"], 3)
    code = main(["--data", str(data), "--out", str(tmp_path / "out"), "--quiet", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("train: error: ") and fragment in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--backbone", "resnet"], "invalid choice: 'resnet'"),
        (["--image-size", "big"], "invalid int value: 'big'"),
        (["--fine-tune-mode", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_argparse_errors_exit_2(tmp_path, capsys, argv, fragment):
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), *argv]) == 2
    assert fragment in capsys.readouterr().err.splitlines()[-1]


def test_unusable_data_dir_exits_2(tmp_path, capsys):
    write_class_folders(tmp_path / "one", ["cats"], 2)
    assert main(["--data", str(tmp_path / "one"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"train: error: --data {tmp_path / 'one'}: found only one class ('cats'); at least 2 are needed"


def test_config_round_trip_and_command(tmp_path):
    args = build_parser().parse_args(["--data", "d", "--out", "o", "--image-size", "96", "--width", "0.35", "--seed", "7"])
    config = config_from_args(args).validate()
    path = config.save(tmp_path / "config.json")
    assert TrainConfig.load(path) == config
    assert config.to_command() == "python -m train --data d --out o --width 0.35 --image-size 96 --seed 7"
    with pytest.raises(ConfigError, match="unknown options"):
        TrainConfig.from_dict({"data": "d", "out": "o", "colour": 1})

    # The command written into the report repeats the run exactly.
    import shlex

    everything = TrainConfig(data="d", out="o", backbone="mobilenet_v3_small", alpha=0.75, weights="none", epochs=3,
                             fine_tune_epochs=4, fine_tune_layers=12, batch_size=16, labels_from_filename=True,
                             validation_fraction=0.3, learning_rate=0.01, fine_tune_learning_rate=3e-5, dropout=0.1,
                             patience=2, class_weights="on", imbalance_ratio=2.0, fine_tune_mode="full", augment_views=3,
                             strategy="mirrored", name="pets", cache_dir="/tmp/c", workers=2, deterministic=False, verbose=0)
    argv = shlex.split(everything.to_command())[3:]
    assert config_from_args(build_parser().parse_args(argv)) == everything


def test_out_dir_refuses_a_previous_run_unless_resume_or_overwrite(tmp_path):
    from train.output import prepare_out_dir

    out = tmp_path / "out"
    config = TrainConfig(data="d", out=str(out))
    assert prepare_out_dir(config) is False and not out.exists()  # nothing is written by the check
    out.mkdir()
    config.save(out / "config.json")
    assert prepare_out_dir(config) is False  # a run that never finished an epoch is simply replaced
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "state.json").write_text("{}")
    (out / "model.keras").write_text("old")
    (out / "notes.txt").write_text("the user's own file")
    with pytest.raises(ConfigError, match="already holds a training run; pass --resume"):
        prepare_out_dir(config)
    assert prepare_out_dir(TrainConfig(data="d", out=str(out), resume=True, epochs=40)) is True  # more epochs: fine
    with pytest.raises(ConfigError, match=r"trained with other options \(image_size: 224 then, 96 now\)"):
        prepare_out_dir(TrainConfig(data="d", out=str(out), resume=True, image_size=96))
    assert prepare_out_dir(TrainConfig(data="d", out=str(out), overwrite=True)) is False
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        prepare_out_dir(TrainConfig(data="d", out=str(tmp_path / "file")))


def test_old_alpha_flag_still_sets_the_width_with_a_one_line_warning(capsys):
    args = build_parser().parse_args(["--data", "d", "--out", "o", "--alpha", "0.5"])
    assert config_from_args(args).alpha == 0.5
    assert capsys.readouterr().err == (
        "train: warning: --alpha is deprecated and will be removed in the next release; use --width\n")
    build_parser().parse_args(["--data", "d", "--out", "o", "--width", "0.5"])
    assert capsys.readouterr().err == ""


def test_flags_are_generated_from_the_fields_once():
    """Every option field has exactly one flag, with its default, and the resumable list is read from the fields."""
    from dataclasses import fields

    from train.config import RESUMABLE_CHANGES
    from train.options import flag_of, options_of

    parser = build_parser()
    by_dest = {action.dest: action for action in parser._actions if action.option_strings}
    option_fields = dict((f.name, f) for f, _ in options_of(TrainConfig))
    assert set(option_fields) == {f.name for f in fields(TrainConfig)}
    for name, f in option_fields.items():
        assert flag_of(f) == by_dest[name].option_strings[0], name
    defaults = config_from_args(parser.parse_args(["--data", "d", "--out", "o"]))
    assert defaults == TrainConfig(data="d", out="o")
    assert defaults.seed == 0 and defaults.workers == 0 and "one per CPU" in by_dest["workers"].help
    assert RESUMABLE_CHANGES == {"out", "resume", "overwrite", "verbose", "workers", "cache_dir", "epochs",
                                 "fine_tune_epochs", "patience", "strategy", "worker_timeout"}
    assert [group.title for group in parser._action_groups[2:]] == ["data", "model", "fitting (hyper-parameters)", "run"]
