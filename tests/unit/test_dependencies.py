"""The distribution depends on what it imports, nothing more, and its lower bounds are the
versions CI tests (scripts/lowest-constraints.txt, installed by scripts/test-lowest)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dev dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate", "llama_index")
# Top-level module -> the distribution that provides it.
DISTRIBUTION = {
    "openai": "openai",
    "httpx2": "httpx2",
    "pydantic": "pydantic",
    "typing_extensions": "typing-extensions",
    "langchain_core": "langchain-core",
    "llama_index": "llama-index-core",
    "llama_index_instrumentation": "llama-index-instrumentation",
    "filetype": "filetype",
    "tqdm": "tqdm",
}
OURS = {"runcrate_integrations", "langchain_runcrate", "llama_index_runcrate"}


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]  # type: ignore[no-any-return]  # a TOML table


def _requirements() -> list[str]:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    runtime = [*project["dependencies"], *extras["langchain"], *extras["llama-index"],  # type: ignore[misc]  # lists
               *extras["progress"]]
    return [str(r) for r in runtime]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match is not None, requirement
    return match.group(0).lower()


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OURS - {"__future__"}


def test_every_import_is_declared_and_every_declaration_imported() -> None:
    imported = _imported_top_levels()
    unknown = imported - set(DISTRIBUTION)
    assert not unknown, f"imported but not mapped to a declared distribution: {unknown}"
    declared = {_name(r) for r in _requirements()}
    assert {DISTRIBUTION[m] for m in imported} == declared


def test_lower_bounds_are_the_versions_ci_tests() -> None:
    bounds = {}
    for requirement in _requirements():
        match = re.search(r">=\s*([0-9][0-9a-zA-Z.]*)", requirement)
        assert match, f"{requirement} has no lower bound"
        bounds[_name(requirement)] = match.group(1)
    pins = {}
    for line in (ROOT / "scripts" / "lowest-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()

    def norm(version: str) -> tuple[int, ...]:
        parts = [int(p) for p in version.split(".")]
        while parts and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    assert {k: norm(v) for k, v in pins.items()} == {k: norm(v) for k, v in bounds.items()}
