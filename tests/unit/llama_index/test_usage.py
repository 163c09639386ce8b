"""RuncrateUsageHandler: the core's records as LlamaIndex events, added up by the handler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.llms import ChatMessage
from llama_index_instrumentation import get_dispatcher

from llama_index_runcrate import RuncrateEmbedding, RuncrateUsageEvent, RuncrateUsageHandler
from tests.helpers import Recorder, completion_body
from tests.unit.embeddings.replies import echo

from .conftest import KEY, MODEL, MakeLLM


@pytest.fixture
def attached() -> Iterator[list[RuncrateUsageHandler]]:
    """Handlers put on the root dispatcher by the test, taken off afterwards."""
    handlers: list[RuncrateUsageHandler] = []
    yield handlers
    root = get_dispatcher()
    for handler in handlers:
        root.event_handlers.remove(handler)


def attach(handler: RuncrateUsageHandler, attached: list[RuncrateUsageHandler]) -> None:
    get_dispatcher().add_event_handler(handler)
    attached.append(handler)


def test_chat_and_embeddings_reach_the_handler(
    make_llm: MakeLLM, attached: list[RuncrateUsageHandler]
) -> None:
    usage = RuncrateUsageHandler(
        prices={MODEL: {"input": 1.0, "output": 2.0}, "BAAI/bge-m3": {"input": 0.5}}
    )
    attach(usage, attached)
    llm, _ = make_llm([completion_body("hi")])
    llm.chat([ChatMessage(role="user", content="hello")])
    embedder = RuncrateEmbedding(
        model_name="BAAI/bge-m3", api_key=KEY, http_client=Recorder([echo]).client()
    )
    embedder.get_text_embedding_batch(["cat", "dog"])

    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (2, 14, 5)
    assert usage.by_model["BAAI/bge-m3"].prompt_tokens == 2
    assert usage.cost == pytest.approx((12 + 5 * 2.0 + 2 * 0.5) / 1e6, rel=1e-12)
    usage.reset()
    assert usage.requests == 0 and usage.cost == 0.0


def test_the_event_carries_the_cores_record(
    make_llm: MakeLLM, attached: list[RuncrateUsageHandler]
) -> None:
    seen: list[RuncrateUsageEvent] = []

    class Spy(RuncrateUsageHandler):
        def handle(self, event: object, **kwargs: object) -> None:
            if isinstance(event, RuncrateUsageEvent):
                seen.append(event)

    attach(Spy(), attached)
    llm, _ = make_llm(
        [
            completion_body(
                "hi",
                usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost": 0.01},
            )
        ]
    )
    llm.chat([ChatMessage(role="user", content="hello")])
    (event,) = seen
    assert (event.record.model, event.record.total_tokens, event.record.cost) == (MODEL, 7, 0.01)


def test_a_wrong_price_table_fails_when_the_handler_is_made() -> None:
    with pytest.raises(ValueError, match="did you mean 'output'"):
        RuncrateUsageHandler(prices={MODEL: {"outputs": 1.0}})


def test_a_detached_handler_changes_nothing(make_llm: MakeLLM) -> None:
    from runcrate_integrations.usage import watching

    alive = RuncrateUsageHandler()  # made, never attached
    assert not watching()  # so no stream is made to ask for usage, no record is built
    llm, rec = make_llm([completion_body("hi")])
    llm.chat([ChatMessage(role="user", content="hello")])
    assert alive.requests == 0 and len(rec.requests) == 1
