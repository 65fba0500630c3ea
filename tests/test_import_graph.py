"""The import graph of ``simulator/``: no cycles between modules, and no import up the layers.

Every ``import`` and ``from ... import`` counts, those inside functions included; only the bodies of
``if TYPE_CHECKING:`` blocks are left out (they never run). The layers, lowest first, are documented
in docs/reference/architecture.md; a module may import its own package and any package of a lower layer.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "simulator"

#: Layer of each package (or top-level module) of ``simulator``; imports go to lower numbers only,
#: or within the same package. Packages of one layer are siblings and do not import each other.
LAYERS: dict[str, int] = {
    "errors": 0, "paths": 0, "schema": 0, "native": 0,
    "inputs": 1, "tables": 1,
    "catalog": 2, "workload": 2,
    "config": 3,
    "perf": 4,
    "calibration": 5, "engine": 5,
    "metrics": 6, "fleet": 6,
    "planning": 7,
    "commands": 8, "dashboard": 8,
    "cli": 9, "__main__": 10, "": 10,
}

Graph = Mapping[str, Iterable[str]]


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root`` (packages by ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes_of(child))
            continue
        yield from _import_nodes_of(node)


def _import_nodes_of(node: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _import_nodes(node)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = []
    for name in names:
        while name and name not in known:   # a name inside a module -> that module
            name = name.rpartition(".")[0]
        if name and name != module:
            out.append(name)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of the same package tree it imports (anywhere but ``if TYPE_CHECKING:``)."""
    files = module_files(root)
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {t for node in _import_nodes(tree)
                         for t in _targets(module, path.name == "__init__.py", node, known)}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> tuple[str, int]:
    """The package (or top-level module) of ``simulator`` that ``module`` belongs to, and its layer."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: package {top!r} has no layer in LAYERS (add it, and to docs/reference/architecture.md)")
    return top, LAYERS[top]


def upward_imports(graph: Graph) -> list[str]:
    """``a -> b`` for every import from one package into another of the same or a higher layer."""
    bad = []
    for a in sorted(graph):
        pa, la = layer_of(a)
        for b in sorted(graph[a]):
            pb, lb = layer_of(b)
            if pa != pb and lb >= la:
                bad.append(f"{a} ({pa}, layer {la}) -> {b} ({pb}, layer {lb})")
    return bad


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert "simulator.cli" in graph and "simulator.engine.simulate" in graph
    assert "simulator.commands" in graph["simulator.cli"]
    # an import inside a function counts: calibrate_cmd defers the calibration suite
    assert any(t.startswith("simulator.calibration") for t in graph["simulator.commands.calibrate_cmd"])


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_upward_imports():
    assert upward_imports(import_graph()) == []


def test_a_planted_cycle_is_found():
    graph = {"simulator.engine.a": {"simulator.engine.b"}, "simulator.engine.b": {"simulator.engine.c"},
             "simulator.engine.c": {"simulator.engine.a"}, "simulator.perf.d": set()}
    assert cycles(graph) == [["simulator.engine.a", "simulator.engine.b", "simulator.engine.c"]]
    assert cycles({"simulator.x": {"simulator.x"}}) == [["simulator.x"]]


def test_a_planted_cycle_in_real_files_is_found(tmp_path):
    root = tmp_path / "simulator"
    (root / "engine").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "engine" / "__init__.py").write_text("")
    (root / "engine" / "a.py").write_text("from .b import f\n")
    (root / "engine" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from simulator.metrics import m\n"
        "def f():\n    from simulator.engine import a\n")
    (root / "metrics").mkdir()
    (root / "metrics" / "__init__.py").write_text("")
    (root / "metrics" / "m.py").write_text("import simulator.engine.a\n")
    graph = import_graph(root)
    assert graph["simulator.engine.b"] == {"simulator.engine.a"}   # the TYPE_CHECKING import is left out
    assert cycles(graph) == [["simulator.engine.a", "simulator.engine.b"]]
    assert upward_imports(graph) == []
    (root / "engine" / "c.py").write_text("def g():\n    import simulator.metrics.m\n")
    assert upward_imports(import_graph(root)) == [
        "simulator.engine.c (engine, layer 5) -> simulator.metrics.m (metrics, layer 6)"]
