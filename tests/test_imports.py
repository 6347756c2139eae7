"""The package's import graph: no cycles, and the engine and model files keep to their layers.

The graph is read from the source (``ast``): an edge a → b for every module-level ``import`` or
``from … import`` in module a of an nnmath module b, also inside ``if``/``try``/``with`` blocks.
Imports inside a function or method are lazy (they run when called, after every module has
loaded) and do not count; neither do those under ``if TYPE_CHECKING:``, which never run. Importing
``nnmath.x.y`` also runs the package ``nnmath.x`` first, an edge too unless the importer is inside
it (then the package is already loading: that is how a package's ``__init__`` imports its parts).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nnmath

PACKAGE = Path(nnmath.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def module_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module loads: at the top level or inside an
    ``if``, ``try`` or ``with`` block, never inside a function or a class body's methods."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and type_checking(node.test):
            found += module_level(node.orelse)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    found += module_level(
                        child.body if isinstance(child, ast.ExceptHandler) else [child]
                    )
    return found


def type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``: a block only a type checker reads."""
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def known(name: str) -> str | None:
    """The nnmath module that an imported name refers to (``nnmath.x.f`` → ``nnmath.x``)."""
    while name and name not in SOURCES:
        name = name.rpartition(".")[0]
    return name or None


def targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The nnmath modules an import statement in ``module`` loads: the modules it names (for
    ``from P import name``, P itself when ``name`` is not a module of P), and the packages they
    are in, unless ``module`` is inside them too."""
    if isinstance(node, ast.Import):
        named = [known(alias.name) for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from .x import y, from . import y
            package = module if SOURCES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        named = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in SOURCES else known(base)
            for alias in node.names
        ]
    found = {target for target in named if target is not None and target != module}
    for target in list(found):
        package = target.rpartition(".")[0]
        while package and not inside(module, package):  # importing a.b.c runs a and a.b first
            found.add(package)
            package = package.rpartition(".")[0]
    return found


def inside(module: str, package: str) -> bool:
    """``module`` is ``package`` or one of its parts."""
    return module == package or module.startswith(package + ".")


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in SOURCES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = set().union(*(targets(module, node) for node in module_level(tree.body)))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_through(graph, set(component)) for component in components]


def cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError("a strongly connected component without a cycle")  # pragma: no cover


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing ``start`` loads (at module level)."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


GRAPH = import_graph()


def test_the_graph_sees_the_package() -> None:
    assert "nnmath.training" in GRAPH and "nnmath.derivation.typeset" in GRAPH
    assert "nnmath.network" in GRAPH["nnmath.training"]
    assert {"nnmath.datasets.stream", "nnmath.datasets"} <= GRAPH["nnmath.training"]


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(GRAPH)
    assert not found, "import cycles (module-level imports):\n" + "\n".join(
        " → ".join(cycle) for cycle in found
    )


ENGINE = ("nnmath.activations", "nnmath.layers", "nnmath.losses", "nnmath.network")
ABOVE_THE_ENGINE = ("nnmath.training", "nnmath.derivation", "nnmath.cli")


@pytest.mark.parametrize("module", [*ENGINE, "nnmath.modelfile"])
def test_the_engine_and_model_files_stay_below_training(module: str) -> None:
    forbidden = ("nnmath.training",) if module == "nnmath.modelfile" else ABOVE_THE_ENGINE
    loaded = reaches(GRAPH, module)
    wrong = sorted(m for m in loaded if m.startswith(forbidden))
    assert not wrong, f"{module} imports (directly or through others) {', '.join(wrong)}"


def test_the_cycle_finder_names_a_cycle_and_ignores_lazy_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse(
        "import os\n"
        "from nnmath import layers\n"
        "from nnmath.datasets.stream import StreamRows\n"
        "if True:\n    import nnmath.losses\n"
        "if TYPE_CHECKING:\n    import nnmath.cli\n"
        "def f():\n    import nnmath.training\n"
    )
    loaded = set().union(*(targets("nnmath.network", n) for n in module_level(tree.body)))
    assert loaded == {"nnmath.layers", "nnmath.datasets.stream", "nnmath.datasets", "nnmath.losses"}
    # a part of a package that reads a name of the package's __init__ depends on it
    reads_init = ast.parse("from nnmath.sklearn import MLPClassifier\n").body[0]
    assert targets("nnmath.sklearn.engine", reads_init) == {"nnmath.sklearn"}
