"""The packages' import graph, read from the source (ast): no cycles, and dependencies pointing one way.

edgekit (the main job) -> train -> convert -> edge_runner is allowed; nothing imports
edgekit; edge_runner never imports train or convert (at any level) nor TensorFlow/Keras at module level (a Pi has neither);
convert never imports train. Inside edge_runner the sub-packages are layered as their
``__init__`` docstrings say (``LAYERS``): ``common`` at the bottom imports nothing of the kit,
``cli`` at the top is imported only by ``edge_runner.__main__``. Inside convert, each sub-package imports only
what its docstring says (``CONVERT_ROOMS``) and its rooms (sub-packages and top-level modules) import one way.
Every package folder holds at most 15 modules, every hand-written module at most 350 lines.

Edges include imports inside functions (a lazy import that closes a loop is
still a loop for the reader) and imports under ``if TYPE_CHECKING:`` (a type a
reader follows is an edge too; they count as not at module level).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGES = ("edge_runner", "train", "convert", "edgekit")

NO_TENSORFLOW_ON_A_DEVICE = ("tensorflow", "keras", "tf_keras")


def module_files() -> dict[str, Path]:
    """``{"edge_runner.deploy.device_check": path, "edge_runner": .../__init__.py, …}`` for the first-party packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


MODULES = module_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for every import under ``tree``, relative ones resolved."""
    found: list[tuple[str, bool]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for node in child.body:  # an edge, but never executed at run time
                    visit(ast.Module(body=[node], type_ignores=[]), False)
                for other in child.orelse:
                    visit(other, top)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base[: len(base) - (child.level - 1)]
                    target = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                submodules = [f"{target}.{alias.name}" for alias in child.names if f"{target}.{alias.name}" in MODULES]
                if len(submodules) == len(child.names):  # `from . import server`: only the module edge_runner.web.server
                    found.extend((name, top) for name in submodules)
                else:
                    found.append((target, top))
            in_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not in_function)

    visit(tree, True)
    return found


def import_graph() -> dict[str, list[tuple[str, bool]]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = _imports(tree, module, path.name == "__init__.py")
    return graph


GRAPH = import_graph()


def _first_party(target: str, known) -> str | None:
    """The module of ``known`` that ``target`` names (or lies in), else None."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def find_cycle(graph: dict[str, list[tuple[str, bool]]], known_edges=frozenset()) -> list[str] | None:
    """One import cycle among the modules of ``graph``, as ``[a, b, …, a]``, or None; ``known_edges`` are left out."""
    edges = {
        module: sorted(
            {
                m for t, _ in targets
                if (m := _first_party(t, graph)) is not None and m != module and (module, m) not in known_edges
            }
        )
        for module, targets in graph.items()
    }
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in edges[module]:
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := walk(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := walk(module)):
            return cycle
    return None


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_graph_is_read_from_every_module():
    assert {"edge_runner.cli.runner", "edge_runner.common.console", "edge_runner.core.loading", "edge_runner.deploy.device_check"} <= set(MODULES)
    assert ("edge_runner.common.console", True) in GRAPH["edge_runner.cli.runner"]
    assert ("edge_runner.cli.runner", True) in GRAPH["edge_runner.__main__"]


def test_the_cycle_finder_finds_a_lazy_cycle():
    """The checker itself: a loop closed by an import inside a function is reported."""
    fake = {
        "edge_runner.a": [("edge_runner.b", True)],
        "edge_runner.b": [("edge_runner.c", False)],
        "edge_runner.c": [("edge_runner.a", False), ("numpy", True)],
    }
    assert find_cycle(fake) == ["edge_runner.a", "edge_runner.b", "edge_runner.c", "edge_runner.a"]
    assert find_cycle({**fake, "edge_runner.c": [("numpy", True)]}) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    graph = {module: targets for module, targets in GRAPH.items() if _package(module) == package}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_across_packages():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_edge_runner_never_imports_train_convert_or_tensorflow_at_module_level():
    wrong = []
    for module, targets in GRAPH.items():
        if _package(module) != "edge_runner":
            continue
        for target, top in targets:
            root = target.split(".", 1)[0]
            if root in ("train", "convert") or (top and root in NO_TENSORFLOW_ON_A_DEVICE):
                wrong.append(f"{module} imports {target}{' at module level' if top else ''}")
    assert not wrong, wrong


