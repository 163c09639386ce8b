"""The distribution depends on what it imports, nothing more, and every requirement has the
lower bound that scripts/test-lowest installs (uv's lowest-direct resolution) and checks."""

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
    runtime = [
        *project["dependencies"],
        *extras["langchain"],
        *extras["llama-index"],  # type: ignore[misc]  # lists
        *extras["progress"],
    ]
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


def test_every_requirement_has_one_lower_bound() -> None:
    # scripts/test-lowest installs each direct requirement at its ">=" and checks that it got
    # exactly that; a requirement without one would be installed at whatever is oldest.
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    lines = [*project["dependencies"], *(r for extra in extras.values() for r in extra)]  # type: ignore[misc]  # lists
    missing = [
        r
        for r in lines
        if _name(r) != "runcrate-integrations" and len(re.findall(r">=\s*[0-9]", r)) != 1
    ]
    assert not missing, f"requirements without exactly one '>=' lower bound: {missing}"
