"""The built wheels installed into fresh virtual environments, offline (``pip --no-index
--find-links``, dependencies from this test environment): every public path imports, and a
file of another installation shadowing ours is an error that names both and the fix."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.test_exports import PUBLIC

from .conftest import ROOT, Build, FreshEnv

FreshEnvFactory = Callable[[], FreshEnv]

# Every package of every built wheel (the folders with a stamp), imported in the fresh
# environment; each reports its __all__, its file and its stamp.
IMPORT_ALL = """
import importlib, json, sys, zipfile, glob
packages = sorted({name.rsplit("/", 1)[0].replace("/", ".")
                   for wheel in glob.glob(sys.argv[1] + "/*.whl")
                   for name in zipfile.ZipFile(wheel).namelist()
                   if name.endswith("/_distribution.py")})
report = {}
for package in packages:
    module = importlib.import_module(package)
    names = list(getattr(module, "__all__", []))
    for name in names:
        assert getattr(module, name) is not None, (package, name)
    stamp = importlib.import_module(package + "._distribution")
    report[package] = {"all": names, "file": module.__file__,
                       "stamp": [stamp.DISTRIBUTION, stamp.VERSION]}
from llama_index.llms.runcrate import Runcrate, RuncrateLLM
from llama_index_runcrate import RuncrateLLM as Implementation
assert Runcrate is RuncrateLLM is Implementation
print(json.dumps(report))
"""


def _import_all(env: FreshEnv, build: Build) -> dict[str, dict[str, object]]:
    code = IMPORT_ALL.replace("sys.argv[1]", repr(str(build.out)))
    report: dict[str, dict[str, object]] = env.json(code)
    return report


def test_wheels_install_offline_and_every_public_path_imports(
    build: Build, fresh_env: FreshEnvFactory
) -> None:
    env = fresh_env()
    # The core with its [all] extra pulls in every framework distribution at this version.
    env.pip("install", "runcrate-integrations[all]")
    report = _import_all(env, build)
    expected_packages = {
        "runcrate_integrations",
        "langchain_runcrate",
        "llama_index_runcrate",
        "llama_index.llms.runcrate",
        "llama_index.embeddings.runcrate",
    }
    assert expected_packages <= set(report)
    for package, info in report.items():
        assert str(info["file"]).startswith(str(env.site_packages)), package  # not the checkout
        distribution, version = info["stamp"]  # type: ignore[misc]  # a JSON pair
        assert version == build.version
        assert distribution in build.wheels
        if package in PUBLIC:
            assert set(info["all"]) == PUBLIC[package]  # type: ignore[arg-type]  # a JSON list
    assert set(report["llama_index.llms.runcrate"]["all"]) == {"Runcrate", "RuncrateLLM"}  # type: ignore[arg-type]
    assert report["llama_index.embeddings.runcrate"]["all"] == ["RuncrateEmbedding"]
    frozen = env.pip("list", "--format=freeze", "--path", str(env.site_packages)).stdout
    assert sorted(line.split("==")[0] for line in frozen.split()) == sorted(build.wheels)


def _old_monolith(tmp: Path, version: str = "0.1.0") -> Path:
    """A wheel like runcrate-integrations 0.1.0: every package in one, no stamps, no check."""
    project = tmp / "old-monolith"
    for package in (
        "runcrate_integrations",
        "langchain_runcrate",
        "llama_index_runcrate",
        "llama_index",
    ):
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    (project / "runcrate_integrations" / "_installation.py").unlink()
    (project / "runcrate_integrations" / "_version.py").write_text(f'__version__ = "{version}"\n')
    (project / "pyproject.toml").write_text(f"""
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
[project]
name = "runcrate-integrations"
version = "{version}"
dependencies = ["openai", "pydantic", "httpx2"]
[tool.hatch.build.targets.wheel]
only-include = ["runcrate_integrations", "langchain_runcrate", "llama_index_runcrate",
                "llama_index"]