def imports_of(graph: dict[str, list[tuple[str, bool]]], root: str) -> list[str]:
    """``"module imports target"`` for every import of package ``root`` by a module outside it."""
    return [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if _package(module) != root
        for target, _ in targets
        if target.split(".", 1)[0] == root
    ]


def test_nothing_imports_the_main_job():
    """edgekit sits on top: train, convert and edge_runner never import it (the checker is checked on a fake graph)."""
    fake = {"edgekit.pipeline": [("train", True)], "convert.cli": [("edgekit.summary", False)]}
    assert imports_of(fake, "edgekit") == ["convert.cli imports edgekit.summary"]
    assert "edgekit.pipeline" in MODULES and ("edge_runner.common.run_layout", True) in GRAPH["edgekit.pipeline"]
    wrong = imports_of(GRAPH, "edgekit")
    assert not wrong, wrong


def wrong_imports(importer, imported) -> list[str]:
    """``"module imports target"`` for every edge whose module satisfies ``importer`` and target ``imported``."""
    return [f"{module} imports {target}" for module, targets in GRAPH.items() if importer(module)
            for target, _ in targets if imported(target)]


def test_convert_never_imports_train():
    wrong = wrong_imports(lambda module: _package(module) == "convert", lambda target: _package(target) == "train")
    assert not wrong, wrong


def test_type_checking_imports_are_edges():
    """``if TYPE_CHECKING: from .b import T`` is an edge (not at module level), so a cycle through it is found."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import T\n")
    edges = _imports(tree, "edge_runner.a", False)
    assert ("edge_runner.b", False) in edges
    fake = {"edge_runner.a": edges, "edge_runner.b": [("edge_runner.a", True)]}
    assert find_cycle(fake) == ["edge_runner.a", "edge_runner.b", "edge_runner.a"]


# What each sub-package of edge_runner may import (its __init__ docstring says the same).
LAYERS = {
    "common": set(),
    "core": {"common"},
    "explain": {"core", "common"},
    "review": {"core", "common"},
    "watcher": {"review", "core", "common"},
    "webapp": {"core", "common"},
    "web": {"webapp", "watcher", "review", "explain", "core", "common"},
    "cli": {"web", "webapp", "watcher", "review", "explain", "core", "common"},
    "deploy": {"watcher", "core", "common"},  # the device check: runtime, model and camera
}


def _layer(module: str) -> str | None:
    """``"core"`` for ``edge_runner.core.model``; None for edge_runner's own ``__init__``/``__main__`` and other packages."""
    parts = module.split(".")
    return parts[1] if parts[0] == "edge_runner" and len(parts) > 2 or module in (
        f"edge_runner.{name}" for name in LAYERS) else None


def test_edge_runner_sub_packages_import_only_the_layers_below():
    assert {_layer(m) for m in MODULES if _package(m) == "edge_runner"} - {None} <= set(LAYERS), (
        "a new sub-package of edge_runner: add it to LAYERS with what it may import")
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer is None:
            continue
        for target, _ in targets:
            if target.split(".", 1)[0] == "edge_runner":
                other = _layer(_first_party(target, MODULES) or target)
                if other is not None and other != layer and other not in LAYERS[layer]:
                    wrong.append(f"{module} ({layer}) imports {target} ({other})")
    assert not wrong, wrong


def test_kit_wide_helpers_import_nothing_else_of_the_kit():
    wrong = wrong_imports(lambda module: _layer(module) == "common", lambda target: _package(target) in PACKAGES
                          and _layer(_first_party(target, MODULES) or target) != "common")
    assert not wrong, wrong


def test_only_main_imports_the_runner_command_line():
    """serve, watch and device_check share edge_runner.core.loading instead of importing the runner's CLI."""
    wrong = [
        module
        for module, targets in GRAPH.items()
        if _package(module) == "edge_runner" and _layer(module) != "cli" and module != "edge_runner.__main__"
        and any(target.startswith("edge_runner.cli") for target, _ in targets)
    ]
    assert not wrong, f"these import edge_runner.cli: {wrong}"


