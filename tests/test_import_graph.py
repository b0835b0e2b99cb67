"""The house: no import circle among the modules of src/sparkify (a lower module never imports a higher one, not
even inside a function or for type checking; a circle found names its modules), and no Python file of src/ or
benchmarks/ longer than a newcomer reads in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "src" / "sparkify"
# A file a newcomer reads in one sitting.
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py", known)


def imports_in(source: str, module: str, is_package: bool, known: dict[str, Path]) -> set[str]:
    """The project's modules a module's source imports, anywhere in it: ``from a import b`` counts as a.b where
    that is a module, else as a. (A submodule's implicit import of its package is not counted: it runs no code of
    the importer's.)"""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known} - {module}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a path through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def test_no_import_circle_in_the_package():
    assert circles(graph()) == []


def test_the_check_finds_a_circle_through_a_function_level_import():
    known = modules()
    edges = graph()
    # As it was: the module that runs dbt imported the Cosmos configuration, which is built on it.
    source = "def run_dbt():\n    from sparkify.dbt import dbt_task_group\n"
    edges["sparkify.dbt_run"] = imports_in(source, "sparkify.dbt_run", False, known)
    assert edges["sparkify.dbt_run"] == {"sparkify.dbt"}
    assert ["sparkify.dbt", "sparkify.dbt_run"] in circles(edges)
    # And a relative import, for type checking only, counts as well.
    source = "if TYPE_CHECKING:\n    from ..settings import Settings\n    from . import readers\n"
    assert imports_in(source, "sparkify.warehouses", True, known) == {
        "sparkify.settings",
        "sparkify.warehouses.readers",
    }


def test_every_python_file_reads_in_one_sitting():
    files = [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]
    long = {
        path.relative_to(REPO).as_posix(): lines
        for path in files
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"over {MAX_LINES} lines: split by what each part holds"
