"""The installation check each package runs at import (runcrate_integrations/_installation.py):
when two packages belong together, that it reads no metadata, and what it says otherwise.
tests/dists/ runs it on real wheels in fresh environments."""

from __future__ import annotations

import importlib
import importlib.metadata
import statistics
import sys
import time

import pytest

from runcrate_integrations import _installation
from runcrate_integrations._installation import Origin, belong_together, check_installation

PACKAGES = (
    "langchain_runcrate",
    "llama_index_runcrate",
    "llama_index.llms.runcrate",
    "llama_index.embeddings.runcrate",
)
SITE = "/venv/lib/python3.11/site-packages"


def _wheel(package: str, distribution: str, version: str, root: str = SITE) -> Origin:
    folder = "/".join([root, *package.split(".")])
    return Origin(
        package, folder, distribution, version, ("runcrate-integrations", "langchain-runcrate")
    )


def test_wheels_of_one_release_or_folders_of_one_checkout_belong_together() -> None:
    core = _wheel("runcrate_integrations", "runcrate-integrations", "0.2.0")
    assert belong_together(_wheel("langchain_runcrate", "langchain-runcrate", "0.2.0"), core)
    # Another site folder (a --user install beside the system's) is fine at the same version.
    other = _wheel("langchain_runcrate", "langchain-runcrate", "0.2.0", "/home/u/.local/lib")
    assert belong_together(other, core)
    assert not belong_together(_wheel("langchain_runcrate", "langchain-runcrate", "0.2.1"), core)
    checkout = Origin("runcrate_integrations", "/src/repo/runcrate_integrations")
    assert belong_together(
        Origin("llama_index.llms.runcrate", "/src/repo/llama_index/llms/runcrate"), checkout
    )
    assert not belong_together(Origin("langchain_runcrate", "/other/langchain_runcrate"), checkout)
    assert not belong_together(
        _wheel("langchain_runcrate", "langchain-runcrate", "0.2.0"), checkout
    )


def test_a_checkout_passes_without_reading_installed_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_scan() -> None:
        raise AssertionError("the check read importlib.metadata on its happy path")

    for package in PACKAGES:
        importlib.import_module(package)
    with monkeypatch.context() as patch:
        patch.setattr(importlib.metadata, "distributions", no_scan)
        for package in PACKAGES:
            check_installation(package)
            assert _installation.origin(package).distribution is None  # a checkout runs tests


def test_the_check_costs_microseconds() -> None:
    import langchain_runcrate  # noqa: F401  # imported, as when the check runs

    times = []
    for _ in range(50):
        start = time.perf_counter()
        check_installation("langchain_runcrate")
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.001  # ~2 µs on a laptop; a generous bound for CI


def test_the_fix_for_a_stale_wheel_reinstalls_the_release_at_one_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        _installation,
        "installed",
        lambda names: [("runcrate-integrations", "0.1.0"), ("langchain-runcrate", "0.2.0")],
    )
    mine = _wheel("langchain_runcrate", "langchain-runcrate", "0.2.0")
    core = Origin("runcrate_integrations", f"{SITE}/runcrate_integrations")
    old = [("runcrate-integrations", "0.1.0")]
    command = _installation.fix(mine, core, [("langchain-runcrate", "0.2.0"), *old], old)
    pip = f"{sys.executable} -m pip"
    assert command == (
        f"{pip} uninstall -y langchain-runcrate runcrate-integrations && {pip} "
        'install "langchain-runcrate==0.2.0" "runcrate-integrations==0.2.0"'
    )
    assert "also claimed by runcrate-integrations 0.1.0" in _installation.describe(
        mine, [("langchain-runcrate", "0.2.0"), *old]
    )


def test_the_fix_for_a_wheel_over_a_checkout_removes_the_wheel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        _installation, "editable_install", lambda root: ("runcrate-integrations", "0.2.0")
    )
    mine = _wheel("langchain_runcrate", "langchain-runcrate", "0.2.0")
    core = Origin("runcrate_integrations", "/src/repo/runcrate_integrations")
    assert _installation.fix(mine, core, [("langchain-runcrate", "0.2.0")], []) == (
        f"{sys.executable} -m pip uninstall -y langchain-runcrate"
    )
    assert _installation.describe(core, []) == (
        "a source checkout (editable install of runcrate-integrations), in /src/repo"
    )


def test_the_error_is_an_import_error_naming_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _wheel("runcrate_integrations", "runcrate-integrations", "0.1.9")
    monkeypatch.setattr(_installation, "core_origin", lambda: stale)
    monkeypatch.setattr(_installation, "owners", lambda o: [])
    monkeypatch.setattr(_installation, "installed", lambda names: [])
    with pytest.raises(ImportError) as info:
        check_installation("langchain_runcrate")
    assert isinstance(info.value, _installation.InstallationError)
    message = str(info.value)
    assert "langchain_runcrate     from a source checkout" in message
    assert "runcrate_integrations  from runcrate-integrations 0.1.9, in " + SITE in message
    assert message.endswith(f"{sys.executable} -m pip uninstall -y runcrate-integrations")
