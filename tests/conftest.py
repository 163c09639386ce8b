"""Fixtures every test folder may use: fresh process state, an environment without Runcrate
settings, the loopback fault server, VCR configuration and cassette locations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runcrate_integrations.config import API_BASE_ENV, API_KEY_ENV, BASE_URL_ENV
from tests import vcr_support

if TYPE_CHECKING:
    from tests.support.fake_openai_server import FakeOpenAIServer

TESTS = Path(__file__).resolve().parent
# The fault server drops a connection idle this long: longer than any one module runs, so
# pooled keep-alive connections are not cut between tests.
SERVER_READ_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts as a new process would: no catalog, no rate-limit state, no token
    calibration (all process-wide by design, so one test's answers must not steer the next;
    a recorded test's GET /models and counts are then the same in recording and replay)."""
    from runcrate_integrations import catalog, tokens
    from runcrate_integrations.net import ratelimit

    def forget() -> None:
        catalog.clear_cache()
        ratelimit.reset_limiters()
        tokens._registry.clear()

    forget()
    yield
    forget()


@pytest.fixture
def no_runcrate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the caller's environment: no RUNCRATE_API_KEY, no RUNCRATE_BASE_URL (nor
    RUNCRATE_API_BASE, its 0.1 name)."""
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_BASE_ENV, raising=False)


@pytest.fixture(scope="module")
def _module_server() -> Iterator[FakeOpenAIServer]:
    from tests.support.fake_openai_server import running_server

    with running_server(read_timeout=SERVER_READ_TIMEOUT) as server:
        yield server


@pytest.fixture
def fake_server(_module_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The module's loopback fault server (one per module, in a daemon thread), empty: echo
    mode, nothing queued, no recorded requests or counters."""
    _module_server.reset()
    yield _module_server
    _module_server.reset()


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return vcr_support.vcr_config()


def pytest_recording_configure(config: Any, vcr: Any) -> None:
    vcr.register_matcher("json_body", vcr_support.json_body_matcher)
    # Same safe loader as vcr's own "yaml"; streams are written as readable blocks.
    vcr.register_serializer("yaml", vcr_support.ReadableYamlSerializer())


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``tests/recorded/<framework>/test_x.py`` records into ``cassettes/<framework>/test_x/``."""
    module = Path(str(request.node.fspath))
    rel = module.parent.relative_to(TESTS)
    parts = rel.parts[1:] if rel.parts and rel.parts[0] == "recorded" else rel.parts
    return str(vcr_support.CASSETTES.joinpath(*parts, module.stem))
