"""The core media client against the loopback fault server (``fake_server``): real HTTP,
Runcrate's shapes, fake bytes (:mod:`tests.support.fake_media`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runcrate_integrations.media import MediaClient, MediaSettings, PollPolicy
from runcrate_integrations.net import transport
from tests.support.fake_openai_server import FakeOpenAIServer

KEY = "rc_live_MEDIA_UNIT_TEST_KEY_0042"
#: Small enough that a wait of several looks takes milliseconds.
FAST_POLL = PollPolicy(first=0.01, factor=2.0, most=0.04)

MakeMedia = Callable[..., MediaClient]


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the caller's environment; retries wait milliseconds, not half seconds."""
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)


@pytest.fixture
def make_media(fake_server: FakeOpenAIServer) -> MakeMedia:
    """``make_media(**fields)``: a MediaClient on the fault server, polling fast."""

    def make(**fields: Any) -> MediaClient:
        fields.setdefault("api_key", KEY)
        fields.setdefault("base_url", fake_server.base_url)
        fields.setdefault("max_retries", 0)
        fields.setdefault("timeout", 5.0)
        media = MediaSettings(**fields).media
        media.poll = FAST_POLL
        return media

    return make