# What each sub-package of convert may import of convert (its __init__ docstring says the same); every one may
# import edge_runner. A top-level module of convert is a room of its own ("variants" for convert.variants).
CONVERT_ROOMS = {
    "schema": set(),
    "tflite": {"schema"},
    "gate": set(),
    "benchmark": {"errors", "photos", "gate"},
    "evaluation": {"errors", "photos", "thresholds", "source", "gate"},
    "int8": {"errors", "photos", "quantize", "results", "variants", "gate"},
    "device_gate": {"errors", "photos", "source", "export", "results", "gate", "evaluation"},
}
# Who may import a sub-package, inside convert (outside: train and edgekit may import any of convert).
CONVERT_IMPORTERS = {"int8": {"export", "report"}, "benchmark": {"cli"}, "evaluation": {"cli", "device_gate"},
                     "device_gate": {"cli"}}


def _convert_room(module: str) -> str | None:
    """``"gate"`` for ``convert.gate.accuracy``, ``"variants"`` for ``convert.variants``; None for ``convert`` itself
    and for other packages."""
    parts = module.split(".")
    return parts[1] if parts[0] == "convert" and len(parts) > 1 else None


def convert_room_graph() -> dict[str, list[tuple[str, bool]]]:
    """convert's rooms and the rooms each imports (the package ``__init__``, the version, left aside)."""
    rooms: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        if (room := _convert_room(module)) is None:
            continue
        found = rooms.setdefault(room, set())
        for target, _ in targets:
            other = _convert_room(_first_party(target, MODULES) or target)
            if other is not None and other != room:
                found.add(other)
    return {room: [(other, True) for other in sorted(targets)] for room, targets in rooms.items()}


def test_convert_sub_packages_import_only_what_their_docstring_says():
    sub_packages = {p.parent.name for p in (REPO / "convert").glob("*/__init__.py")}
    assert sub_packages == set(CONVERT_ROOMS), "a new sub-package of convert: add it to CONVERT_ROOMS"
    rooms = convert_room_graph()
    assert set(rooms["evaluation"]) == {("errors", True), ("photos", True), ("thresholds", True), ("source", True),
                                        ("gate", True)}  # the graph is read
    wrong = [f"convert.{room} imports convert.{other}" for room, allowed in CONVERT_ROOMS.items()
             for other, _ in rooms[room] if other not in allowed]
    wrong += [f"convert.{room} imports convert.{other}" for room, targets in rooms.items()
              for other, _ in targets if other in CONVERT_IMPORTERS and room not in CONVERT_IMPORTERS[other]]
    assert not wrong, wrong


def test_convert_rooms_import_one_way():
    """No cycle between convert's rooms: a sub-package and a top-level module importing each other is one."""
    assert find_cycle({"gate": [("variants", True)], "variants": [("gate", True)]}) == ["gate", "variants", "gate"]
    cycle = find_cycle(convert_room_graph())
    assert cycle is None, "import cycle between convert's rooms: " + " -> ".join(cycle or [])


def test_every_convert_sub_package_says_what_it_owns_and_may_import_and_goes_into_the_wheel():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    assert {f"convert.{name}" for name in CONVERT_ROOMS} <= listed
    for name in set(CONVERT_ROOMS) - {"schema"}:  # schema/ holds generated code only
        doc = ast.get_docstring(ast.parse((REPO / "convert" / name / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Owns" in doc and "May import" in doc, name


@pytest.mark.parametrize("folder", sorted({path.parent.relative_to(REPO) for path in MODULES.values()}), ids=str)
def test_package_folders_hold_at_most_15_modules(folder):
    folder = REPO / folder
    modules = [p for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) <= 15, f"{folder.relative_to(REPO)}: {len(modules)} modules; split it into sub-packages"


def test_hand_written_modules_are_at_most_350_lines():
    long = {str(path.relative_to(REPO)): n for path in MODULES.values()
            if not path.name.endswith("_generated.py") and (n := len(path.read_text(encoding="utf-8").splitlines())) > 350}
    assert not long, f"modules over 350 lines: {long}"
