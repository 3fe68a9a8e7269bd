"""train/'s rooms: small modules, small folders, sub-packages that say what they own and import one way.

The graph counts every import: module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

TRAIN = REPO / "train"
SUB_PACKAGES = sorted(p.name for p in TRAIN.iterdir() if (p / "__init__.py").is_file())
MAX_LINES, MAX_MODULES = 350, 15


def room_of(module: str) -> str:
    """``train.data.split`` → ``train.data``; a top-level module is its own room (``train.config``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or parts[-1] in SUB_PACKAGES else module


def imports_of(path: Path) -> set[str]:
    """The ``train`` modules ``path`` imports, relative imports resolved."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (REPO / candidate.replace(".", "/")).with_suffix(".py").is_file() else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "train"}


def test_modules_are_short_and_folders_small():
    long = {str(p.relative_to(REPO)): n for p in TRAIN.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
    for folder in [TRAIN, *(TRAIN / name for name in SUB_PACKAGES)]:
        assert len(list(folder.glob("*.py"))) <= MAX_MODULES, folder


def test_every_sub_package_says_what_it_owns_and_may_import_and_goes_into_the_wheel():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    assert {"data", "model", "fitting", "report", "comparison", "explanations"} <= set(SUB_PACKAGES)
    assert {f"train.{name}" for name in SUB_PACKAGES} <= listed
    for name in SUB_PACKAGES:
        doc = ast.get_docstring(ast.parse((TRAIN / name / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Owns" in doc and "May import" in doc, name


def test_rooms_import_one_way():
    """No cycle between train's rooms (sub-packages and top-level modules), the facade ``train`` left aside."""
    graph: dict[str, set[str]] = {}
    for path in TRAIN.rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module == "train":
            continue
        here = room_of(module)
        graph.setdefault(here, set()).update(
            room_of(t) for t in imports_of(path) if t != "train" and room_of(t) != here)
    done: set[str] = set()

    def visit(room: str, trail: tuple[str, ...]) -> None:
        assert room not in trail, f"import cycle: {' -> '.join(trail[trail.index(room):] + (room,))}"
        if room in done:
            return
        for target in sorted(graph.get(room, ())):
            visit(target, trail + (room,))
        done.add(room)

    for room in sorted(graph):
        visit(room, ())
    # The registries the flags are checked against (backbones, camera degradations) sit below the configuration.
    assert graph["train.config"] <= {"train.backbones", "train.camera", "train.errors", "train.options", "train.result"}
    assert graph.get("train.camera", set()) <= {"train.errors"}
    assert not graph.get("train.result")  # TrainResult: a leaf
