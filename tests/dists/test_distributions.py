"""The distributions ``dists/build.py`` builds: which files each ships, their one version, and
what each depends on. One build per test run (the ``build`` fixture), offline."""

from __future__ import annotations

import ast
import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.unit.test_dependencies import DISTRIBUTION as PROVIDES

from .conftest import ROOT, Build, load_builder

builder = load_builder()
SPECS = {s.name: s for s in builder.load_specs()}
CORE = "runcrate-integrations"
#: The distributions every build makes; the media ones once their folders exist.
ALWAYS = {
    CORE,
    "langchain-runcrate",
    "llama-index-llms-runcrate",
    "llama-index-embeddings-runcrate",
}
MEDIA = {"llama-index-tools-runcrate", "llama-index-readers-runcrate"}


def _present(name: str) -> bool:
    return all((ROOT / p).is_dir() for p in SPECS[name].packages)


def _wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return [n for n in zf.namelist() if ".dist-info/" not in n]


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(name).decode())


def _requires(wheel: Path) -> list[Requirement]:
    return [Requirement(r) for r in _metadata(wheel).get_all("Requires-Dist") or []]


def _source_files() -> set[str]:
    top = builder.read_pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return {f for package in top for f in builder.package_files(ROOT, package)}


def test_the_distribution_list(build: Build) -> None:
    expected = ALWAYS | {name for name in MEDIA if _present(name)}
    assert set(SPECS) == ALWAYS | MEDIA
    assert set(build.wheels) == expected
    assert set(build.sdists) == expected
    for name in MEDIA - expected:  # said, not silently left out
        assert f"{name}: skipped" in build.output


def test_every_file_is_shipped_by_exactly_one_wheel(build: Build) -> None:
    shipped: dict[str, list[str]] = {}
    for name, wheel in build.wheels.items():
        for file in _wheel_files(wheel):
            shipped.setdefault(file, []).append(name)
    twice = {f: names for f, names in shipped.items() if len(names) > 1}
    assert not twice
    stamps = {f for f in shipped if f.endswith("/_distribution.py")}
    assert set(shipped) - stamps == _source_files()
    # No wheel ships a namespace level (llama_index/__init__.py would hide llama-index-core).
    assert not {
        f
        for f in shipped
        if f
        in (
            "llama_index/__init__.py",
            "llama_index/llms/__init__.py",
            "llama_index/embeddings/__init__.py",
        )
    }


def test_each_wheel_ships_its_folders_and_a_stamp_in_each(build: Build) -> None:
    for name, wheel in build.wheels.items():
        files = _wheel_files(wheel)
        folders = SPECS[name].packages
        assert all(any(f.startswith(folder + "/") for folder in folders) for f in files), name
        stamped = {f.rsplit("/", 1)[0] for f in files if f.endswith("/_distribution.py")}
        assert stamped == set(folders), name


def test_one_version_everywhere(build: Build) -> None:
    version = build.version
    assert version == builder.read_version(ROOT / "runcrate_integrations" / "_version.py")
    assert tuple(int(p) for p in version.split(".")[:2]) > (0, 1)  # above the 0.1 wrappers
    for name, wheel in build.wheels.items():
        assert wheel.name.startswith(f"{name.replace('-', '_')}-{version}-"), wheel.name
        assert build.sdists[name].name == f"{name.replace('-', '_')}-{version}.tar.gz"
        assert _metadata(wheel)["Version"] == version
        with zipfile.ZipFile(wheel) as zf:
            for stamp in [n for n in zf.namelist() if n.endswith("/_distribution.py")]:
                namespace: dict[str, object] = {}
                exec(zf.read(stamp).decode(), namespace)
                assert (namespace["DISTRIBUTION"], namespace["VERSION"]) == (name, version)
                assert set(namespace["RELEASE"]) == set(build.wheels)  # type: ignore[arg-type]  # a tuple
        for requirement in _requires(wheel):  # our own distributions: exactly this version
            if requirement.name in SPECS:
                assert str(requirement.specifier) == f"=={version}", (name, requirement)


def test_frameworks_depend_on_the_core_and_the_core_extras_on_the_frameworks(build: Build) -> None:
    version, wheels = build.version, build.wheels
    project = builder.read_pyproject()["project"]

    def plain(wheel: Path, extra: str | None = None) -> set[str]:
        out = set()
        for r in _requires(wheel):
            marker = str(r.marker) if r.marker else ""
            if (extra is None and not marker) or (extra and f'extra == "{extra}"' in marker):
                r.marker = None
                out.add(str(r))
        return out

    core = wheels[CORE]
    assert plain(core) == {str(Requirement(r)) for r in project["dependencies"]}
    built_llama = sorted(n for n in wheels if n.startswith("llama-index-"))
    assert plain(core, "langchain") == {f"langchain-runcrate=={version}"}
    assert plain(core, "llama-index") == {f"{n}=={version}" for n in built_llama}
    assert plain(core, "progress") == {
        str(Requirement(r)) for r in project["optional-dependencies"]["progress"]
    }
    # hatchling writes the self-reference runcrate-integrations[langchain,...] out in full
    assert plain(core, "all") == (
        plain(core, "langchain") | plain(core, "llama-index") | plain(core, "progress")
    )
    pin = f"runcrate-integrations=={version}"
    assert plain(wheels["langchain-runcrate"]) == {pin} | {
        str(Requirement(r)) for r in project["optional-dependencies"]["langchain"]
    }
    assert plain(wheels["llama-index-llms-runcrate"]) == {pin} | {
        str(Requirement(r)) for r in project["optional-dependencies"]["llama-index"]
    }
    for name in set(built_llama) - {"llama-index-llms-runcrate"}:
        assert plain(wheels[name]) == {pin, f"llama-index-llms-runcrate=={version}"}


