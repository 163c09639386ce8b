"""Fixtures for the LlamaIndex adapter tests: a clean env, an empty catalog, an LLM factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

from llama_index_runcrate import RuncrateLLM
from tests.helpers import Recorder

MODEL = "deepseek/deepseek-v3.2"
KEY = "rc_live_test_key_0123456789"


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None) -> None:
    """Nothing here may come from the caller's environment."""


MakeLLM = Callable[..., tuple[RuncrateLLM, Recorder]]


@pytest.fixture
def make_llm() -> MakeLLM:
    """``make_llm(replies, **fields) -> (llm, recorder)`` with both clients on the recorder."""

    def make(replies: list[Any] | None = None, **fields: Any) -> tuple[RuncrateLLM, Recorder]:
        rec = Recorder(replies or [])
        fields.setdefault("model", MODEL)
        fields.setdefault("api_key", KEY)
        llm = RuncrateLLM(http_client=rec.client(), async_http_client=rec.async_client(), **fields)
        return llm, rec

    return make


class EventLog(BaseEventHandler):
    """Collects instrumentation events (class names) fired while installed."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    @property
    def names(self) -> list[str]:
        return [e.class_name() for e in self.events]


@pytest.fixture
def event_log() -> Iterator[EventLog]:
    log = EventLog()
    root = get_dispatcher()
    root.add_event_handler(log)
    yield log
    root.event_handlers.remove(log)
