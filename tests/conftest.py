"""Fixtures every test folder may use: VCR configuration and cassette locations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import vcr_support

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts as a new process would: no catalog, no rate-limit state, no token
    calibration (all process-wide by design, so one test's answers must not steer the next;
    a recorded test's GET /models and counts are then the same in recording and replay)."""
    from runcrate_integrations import catalog, ratelimit, tokens

    def forget() -> None:
        catalog.clear_cache()
        ratelimit.reset_limiters()
        tokens._registry.clear()

    forget()
    yield
    forget()


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
