"""Fixtures for the ChatRuncrate unit tests: a model wired to a recording mock transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_runcrate import ChatRuncrate
from runcrate_integrations import catalog
from tests.helpers import Recorder

MODEL = "deepseek/deepseek-v3.2"
KEY = "rc_live_unit_test_key_123"

MakeChat = Callable[..., tuple[ChatRuncrate, Recorder]]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Nothing here may depend on the caller's environment or on another test's catalog.
    monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
    monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
    catalog.clear_cache()
    yield
    catalog.clear_cache()


@pytest.fixture
def make_chat() -> MakeChat:
    """``make_chat(replies, **fields)`` -> (model over a Recorder, the Recorder)."""

    def make(replies: Any = (), **fields: Any) -> tuple[ChatRuncrate, Recorder]:
        rec = Recorder(replies)
        fields.setdefault("model", MODEL)
        fields.setdefault("api_key", KEY)
        fields.setdefault("max_retries", 0)
        llm = ChatRuncrate(
            http_client=rec.client(), http_async_client=rec.async_client(), **fields
        )
        return llm, rec

    return make
