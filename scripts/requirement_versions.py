"""Print the installed version of every requirement pyproject.toml declares (its dependencies and
every extra's), on one line; run by scripts/test and scripts/test-lowest with the venv's Python.

    python scripts/requirement_versions.py                  # print them
    python scripts/requirement_versions.py --lower-bounds   # and fail unless each one is
                                                            # exactly its ">=" bound

Requirements whose environment marker excludes this Python (tomli on 3.11+) are listed apart.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli, a dev dependency there
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements() -> tuple[str, list[Requirement]]:
    """The project's name and its requirements: dependencies, then each extra's, in order."""
    with PYPROJECT.open("rb") as f:
        project = tomllib.load(f)["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    ours = canonicalize_name(project["name"])
    return ours, [r for r in map(Requirement, lines) if canonicalize_name(r.name) != ours]


def raised_by(name: str, have: Version, ours: str) -> str:
    """Which installed distributions ask for ``have`` or more of ``name``: why a resolver went
    above the bound."""
    found = []
    for dist in distributions():
        if canonicalize_name(dist.metadata["Name"]) == ours:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if canonicalize_name(req.name) != name or (req.marker and not req.marker.evaluate()):
                continue
            floors = [Version(s.version) for s in req.specifier if s.operator in (">=", ">", "==")]
            if floors and max(floors) == have:
                found.append(f"{dist.metadata['Name']} {dist.version} requires {req}")
    return "; ".join(found) or "nothing installed asks for more: a venv left from another run?"


def main(check_lower_bounds: bool) -> int:
    ours, reqs = requirements()
    seen: dict[str, Version] = {}
    skipped: list[str] = []
    bad: list[str] = []
    for req in reqs:
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate():
            skipped.append(str(req))
            continue
        try:
            have = Version(distribution(name).version)
        except PackageNotFoundError:
            bad.append(f"{req}: not installed")
            continue
        seen[name] = have
        if not check_lower_bounds:
            continue
        bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
        if len(bounds) != 1:
            bad.append(f"{req}: needs exactly one '>=' lower bound")
        elif have != bounds[0]:
            bad.append(
                f"{name}: installed {have}, bound {bounds[0]} ({raised_by(name, have, ours)})"
            )
    print("    " + " ".join(f"{n}=={v}" for n, v in seen.items()))
    if skipped:
        print(f"    not for Python {sys.version.split()[0]}: " + ", ".join(skipped))
    if bad and check_lower_bounds:
        print(
            "installed versions differ from the lower bounds in pyproject.toml (raise a bound "
            "to the version installed once the suite passes there):\n  " + "\n  ".join(bad),
            file=sys.stderr,
        )
        return 1
    if bad:
        print("not installed:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main("--lower-bounds" in sys.argv[1:]))
