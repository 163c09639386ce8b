"""Fixtures for the ChatRuncrate unit tests: a model wired to a recording mock transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from langchain_runcrate import ChatRuncrate
from tests.helpers import Recorder

MODEL = "deepseek/deepseek-v3.2"
KEY = "rc_live_unit_test_key_123"

MakeChat = Callable[..., tuple[ChatRuncrate, Recorder]]


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None) -> None:
    """Nothing here may come from the caller's environment."""


@pytest.fixture
def make_chat() -> MakeChat:
    """``make_chat(replies, **fields)`` -> (model over a Recorder, the Recorder)."""

    def make(replies: Any = (), **fields: Any) -> tuple[ChatRuncrate, Recorder]:
        rec = Recorder(replies)
        fields.setdefault("model", MODEL)
        fields.setdefault("api_key", KEY)
        fields.setdefault("max_retries", 0)
        llm = ChatRuncrate(http_client=rec.client(), http_async_client=rec.async_client(), **fields)
        return llm, rec

    return make
