"""Build every distribution of this repository (wheel and sdist) into ``dist/``.

    python dists/build.py [--out DIR]          # or: bash scripts/build-dists

One file per distribution, ``dists/<name>.toml``, says which package folders it ships and what it
depends on. Everything else comes from one place: the version from
``runcrate_integrations/_version.py``, the rest (authors, license, Python, every requirement's
bounds) from the top-level ``pyproject.toml``. Distributions of this release depend on each
other at exactly this version.

For each distribution the folders are copied into a staged project (``build/dists/<name>/``)
with a generated ``pyproject.toml`` and a stamp, ``<package>/_distribution.py``: a copy of
``runcrate_integrations/_installation.py`` (the check each package runs at import) with the
distribution's name and version appended. The
sdist is built there and the wheel from the unpacked sdist, so a published sdist is known to
build. Hatchling runs in this process through its PEP 517 hooks: no isolation, no network.

Refused before anything is built: a file under the top-level packages that no distribution, or
two, would ship; a requirement that is neither a distribution of this release nor a table of
``pyproject.toml`` (bounds live there, once). A distribution none of whose folders exist yet is
skipped with a note, and dropped from the extras that name it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (in the dev extra)
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]  # 3.10 only

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "dists"
VERSION_FILE = ROOT / "runcrate_integrations" / "_version.py"
#: The stamp module written into each package; runcrate_integrations._installation.STAMP names
#: the same file, and CHECK_MODULE is the check it copies.
STAMP = "_distribution.py"
CHECK_MODULE = "runcrate_integrations/_installation.py"
PYPROJECT_PREFIX = "pyproject:"
_SKIP_NAMES = ("__pycache__", "*.pyc", "*.pyo", ".*")


class SpecError(Exception):
    """A ``dists/*.toml`` file, or the files it claims, is wrong; the message says how."""


@dataclass(frozen=True)
class Spec:
    """One distribution, as its ``dists/<name>.toml`` describes it."""

    name: str
    description: str
    packages: tuple[str, ...]  # folders, relative to the root: "llama_index/llms/runcrate"
    dependencies: tuple[str, ...]
    extras: Mapping[str, tuple[str, ...]]
    readme: str
    keywords: tuple[str, ...]

    def folders_present(self, root: Path) -> list[bool]:
        return [(root / p).is_dir() for p in self.packages]


@dataclass(frozen=True)
class Built:
    spec: Spec
    wheel: Path
    sdist: Path
    files: tuple[str, ...]  # the package files shipped (stamps included), posix paths


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_version(path: Path = VERSION_FILE) -> str:
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', path.read_text(), re.MULTILINE)
    if match is None:
        raise SpecError(f'{path}: no __version__ = "..." line')
    return match.group(1)


def read_pyproject(root: Path = ROOT) -> dict[str, Any]:
    with (root / "pyproject.toml").open("rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where} must be a list of strings")
    return tuple(value)


def load_specs(folder: Path = SPECS) -> list[Spec]:
    """Every ``<name>.toml`` of ``folder``, core first."""
    specs: list[Spec] = []
    for path in sorted(folder.glob("*.toml")):
        where = f"dists/{path.name}"
        with path.open("rb") as f:
            data = tomllib.load(f)
        unknown = set(data) - {
            "description",
            "packages",
            "dependencies",
            "optional-dependencies",
            "readme",
            "keywords",
        }
        if unknown:
            raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
        extras = data.get("optional-dependencies", {})
        specs.append(
            Spec(
                name=path.stem,
                description=str(data.get("description", "")),
                packages=_strings(data.get("packages"), f"{where}: packages"),
                dependencies=_strings(data.get("dependencies", []), f"{where}: dependencies"),
                extras={
                    k: _strings(v, f"{where}: optional-dependencies.{k}") for k, v in extras.items()
                },
                readme=str(data.get("readme", "README.md")),
                keywords=_strings(data.get("keywords", []), f"{where}: keywords"),
            )
        )
    return sorted(specs, key=lambda s: (s.name != "runcrate-integrations", s.name))


def package_files(root: Path, folder: str) -> list[str]:
    """The files under ``folder`` a wheel ships (no caches, no hidden files), posix paths."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root / folder):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        for name in sorted(filenames):
            if not _skipped(name):
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return found


def _skipped(name: str) -> bool:
    return any(Path(name).match(pattern) for pattern in _SKIP_NAMES)


def assign_files(
    specs: Sequence[Spec], root: Path, top_packages: Sequence[str]
) -> dict[str, list[str]]:
    """Which files each distribution ships; every file under ``top_packages`` exactly once."""
    owners: dict[str, list[str]] = {}
    shipped: dict[str, list[str]] = {}
    for spec in specs:
        files = [f for p in spec.packages for f in package_files(root, p)]
        stamps = [f for f in files if f.endswith("/" + STAMP)]
        if stamps:
            raise SpecError(
                f"{stamps[0]}: this name is written by dists/build.py into wheels; "
                "rename the source file"
            )
        shipped[spec.name] = files
        for file in files:
            owners.setdefault(file, []).append(spec.name)
    twice = {f: names for f, names in owners.items() if len(names) > 1}
    if twice:
        file, names = sorted(twice.items())[0]
        raise SpecError(
            f"{file} would be shipped by {' and '.join(names)}: a package folder "
            "belongs to one distribution (fix the packages lists in dists/*.toml)"
        )
    every = [f for top in top_packages for f in package_files(root, top)]
    orphans = [f for f in every if f not in owners]
    if orphans:
        raise SpecError(
            f"{orphans[0]} (and {len(orphans) - 1} more) would be shipped by no "
            "distribution: add its package folder to the packages of one "
            "dists/<name>.toml"
        )
    return shipped


def requirements(
    tokens: Sequence[str],
    project: Mapping[str, Any],
    version: str,
    built: set[str],
    known: set[str],
    where: str,
) -> list[str]:
    """Requirements from ``tokens``: ``pyproject:<table>`` or a distribution of this release."""
    out: list[str] = []
    extras_table = project.get("optional-dependencies", {})
    for token in tokens:
        if token.startswith(PYPROJECT_PREFIX):
            table = token.removeprefix(PYPROJECT_PREFIX)
            if table == "dependencies":
                out += project.get("dependencies", [])
            elif table in extras_table:
                out += extras_table[table]
            else:
                raise SpecError(
                    f"{where}: {token!r}: pyproject.toml has no [project] "
                    f"dependencies or optional-dependencies.{table}"
                )
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?", token)
        if match is None or canonical(match.group(1)) not in known:
            raise SpecError(
                f"{where}: {token!r} is neither a distribution of this release "
                f"({', '.join(sorted(known))}) nor pyproject:<table>; requirement "
                "bounds belong in the top-level pyproject.toml"
            )
        if canonical(match.group(1)) in built:
            out.append(f"{match.group(1)}{match.group(2) or ''}=={version}")
    return out


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def pyproject_text(
    spec: Spec,
    base: Mapping[str, Any],
    version: str,
    dependencies: list[str],
    extras: Mapping[str, list[str]],
) -> str:
    """The staged project's ``pyproject.toml``: static metadata, hatchling, the folders."""
    project = base["project"]
    fields: dict[str, Any] = {
        "name": spec.name,
        "version": version,
        "description": spec.description,
        "readme": "README.md",
        "requires-python": project["requires-python"],
        "license": project["license"],
        "authors": project.get("authors", []),
        "keywords": list(spec.keywords or project.get("keywords", [])),
        "classifiers": project.get("classifiers", []),
        "dependencies": dependencies,
    }
    lines = [
        f"# Generated by dists/build.py from dists/{spec.name}.toml and pyproject.toml.",
        "[build-system]",
    ]
    lines += [f"{k} = {_toml(v)}" for k, v in base["build-system"].items()]
    lines += ["", "[project]"] + [f"{k} = {_toml(v)}" for k, v in fields.items()]
    if project.get("urls"):
        lines += ["", "[project.urls]"] + [
            f"{_toml(k)} = {_toml(v)}" for k, v in project["urls"].items()
        ]
    if extras:
        lines += ["", "[project.optional-dependencies]"]
        lines += [f"{k} = {_toml(v)}" for k, v in extras.items()]
    # only-include keeps a folder's path (llama_index/llms/runcrate stays where it is, in the
    # llama_index namespace); hatch adds pyproject.toml and README.md to the sdist itself.
    for target in ("wheel", "sdist"):
        lines += [
            "",
            f"[tool.hatch.build.targets.{target}]",
            f"only-include = {_toml(list(spec.packages))}",
        ]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what is written must parse
    return text


def stamp_text(spec: Spec, version: str, release: Sequence[str], root: Path = ROOT) -> str:
    """The stamp: a copy of the installation check (so that it runs whatever core it meets)
    and which distribution of which release shipped the package."""
    check = (root / CHECK_MODULE).read_text()
    return (
        f"# Written by dists/build.py: {CHECK_MODULE} and, at the end, this wheel's stamp.\n"
        f"{check}\n\nDISTRIBUTION = {spec.name!r}\nVERSION = {version!r}\n"
        f"RELEASE = {tuple(release)!r}\n"
    )


def stage(
    spec: Spec,
    files: Sequence[str],
    base: Mapping[str, Any],
    version: str,
    release: Sequence[str],
    dependencies: list[str],
    extras: Mapping[str, list[str]],
    into: Path,
) -> list[str]:
    """Write the staged project of ``spec``; the package files it ships, stamps included."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for file in files:
        (into / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / file, into / file)
    stamps = [f"{package}/{STAMP}" for package in spec.packages]
    for stamp in stamps:
        (into / stamp).write_text(stamp_text(spec, version, release))
    shutil.copy2(ROOT / spec.readme, into / "README.md")
    (into / "pyproject.toml").write_text(pyproject_text(spec, base, version, dependencies, extras))
    return sorted([*files, *stamps])


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def build_project(project: Path, out: Path, backend_name: str) -> tuple[Path, Path]:
    """The sdist of ``project``, then the wheel built from that unpacked sdist."""
    backend = importlib.import_module(backend_name)
    with _cwd(project):
        sdist = out / backend.build_sdist(str(out))
    with tempfile.TemporaryDirectory(prefix="runcrate-sdist-") as scratch:
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(scratch, filter="data")
            else:  # Pythons before the tarfile filters: the sdist was just written here
                tar.extractall(scratch)
        (unpacked,) = Path(scratch).iterdir()
        with _cwd(unpacked):
            wheel = out / backend.build_wheel(str(out))
    return wheel, sdist


def check_wheel(wheel: Path, expected: Sequence[str]) -> None:
    """The wheel holds exactly the staged package files (and its own .dist-info)."""
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if ".dist-info/" not in n)
    if names != sorted(expected):
        extra = sorted(set(names) - set(expected))
        missing = sorted(set(expected) - set(names))
        raise SpecError(f"{wheel.name}: unexpected files {extra[:5]}, missing {missing[:5]}")


def build_all(out: Path, stage_root: Path, root: Path = ROOT, log: Any = print) -> list[Built]:
    """Check the specs, then stage and build every distribution whose folders exist."""
    base = read_pyproject(root)
    version = read_version(root / "runcrate_integrations" / "_version.py")
    specs = load_specs(root / "dists")
    known = {canonical(s.name) for s in specs}
    present: list[Spec] = []
    for spec in specs:
        found = spec.folders_present(root)
        if all(found):
            present.append(spec)
        elif any(found):
            missing = [p for p, ok in zip(spec.packages, found, strict=True) if not ok]
            raise SpecError(f"dists/{spec.name}.toml: {', '.join(missing)} does not exist")
        else:
            log(f"--  {spec.name}: skipped, {', '.join(spec.packages)} does not exist yet")
    built_names = {canonical(s.name) for s in present}
    top = base["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    shipped = assign_files(present, root, top)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # no wheel of an earlier build lies beside this one's
        if any(old.name.startswith(canonical(s.name).replace("-", "_") + "-") for s in specs):
            old.unlink()
    results: list[Built] = []
    for spec in present:
        where = f"dists/{spec.name}.toml"
        project = base["project"]
        deps = requirements(spec.dependencies, project, version, built_names, known, where)
        extras = {
            name: requirements(tokens, project, version, built_names, known, where)
            for name, tokens in spec.extras.items()
        }
        files = stage(
            spec,
            shipped[spec.name],
            base,
            version,
            [s.name for s in present],
            deps,
            extras,
            stage_root / spec.name,
        )
        wheel, sdist = build_project(
            stage_root / spec.name, out, base["build-system"]["build-backend"]
        )
        check_wheel(wheel, files)
        results.append(Built(spec, wheel, sdist, tuple(files)))
        log(f"==> {spec.name} {version}: {wheel.name} ({len(files)} files), {sdist.name}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "dist",
        help="where wheels and sdists go (default: dist/)",
    )
    parser.add_argument(
        "--stage",
        type=Path,
        default=ROOT / "build" / "dists",
        help="where the staged projects are written (default: build/dists/)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        built = build_all(args.out.resolve(), args.stage.resolve())
    except SpecError as exc:
        print(f"dists/build.py: {exc}", file=sys.stderr)
        return 1
    print(
        f"==> built {len(built)} distributions into {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
