"""The packages of src/jobmaster form layers: no import cycle between them, the runtime never reaches
up to the application object, and the job model knows nothing of stores.

Module-level imports are what Python runs at import time, so they are what can tie packages into a
knot. An import inside a function is a deliberate deferral (the CLI loads the optional bench
commands that way, since the bench builds on the CLI), and one under `TYPE_CHECKING` never runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "jobmaster"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _top_level_imports(tree: ast.Module, *, type_checking: bool) -> Iterator[str]:
    """`jobmaster` modules imported at module level (and under `if TYPE_CHECKING:` if asked)."""
    for node in tree.body:
        nodes: list[ast.stmt] = [node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes = node.body if type_checking else []
        for stmt in nodes:
            if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.module.startswith("jobmaster"):
                yield stmt.module
            elif isinstance(stmt, ast.Import):
                yield from (a.name for a in stmt.names if a.name.startswith("jobmaster"))


def _imports(*, type_checking: bool = False) -> dict[str, set[str]]:
    return {
        _module(path): set(_top_level_imports(ast.parse(path.read_text()), type_checking=type_checking))
        for path in ROOT.rglob("*.py")
    }


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        source = _package(module)
        graph.setdefault(source, set()).update(t for t in map(_package, targets) if t != source)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_packages_import_each_other_without_a_cycle() -> None:
    assert _cycle(_package_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_the_runtime_never_imports_the_application_object() -> None:
    imports = _imports(type_checking=True)
    reaching = sorted(
        m
        for m, targets in imports.items()
        if m.startswith("jobmaster.runtime") and "jobmaster.app" in targets
    )
    assert reaching == []


def test_the_job_model_knows_nothing_of_stores_agents_or_the_runtime() -> None:
    layers = (
        "jobmaster.master",
        "jobmaster.agents",
        "jobmaster.db",
        "jobmaster.runtime",
        "jobmaster.backends",
    )
    imports = _imports(type_checking=True)
    found = sorted(
        f"{module} -> {target}"
        for module, targets in imports.items()
        if module.startswith("jobmaster.jobs")
        for target in targets
        if target.startswith(layers)
    )
    assert found == []
