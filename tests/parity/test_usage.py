"""One count for both frameworks: the same answers give the same figures through LangChain's
``get_runcrate_callback``, LlamaIndex's ``RuncrateUsageHandler`` and ``track_usage`` itself,
on every call path; and under a tracker both adapters send the same request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher

from langchain_runcrate import get_runcrate_callback
from llama_index_runcrate import RuncrateUsageHandler
from runcrate_integrations import track_usage
from tests.reliability.cases import EmbedCase
from tests.support.fake_openai_server import FakeOpenAIServer

from .conftest import MODEL, MODES, Adapter, Mode

PRICES = {MODEL: {"input": 0.25, "output": 1.25}, "BAAI/bge-m3": {"input": 0.02}}
# What AutoRecorder reports for every answer, streamed or not: 12 prompt, 5 completion.
COST = 12 * 0.25 / 1e6 + 5 * 1.25 / 1e6


@pytest.fixture
def handler() -> Iterator[RuncrateUsageHandler]:
    """A handler attached to LlamaIndex's root dispatcher for the test, the way users do."""
    root = get_dispatcher()
    usage = RuncrateUsageHandler(prices=PRICES)
    root.add_event_handler(usage)
    yield usage
    root.event_handlers.remove(usage)


def figures(view: Any) -> tuple[Any, ...]:
    """(requests, prompt, completion, total, cost) of any of the three views."""
    if hasattr(view, "successful_requests"):  # LangChain's names
        return (
            view.successful_requests,
            view.prompt_tokens,
            view.completion_tokens,
            view.total_tokens,
            view.total_cost,
        )
    return (view.requests, view.prompt_tokens, view.completion_tokens, view.total_tokens, view.cost)


@pytest.mark.parametrize("mode", MODES)
async def test_both_frameworks_count_the_same_answers_the_same(
    pair: tuple[Adapter, Adapter], mode: Mode, handler: RuncrateUsageHandler
) -> None:
    lc, li = pair
    with get_runcrate_callback(prices=PRICES) as callback:
        await lc.call(lc.model(), mode)
        await lc.call(lc.model(), mode)
    handler.reset()  # count LlamaIndex's answers alone
    with track_usage(prices=PRICES) as tracked:
        await li.call(li.model(), mode)
        await li.call(li.model(), mode)

    expected = (2, 24, 10, 34, pytest.approx(2 * COST, rel=1e-12))
    assert figures(callback) == figures(tracked) == figures(handler) == expected
    assert str(callback) == str(tracked) == str(handler)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_under_a_tracker_both_send_the_same_stream_request(
    pair: tuple[Adapter, Adapter], mode: Mode
) -> None:
    lc, li = pair
    with track_usage():
        await lc.call(lc.model(stream_usage=False), mode)
        await li.call(li.model(stream_usage=False), mode)
    assert lc.sent().body == li.sent().body
    assert lc.sent().body["stream_options"] == {"include_usage": True}


async def test_the_handler_counts_every_thread_and_only_while_it_exists(
    pair: tuple[Adapter, Adapter], handler: RuncrateUsageHandler
) -> None:
    lc, li = pair
    llm = li.model()
    threads = [threading.Thread(target=llm.chat, args=(_messages(),)) for _ in range(3)]
    for thread in threads:  # plain threads: no context copied, none needed
        thread.start()
    for thread in threads:
        thread.join()
    await llm.achat(_messages())
    lc.model().invoke("hello")  # LangChain's answers are Runcrate answers too
    assert figures(handler)[:4] == (5, 60, 25, 85)
    root = get_dispatcher()
    root.event_handlers.remove(handler)  # detached: it hears nothing more
    llm.chat(_messages())
    root.add_event_handler(handler)
    assert figures(handler)[:4] == (5, 60, 25, 85)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_both_embeddings_classes_count_the_same(
    fake_server: FakeOpenAIServer, mode: Any
) -> None:
    seen = {}
    for framework in ("langchain", "llama_index"):
        case = EmbedCase(framework, mode, fake_server)  # type: ignore[arg-type]
        batch = {"chunk_size": 3} if framework == "langchain" else {"embed_batch_size": 3}
        with track_usage(prices=PRICES) as usage:
            await case.embed(case.model(**batch), [f"text {i}" for i in range(7)])
        seen[framework] = figures(usage)
    assert (
        seen["langchain"]
        == seen["llama_index"]
        == (3, 7, 0, 7, pytest.approx(7 * 0.02 / 1e6, rel=1e-12))
    )


def _messages() -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role="user", content="hello")]
