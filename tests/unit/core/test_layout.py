"""The core's imports point one way: no circle, and the lower layers never import the upper.

Every import counts, at the top of a module, under ``TYPE_CHECKING`` or inside a function: a
circle hidden in a lazy import is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import runcrate_integrations

CORE = Path(runcrate_integrations.__file__).parent
PACKAGE = "runcrate_integrations"

#: What each lower layer may never import (a prefix matches the module and everything below it).
LOWER = {
    "errors": ("chat", "media", "usage", "config", "catalog", "embeddings", "billing", "tokens"),
    "net.headers": ("",),  # read by errors and the loop alike, it imports nothing of the core
    "config": ("chat", "media", "usage", "net", "catalog", "embeddings", "billing"),
    "net": ("chat", "media", "usage", "catalog", "embeddings", "billing", "tokens"),
    "usage": ("chat", "media", "net", "catalog", "embeddings", "billing", "config"),
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for path in CORE.rglob("*.py"):
        parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    here = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        here = here[: len(here) - (node.level - 1)]
        target = ".".join([*here, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    return [f"{target}.{alias.name}" for alias in node.names] + [target]


def import_graph() -> dict[str, set[str]]:
    """Each core module and the core modules it imports (submodule names resolved)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imports(module, is_package, node)
            # ``from .x import y``: y is a submodule if one of that name exists, else x itself.
            for name in names[:-1] if isinstance(node, ast.ImportFrom) else names:
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in modules and name != module:
                    deps.add(name)
        graph[module] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected sets of two or more modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_imports_and_the_circles_they_make() -> None:
    graph = import_graph()
    # A lazy import inside a function counts: catalog reads through the transport.
    assert f"{PACKAGE}.net.transport" in graph[f"{PACKAGE}.catalog"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_among_the_cores_modules() -> None:
    assert circles(import_graph()) == []


@pytest.mark.parametrize("layer", sorted(LOWER))
def test_a_lower_layer_never_imports_an_upper_one(layer: str) -> None:
    graph = import_graph()
    base = f"{PACKAGE}.{layer}"
    members = [m for m in graph if m == base or m.startswith(base + ".")]
    assert members
    banned = tuple(f"{PACKAGE}.{upper}".rstrip(".") for upper in LOWER[layer])
    wrong = {member: sorted(d for d in graph[member] if d.startswith(banned)) for member in members}
    assert {m: deps for m, deps in wrong.items() if deps} == {}
