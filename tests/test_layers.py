"""The import graph of src/hepfm: no cycle, and no arrow up across the layers.

Read with :mod:`ast` (nothing is imported), counting imports inside functions too: a lazy
import is still a dependency. Layers, top down: cli, training, analysis, taskdata, samples,
provenance, objectives, hub, models, generate, data (docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"
PACKAGE = SRC / "hepfm"

#: Known arrows to remove in later steps; nothing may be added here (none left).
PENDING: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The hepfm module that `name` (a module or a module attribute) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(pending: bool = False) -> dict[str, set[str]]:
    """``{module: hepfm modules it imports}``, package ``__init__`` files as their package;
    without the :data:`PENDING` arrows unless `pending`."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target.split(".")[0] == "hepfm":
                    dep = _resolve(target, modules)
                    if dep and dep not in (name, "hepfm") and (
                            pending or (name, dep) not in PENDING):
                        deps.add(dep)
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_graph_is_read():
    graph = import_graph(pending=True)
    assert "hepfm.models.foundation" in graph["hepfm.hub"]
    assert "hepfm.data.features" in graph["hepfm.data.graphs"]  # from hepfm.data import x
    assert "hepfm.data.graphs" in graph["hepfm.data.normalization"]  # inside a function
    assert {d for m, d in PENDING} <= set(graph)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(("lower", "upper"), [
    (("hepfm.analysis", "hepfm.models"), ("hepfm.training",)),
    (("hepfm.data", "hepfm.models", "hepfm.training"), ("hepfm.cli",)),
    (("hepfm.models",), ("hepfm.hub",)),
])
def test_no_arrow_up(lower, upper):
    up = sorted(f"{m} -> {d}" for m, deps in import_graph().items() if _in(m, *lower)
                for d in deps if _in(d, *upper))
    assert not up, up


#: The layers of docs/architecture.md, top first.
LAYERS = ("hepfm.cli", "hepfm.exporting", "hepfm.inference", "hepfm.training",
          "hepfm.analysis", "hepfm.taskdata", "hepfm.samples", "hepfm.provenance",
          "hepfm.objectives", "hepfm.hub", "hepfm.models", "hepfm.generate", "hepfm.data",
          "hepfm.tasks", "hepfm.processes", "hepfm.pretrained", "hepfm.devices",
          "hepfm.defaults", "hepfm.progress", "hepfm.atomic", "hepfm.errors")


def test_every_module_has_a_layer():
    """A new module must be placed in the documented layers (here and in the docs)."""
    def placed(module: str) -> bool:
        return module == "hepfm" or any(_in(module, p) for p in LAYERS)

    assert [m for m in _modules() if not placed(m)] == []


def test_layers_in_the_documented_order():
    def layer(module: str) -> int | None:
        return next((k for k, p in enumerate(LAYERS) if _in(module, p)), None)

    up = sorted(f"{m} -> {d}" for m, deps in import_graph().items() for d in deps
                if None not in (layer(m), layer(d)) and layer(d) < layer(m))
    assert not up, up
