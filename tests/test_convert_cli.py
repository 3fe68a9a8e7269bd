"""``python -m convert`` (and ``edgekit-convert``): the shared CLI conventions.

Every error is one line ``convert: error: …`` on stderr (after argparse's usage lines
for a bad flag), exit status 2; integer flags have typed argument types whose message
names the flag, what is allowed and what was received.
"""

from __future__ import annotations

import sys

import pytest
from conftest import console_script, error_line, run

from convert.cli import main


@pytest.mark.parametrize("entry", ["module", "script"])
def test_missing_training_folder_is_one_error_line_and_exit_2(tmp_path, entry):
    command = [sys.executable, "-m", "convert"] if entry == "module" else [console_script("edgekit-convert")]
    done = run([*command, "export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"convert: error: TRAIN_OUT: {tmp_path / 'nowhere'} is not a directory "
                                   "(expected the output directory of `python -m train`)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("entry", ["module", "script"])
def test_bad_flag_value_names_the_flag_and_exits_2(tmp_path, entry):
    command = [sys.executable, "-m", "convert"] if entry == "module" else [console_script("edgekit-convert")]
    done = run([*command, "export", str(tmp_path), "--out", str(tmp_path / "out"), "--calibration-size", "0"], tmp_path)
    assert done.returncode == 2
    assert error_line(done) == "convert: error: argument --calibration-size: must be a positive integer, received 0"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["export", "T", "--out", "O", "--seed", "-3"], "argument --seed: must be an integer >= 0, received -3"),
        (["export", "T", "--out", "O", "--diagnose-photos", "many"],
         "argument --diagnose-photos: must be a positive integer, received 'many'"),
        (["benchmark", "m.tflite", "--runs", "0"], "argument --runs: must be a positive integer, received 0"),
        (["benchmark", "m.tflite", "--warmup", "-1"], "argument --warmup: must be an integer >= 0, received -1"),
        (["benchmark", "m.tflite", "--limit", "0"], "argument --limit: must be a positive integer, received 0"),
        (["benchmark", "m.tflite", "--threads", "1,0"],
         "argument --threads: must be comma-separated thread counts from 1 to 64, received '1,0'"),
        (["shrink", "m.tflite"], "invalid choice: 'shrink'"),
    ],
)
def test_typed_flags_refuse_bad_values_in_process(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("convert: error: ") and expected in err[-1]


@pytest.mark.parametrize("word", ["export", "benchmark", "evaluate", "gate-device"])
def test_each_job_word_has_its_own_arguments(word, capsys):
    assert main([word, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m convert {word} ")


def test_an_unknown_job_word_is_a_usage_error_naming_the_jobs(capsys):
    assert main(["compress", "runs/pets"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("convert: error: argument {export,benchmark,evaluate,gate-device}: invalid choice: 'compress'"), err


def test_a_job_error_is_one_line_with_the_error_s_own_exit_status(tmp_path, capsys):
    """convert's main maps errors through the kit's one table: an unusable input is 2, with no traceback."""
    assert main(["benchmark", str(tmp_path / "missing"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convert: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
