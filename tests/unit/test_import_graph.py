"""`sweedle_core` has no import cycles, counting every import a module spells.

Imports inside functions and under ``if TYPE_CHECKING:`` count too: they are how a cycle is
usually hidden rather than removed, and they still tie the two modules' designs together.
The graph is read from the source with `ast`, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "sweedle_core"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every dotted name ``module`` imports, wherever in the file the import sits; for
    ``from a import b``, both ``a.b`` (in case ``b`` is a module) and ``a``."""
    # The package a relative import is resolved against.
    here = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package under ``root`` that it imports."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {name for name in names if name in files and name != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# Read by every layer: importing nothing of the project, they can never close a cycle.
LEAVES = ["sweedle_core.jobs.states", "sweedle_core.idempotency"]


def test_the_graph_sees_imports_of_every_kind():
    graph = import_graph(PACKAGE_DIR)
    # A module-level import, and a submodule named in a from-import.
    assert "sweedle_core.db.models" in graph["sweedle_core.db.store"]
    assert "sweedle_core.db" not in graph["sweedle_core.db.store"]  # a package, not a module
    # An import inside a function (the S3 backend is loaded only when chosen).
    assert "sweedle_core.storage.s3" in graph["sweedle_core.storage"]
    # An import for type checking only.
    assert "sweedle_core.db.store" in graph["sweedle_core.webhooks.dispatcher"]


def test_a_cycle_hidden_in_a_function_or_a_relative_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg.c import g\n")
    (package / "c.py").write_text("from .sub.a import x\n")
    (package / "d.py").write_text("import pkg.c\n")

    assert cycles(import_graph(package)) == [["pkg.c", "pkg.sub.a", "pkg.sub.b"]]


def test_sweedle_core_has_no_import_cycle():
    found = cycles(import_graph(PACKAGE_DIR))
    assert not found, "import cycles in sweedle_core:\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


def test_the_shared_vocabulary_imports_nothing_of_the_project():
    graph = import_graph(PACKAGE_DIR)
    assert {leaf: graph[leaf] for leaf in LEAVES} == dict.fromkeys(LEAVES, set())