""")
    out = tmp / "old-dist"
    out.mkdir()
    code = "import os, sys, hatchling.build as b; os.chdir(sys.argv[1]); b.build_wheel(sys.argv[2])"
    subprocess.run(
        [sys.executable, "-c", code, str(project), str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def _run_fix(env: FreshEnv, message: str) -> str:
    """Run the command the error names (pip made offline, as everything here)."""
    command = message.split("Fix it with:\n", 1)[1].strip()
    for part in command.split(" && "):
        argv = shlex.split(part)
        assert argv[:3] == [str(env.python), "-m", "pip"], command  # that environment's pip
        env.pip(*argv[3:])
    return command


def test_an_old_monolith_beside_the_split_wheels_is_an_error_naming_both_and_the_fix(
    build: Build, fresh_env: FreshEnvFactory, tmp_path: Path
) -> None:
    # The 0.1 wheel held every package; the new langchain-runcrate installed over it (pip
    # --no-deps, or a resolver that kept the old core) overwrites langchain_runcrate's files and
    # leaves the 0.1 core: the new package's own copy of the check meets a core that has none.
    env = fresh_env()
    env.pip("install", str(_old_monolith(tmp_path)))
    env.pip("install", "--no-deps", "langchain-runcrate")
    result = env.python_code("import langchain_runcrate", check=False)
    assert result.returncode != 0
    message = result.stderr.split("InstallationError: ", 1)[1]
    version = build.version
    assert (
        f"from langchain-runcrate {version} (its files are also claimed by "
        f"runcrate-integrations 0.1.0)" in message
    )
    assert (
        "runcrate_integrations  from runcrate-integrations 0.1.0 (a wheel that predates "
        "this check)" in message
    )
    command = _run_fix(env, message)
    assert command.endswith(
        f'install "langchain-runcrate=={version}" "runcrate-integrations=={version}"'
    )
    report = env.json(
        "import json, langchain_runcrate, runcrate_integrations as c; "
        "print(json.dumps([c.__version__, langchain_runcrate.__version__]))"
    )
    assert report == [version, version]


def test_a_wheel_shadowing_a_checkout_is_an_error_naming_both_and_the_fix(
    build: Build, fresh_env: FreshEnvFactory, tmp_path: Path
) -> None:
    # A checkout on sys.path after site-packages (as `pip install -e .` puts it) and a wheel
    # of langchain-runcrate installed later: the wheel's files win, the edits in the checkout
    # silently do not run.
    checkout = tmp_path / "checkout"
    for package in (
        "runcrate_integrations",
        "langchain_runcrate",
        "llama_index_runcrate",
        "llama_index",
    ):
        shutil.copytree(
            ROOT / package,
            checkout / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    env = fresh_env()
    env.add_path(checkout, "checkout")
    env.pip("install", "--no-deps", "langchain-runcrate")
    result = env.python_code("import langchain_runcrate", check=False)
    assert result.returncode != 0
    message = result.stderr.split("InstallationError: ", 1)[1]
    assert (
        f"langchain_runcrate     from langchain-runcrate {build.version}, in "
        f"{env.site_packages}" in message
    )
    assert f"runcrate_integrations  from a source checkout, in {checkout}" in message
    assert _run_fix(env, message).endswith("uninstall -y langchain-runcrate")
    where = env.json("import json, langchain_runcrate as m; print(json.dumps(m.__file__))")
    assert where == str(checkout / "langchain_runcrate" / "__init__.py")


@pytest.mark.parametrize("package", ["llama_index.llms.runcrate", "llama_index_runcrate"])
def test_a_llama_index_wheel_of_another_version_is_an_error(
    build: Build, fresh_env: FreshEnvFactory, tmp_path: Path, package: str
) -> None:
    # The same wheels, the core's stamp rewritten to another version: as if the core came from
    # another release than llama-index-llms-runcrate.
    env = fresh_env()
    env.pip("install", "llama-index-llms-runcrate")
    core_stamp = env.site_packages / "runcrate_integrations" / "_distribution.py"
    core_stamp.write_text(
        core_stamp.read_text().replace(f"VERSION = {build.version!r}", "VERSION = '0.2.99'")
    )
    result = env.python_code(f"import {package}", check=False)
    assert "InstallationError" in result.stderr
    assert "from runcrate-integrations 0.2.99" in result.stderr
