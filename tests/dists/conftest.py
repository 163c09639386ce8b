"""Every distribution built once per test run (``dists/build.py``, offline), and fresh virtual
environments that install them with ``pip --no-index`` from what this test environment has.

A fresh environment sees this environment's installed distributions (openai, langchain-core,
llama-index-core, ...) through a folder of symlinks added by a ``.pth`` file, less this
project's own: pip resolves the wheels' requirements against those and installs only our wheels,
from ``--find-links``, with no index and no network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate")


def load_builder() -> ModuleType:
    """``dists/build.py`` as a module (it is a script, not a package)."""
    path = ROOT / "dists" / "build.py"
    spec = importlib.util.spec_from_file_location("runcrate_dists_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Build:
    out: Path
    version: str
    wheels: dict[str, Path]  # distribution name -> wheel
    sdists: dict[str, Path]
    output: str  # what dists/build.py printed
    seconds: float


def _distribution_name(artifact: Path) -> str:
    stem = artifact.name.split("-")[0]
    return stem.replace("_", "-")


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``python dists/build.py`` into a scratch folder, as ``bash scripts/build-dists`` runs it."""
    import time

    out = tmp_path_factory.mktemp("dist")
    stage = tmp_path_factory.mktemp("stage")
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "dists" / "build.py"),
            "--out",
            str(out),
            "--stage",
            str(stage),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    builder = load_builder()
    return Build(
        out=out,
        version=builder.read_version(),
        wheels={_distribution_name(p): p for p in out.glob("*.whl")},
        sdists={_distribution_name(p): p for p in out.glob("*.tar.gz")},
        output=result.stdout,
        seconds=seconds,
    )


# ---------------------------------------------------------------------- fresh environments


def _purelib() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _ours(entry: str) -> bool:
    """An entry of site-packages that belongs to this project (a package, its metadata, the
    editable install's files), kept out of the fresh environments' view."""
    name = entry.lower()
    if name.startswith((*OUR_PACKAGES, "__editable__", "_editable_impl_")) or name.endswith(".pth"):
        return True
    dist = re.match(r"([a-z0-9_.]+?)-[0-9][^-]*\.(dist|egg)-info$", name)
    return bool(dist) and re.sub(r"[-_.]+", "-", dist.group(1)) in {
        "runcrate-integrations",
        "langchain-runcrate",
        "llama-index-llms-runcrate",
        "llama-index-embeddings-runcrate",
        "llama-index-tools-runcrate",
        "llama-index-readers-runcrate",
    }


@pytest.fixture(scope="session")
def dependency_view(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Symlinks to this environment's installed distributions, this project's left out."""
    view = tmp_path_factory.mktemp("deps")
    for entry in _purelib().iterdir():
        if not _ours(entry.name):
            (view / entry.name).symlink_to(entry)
    return view


@dataclass
class FreshEnv:
    """A new virtual environment of this interpreter, seeing only the dependency view."""

    path: Path
    find_links: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return Path(
            sysconfig.get_path("purelib", vars={"base": str(self.path), "platbase": str(self.path)})
        )

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``pip`` in this environment; ``install`` goes to the built wheels only."""
        args_list = list(args)
        if args_list and args_list[0] == "install":
            args_list[1:1] = ["--no-index", "--find-links", str(self.find_links)]
        return self.run_module(
            "pip", "--isolated", "--disable-pip-version-check", *args_list, check=check
        )

    def run_module(
        self, module: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.python), "-I", "-m", module, *args], check)

    def python_code(self, code: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.python), "-I", "-c", code], check)

    def _run(self, cmd: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
        result = subprocess.run(
            cmd, cwd=self.path, capture_output=True, text=True, timeout=300, check=False, env=env
        )
        if check:
            assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
        return result

    def add_path(self, folder: Path, name: str) -> None:
        """Put ``folder`` on sys.path after site-packages, as an editable install does."""
        (self.site_packages / f"{name}.pth").write_text(f"{folder}\n")

    def json(self, code: str) -> Any:
        return json.loads(self.python_code(code).stdout.strip().splitlines()[-1])


@pytest.fixture
def fresh_env(tmp_path: Path, dependency_view: Path, build: Build) -> Callable[[], FreshEnv]:
    def make() -> FreshEnv:
        path = tmp_path / "venv"
        venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
        env = FreshEnv(path, build.out)
        env.add_path(dependency_view, "zz_test_environment")  # pip comes from there too
        return env

    return make
