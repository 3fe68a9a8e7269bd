"""``python -m train`` (and ``edgekit-train``, ``… compare``, ``… explain``): the shared CLI conventions.

Every error is one line ``PROG: error: …`` on stderr (after argparse's usage lines for
a bad flag) and the exit status is 2, as in ``edge_runner.common.console``; the subcommands
are dispatched from one table. Run as real processes: the console script and
``python -m`` are what users type.
"""

from __future__ import annotations

import sys

import pytest
from conftest import console_script, error_line, run

from train.cli import SUBCOMMANDS, main


@pytest.mark.parametrize("entry", ["module", "script"])
def test_missing_data_folder_is_one_error_line_and_exit_2(tmp_path, entry):
    command = [sys.executable, "-m", "train"] if entry == "module" else [console_script("edgekit-train")]
    done = run([*command, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--quiet"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"train: error: --data {tmp_path / 'nowhere'}: no such directory"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--image-size", "big"], "train: error: argument --image-size: invalid int value: 'big'"),
        (["--backbone", "resnet"], "train: error: argument --backbone: invalid choice: 'resnet'"),
    ],
)
def test_bad_flag_value_names_the_flag_and_exits_2(tmp_path, argv, expected):
    done = run([sys.executable, "-m", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *argv], tmp_path)
    assert done.returncode == 2
    assert error_line(done).startswith(expected)


def test_compare_bad_flag_value(tmp_path):
    done = run([sys.executable, "-m", "train", "compare", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                "--epochs", "-1"], tmp_path)
    assert done.returncode == 2
    assert error_line(done) == "train compare: error: argument --epochs: must be an integer >= 0, received -1"
    assert "usage: python -m train compare" in done.stderr


def test_compare_missing_data_folder(tmp_path, capsys):
    code = main(["compare", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--quiet",
                 "--candidates", "baseline:96"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("train compare: error: ") and "nowhere" in err and "\n" not in err


def test_explain_run_without_a_model(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")
    assert main(["explain", str(tmp_path), str(photo), "--out", str(tmp_path / "maps")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"train explain: error: RUN {tmp_path}: model.keras not found (pass the --out directory of `python -m train`)"


def test_subcommands_are_one_table_and_help_exits_0(capsys):
    assert set(SUBCOMMANDS) == {"explain", "compare"}
    for word in SUBCOMMANDS:
        assert main([word, "--help"]) == 0
        assert f"usage: python -m train {word}" in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
    assert "python -m train compare --help" in out and "python -m train explain --help" in out