def test_each_wheel_declares_what_its_code_imports(build: Build) -> None:
    # Per wheel, as tests/unit/test_dependencies.py checks the top-level project: a module
    # imported by a wheel's code comes from a distribution it requires, directly or through
    # another distribution of this release.
    provided_by_ours = {
        "runcrate_integrations": CORE,
        "langchain_runcrate": "langchain-runcrate",
        "llama_index_runcrate": "llama-index-llms-runcrate",
    }

    def closure(name: str, optional: bool = True) -> set[str]:
        # An extra's requirements count for the wheel itself (tqdm is imported only for
        # show_progress_bar), not for the distributions it pulls in.
        names = {name}
        for r in _requires(build.wheels[name]):
            if r.marker is None or optional:
                names |= closure(r.name, False) if r.name in build.wheels else {r.name}
        return names

    for name, wheel in build.wheels.items():
        imported: set[str] = set()
        with zipfile.ZipFile(wheel) as zf:
            for file in [n for n in zf.namelist() if n.endswith(".py")]:
                for node in ast.walk(ast.parse(zf.read(file))):
                    if isinstance(node, ast.Import):
                        imported |= {a.name.split(".")[0] for a in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        imported.add(node.module.split(".")[0])
        imported -= set(sys.stdlib_module_names) | {"__future__"}
        available = closure(name)
        for module in imported:
            needed = provided_by_ours.get(module) or PROVIDES[module]
            assert needed in available, f"{name} imports {module} but does not require {needed}"


def test_sdists_hold_the_staged_project(build: Build) -> None:
    for name, sdist in build.sdists.items():
        with tarfile.open(sdist) as tar:
            names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
        assert {f for f in names if f.endswith(".py")} == {
            f for f in _wheel_files(build.wheels[name]) if f.endswith(".py")
        }


def test_every_package_runs_the_installation_check_first() -> None:
    # Each package of every distribution calls check_installation(__name__) in its __init__,
    # before anything that a stale installation could break; the core is what they compare with.
    for spec in SPECS.values():
        for folder in spec.packages:
            if folder == "runcrate_integrations":
                continue
            init = ROOT / folder / "__init__.py"
            if not init.exists():
                continue  # a media distribution whose folder does not exist yet
            tree = ast.parse(init.read_text())
            calls = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and n.func.id == "check_installation"
            ]
            assert calls, f"{folder}/__init__.py does not call check_installation(__name__)"
            first_call = min(n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call))
            assert calls[0].lineno == first_call, f"{folder}: the check is not the first call"


def test_the_top_level_project_builds_only_editable(tmp_path: Path) -> None:
    # Its wheel would hold every distribution's files: the kind of wheel that shadows them.
    code = (
        "import os, sys, hatchling.build as b; os.chdir(sys.argv[1]); "
        "getattr(b, sys.argv[2])(sys.argv[3])"
    )
    for hook in ("build_wheel", "build_sdist"):
        result = subprocess.run(
            [sys.executable, "-c", code, str(ROOT), hook, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0
        assert "bash scripts/build-dists" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("problem", ["unclaimed", "twice", "requirement", "stamp"])
def test_the_builder_refuses_a_wrong_spec(problem: str, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for name in ("pyproject.toml",):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((ROOT / name).read_text())
    for package in ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    (root / "runcrate_integrations" / "_version.py").write_text('__version__ = "9.9.9"\n')
    (root / "llama_index").mkdir()
    specs = root / "dists"
    specs.mkdir()
    (specs / "runcrate-integrations.toml").write_text(
        'packages = ["runcrate_integrations"]\ndependencies = ["pyproject:dependencies"]\n'
    )
    (specs / "langchain-runcrate.toml").write_text(
        'packages = ["langchain_runcrate"]\ndependencies = ["runcrate-integrations"]\n'
    )
    (specs / "llama-index-llms-runcrate.toml").write_text(
        'packages = ["llama_index_runcrate"]\ndependencies = ["runcrate-integrations"]\n'
    )
    if problem == "unclaimed":
        (root / "llama_index" / "agent" / "runcrate").mkdir(parents=True)
        (root / "llama_index" / "agent" / "runcrate" / "__init__.py").write_text("")
        message = "llama_index/agent/runcrate/__init__.py .* would be shipped by no distribution"
    elif problem == "twice":
        (specs / "langchain-runcrate.toml").write_text(
            'packages = ["langchain_runcrate", "llama_index_runcrate"]\n'
        )
        message = "would be shipped by langchain-runcrate and llama-index-llms-runcrate"
    elif problem == "requirement":
        (specs / "langchain-runcrate.toml").write_text(
            'packages = ["langchain_runcrate"]\ndependencies = ["langchain-core>=1"]\n'
        )
        message = "is neither a distribution of this release .* nor pyproject:<table>"
    else:
        (root / "langchain_runcrate" / "_distribution.py").write_text("")
        message = "this name is written by dists/build.py"
    with pytest.raises(builder.SpecError, match=message):
        builder.build_all(tmp_path / "out", tmp_path / "stage", root=root, log=lambda _: None)
