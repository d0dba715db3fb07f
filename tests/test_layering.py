"""The package's layering: no import cycle between subpackages (or top-level modules), counting the imports that run
when a module is imported (not those inside functions or under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import sluice

ROOT = Path(sluice.__file__).parent


def unit(module: str) -> str:
    """`sluice.engine.run` → `engine`; a top-level module is its own unit (`sluice.gateway` → `gateway`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sluice"


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def eager_imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in tree.body:  # module level only: imports inside functions run later, on use
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        for child in [node, *(ast.walk(node) if isinstance(node, ast.Try | ast.If) else ())]:
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
    return {name for name in found if name == "sluice" or name.startswith("sluice.")}


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = unit(module_name(path))
        for target in eager_imports(ast.parse(path.read_text())):
            if unit(target) not in (source, "sluice"):
                graph[source].add(unit(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_subpackages() -> None:
    assert cycles(unit_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
