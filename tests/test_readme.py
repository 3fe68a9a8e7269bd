"""The README's Python example runs as written (from the repository root, on a generated photo)."""

from __future__ import annotations

import json
import re

from conftest import REPO, draw_photo


def test_the_readme_python_example_runs(tmp_path, capsys, monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README front page has one Python example"
    example = blocks[0]
    assert "door.jpg" in example
    draw_photo((200, 120, 60), size=(320, 240)).save(tmp_path / "door.jpg")
    # The example's model path is relative to the repository root, its photo to where the user is.
    example = example.replace('"models/', f'"{REPO.as_posix()}/models/')
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {"__name__": "readme"})
    label, score, detected = capsys.readouterr().out.split()
    # The photo is a coloured shape on noise: no cat, no dog, so the shipped model answers its background
    # label; the runner's command line, an independent path (its batch decoder), gives the same answer.
    assert (label, detected) == ("other", "False")
    from edge_runner.cli import runner

    assert runner.main([str(tmp_path / "door.jpg"), "--model", str(REPO / "models" / "cats_dogs_int8.tflite"),
                        "--json", "--workers", "1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (label, score, detected) == (record["label"], f"{record['score']:.2f}", str(record["detected"]))
