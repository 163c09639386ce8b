"""track_usage counts what the server reports, once per answer, on every call path.

The fault server answers with fixed usage, so every figure here is exact: the tracker must
show what the server said, through LangChain and LlamaIndex, sync and async, streamed or not,
batched, in worker threads and in tasks; never what another thread or an outer block did.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

import runcrate_integrations as core
from runcrate_integrations import track_usage
from runcrate_integrations.net import transport
from tests.helpers import until
from tests.reliability.cases import MODEL, ChatCase, EmbedCase, one, user
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Spec,
    chat_completion,
    chat_stream,
    error,
)

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
PRICES = {MODEL: {"input": 2.0, "output": 4.0}}  # USD per million tokens
COST = 11 * 2.0 / 1e6 + 7 * 4.0 / 1e6


def fixed(case: ChatCase, text: str = "answer", usage: dict[str, Any] | None = None) -> Spec:
    """An answer of the right kind for ``case`` carrying ``usage`` (default :data:`USAGE`)."""
    usage = usage or USAGE
    if case.streaming:
        return chat_stream([text[:3], text[3:]], usage=usage)
    return chat_completion(text, usage=usage)


def chat_requests(server: FakeOpenAIServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# ---------------------------------------------------------------------- every path, exactly


async def test_every_chat_path_counts_the_servers_usage(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(fixed(chat))
    llm = chat.model()
    with track_usage(prices=PRICES) as usage:
        assert await chat.ask(llm) == "answer"

    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        1,
        11,
        7,
        18,
    )
    assert usage.cost == pytest.approx(COST, rel=1e-12)
    assert not usage.estimated
    counts = usage.by_model[MODEL]
    assert (counts.requests, counts.total_tokens) == (1, 18)
    assert counts.cost == pytest.approx(COST, rel=1e-12)


async def test_nothing_is_counted_outside_a_block(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(fixed(chat), fixed(chat))
    llm = chat.model()
    with track_usage() as usage:
        await chat.ask(llm)
    await chat.ask(llm)  # after the block

    assert usage.requests == 1 and usage.total_tokens == 18


async def test_under_a_tracker_a_stream_asks_for_usage_even_when_told_not_to(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    llm = stream_chat.model(stream_usage=False)
    fake_server.enqueue(fixed(stream_chat), fixed(stream_chat))
    await stream_chat.ask(llm)  # untracked: as configured
    with track_usage() as usage:
        await stream_chat.ask(llm)

    untracked, tracked = (r.body for r in chat_requests(fake_server))
    assert "stream_options" not in untracked
    assert tracked["stream_options"] == {"include_usage": True}
    assert (usage.requests, usage.total_tokens, usage.estimated) == (1, 18, False)


@pytest.mark.parametrize("method", ["batch", "abatch"])
async def test_a_langchain_batch_counts_every_answer(
    fake_server: FakeOpenAIServer, method: str
) -> None:
    fake_server.default = chat_completion("ok", usage=USAGE)
    llm = ChatCase("langchain", "invoke", fake_server).model()
    prompts = [f"question {i}" for i in range(6)]
    with track_usage(prices=PRICES) as usage:
        if method == "batch":  # LangChain's worker threads copy the context
            answers = llm.batch(prompts, config={"max_concurrency": 3})
        else:
            answers = await llm.abatch(prompts, config={"max_concurrency": 3})

    assert len(answers) == 6 == len(chat_requests(fake_server))
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (6, 66, 42)
    assert usage.cost == pytest.approx(6 * COST, rel=1e-12)


async def test_tasks_started_inside_the_block_count(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("ok", usage=USAGE)
    case = ChatCase("llama_index", "ainvoke", fake_server)
    llm = case.model()
    with track_usage() as usage:
        await asyncio.gather(*(case.ask(llm, f"q{i}") for i in range(4)))

    assert (usage.requests, usage.total_tokens) == (4, 72)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-by-one", "worker-threads"])
async def test_embeddings_count_every_batch(
    embed: EmbedCase, fake_server: FakeOpenAIServer, workers: int
) -> None:
    # The echo server reports one prompt token per input.
    if embed.framework == "langchain":
        emb = embed.model(chunk_size=2, max_concurrency=workers)
    else:
        emb = embed.model(embed_batch_size=2, num_workers=workers)
    with track_usage(prices={"BAAI/bge-m3": {"input": 3.0}}) as usage:
        vectors = await embed.embed(emb, [f"text {i}" for i in range(5)])

    assert len(vectors) == 5 and fake_server.request_count == 3
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (3, 5, 0)
    assert usage.total_tokens == 5
    assert usage.cost == pytest.approx(5 * 3.0 / 1e6, rel=1e-12)


# ---------------------------------------------------------------------- cost


async def test_the_servers_cost_wins_over_the_price_table(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(fixed(whole_chat, usage={**USAGE, "cost": 0.0125}))
    with track_usage(prices=PRICES) as usage:
        await whole_chat.ask(whole_chat.model())

    assert usage.cost == 0.0125 and usage.by_model[MODEL].cost == 0.0125


async def test_a_streams_usage_chunk_carries_the_servers_cost(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(fixed(stream_chat, usage={**USAGE, "cost": 0.0125}))
    with track_usage() as usage:  # no prices: the server's figure is enough
        await stream_chat.ask(stream_chat.model())

    assert usage.cost == 0.0125


async def test_an_unknown_price_makes_the_cost_none_with_one_warning(
    fake_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    case = ChatCase("langchain", "invoke", fake_server)
    fake_server.default = chat_completion("ok", usage=USAGE)
    llm = case.model()
    with (
        caplog.at_level(logging.WARNING, "runcrate_integrations.usage"),
        track_usage(prices={"another/model": {"input": 1.0, "output": 1.0}}) as usage,
    ):
        await case.ask(llm)
        await case.ask(llm)

    assert usage.cost is None and usage.by_model[MODEL].cost is None
    assert (usage.requests, usage.total_tokens) == (2, 36)  # tokens still counted
    warnings = [r for r in caplog.records if r.name == "runcrate_integrations.usage"]
    assert len(warnings) == 1
    assert repr(MODEL) in warnings[0].getMessage()


# ---------------------------------------------------------------------- answers and attempts


async def test_a_retried_request_counts_once(
    chat: ChatCase, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)
    fake_server.enqueue(
        error(429, "rate_limited", "slow down", {"retry-after-ms": "10"}), fixed(chat)
    )
    with track_usage() as usage:
        await chat.ask(chat.model(max_retries=1))

    assert len(chat_requests(fake_server)) == 2
    assert (usage.requests, usage.total_tokens) == (1, 18)


async def test_a_failed_call_counts_nothing(chat: ChatCase, fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue(error(500, "server_error", "boom"))
    with track_usage() as usage, pytest.raises(chat.error(core.InternalServerError)):
        await chat.ask(chat.model())

    assert (usage.requests, usage.total_tokens, usage.cost) == (0, 0, 0.0)


async def test_a_stream_closed_before_its_usage_is_counted_from_an_estimate(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.enqueue(chat_stream(["Hello", " there", " friend"], usage=USAGE, chunk_delay=0.05))
    llm = ChatCase("langchain", "stream", fake_server).model()
    with track_usage(prices=PRICES) as usage:
        stream = llm.stream("Say hello to my friend, please.")
        first = next(stream)
        stream.close()  # the consumer stops early: no usage chunk was read

    assert first.content == "Hello"
    assert usage.requests == 1 and usage.estimated and usage.by_model[MODEL].estimated
    assert usage.prompt_tokens > 5  # the prompt and the chat template, estimated
    assert usage.completion_tokens >= 1  # "Hello", what was received
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.cost == pytest.approx(
        usage.prompt_tokens * 2.0 / 1e6 + usage.completion_tokens * 4.0 / 1e6, rel=1e-12
    )


async def test_an_async_stream_closed_early_is_counted_when_the_loop_closes_it(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.enqueue(chat_stream(["Hello", " there"], usage=USAGE, chunk_delay=0.05))
    case = ChatCase("llama_index", "astream", fake_server)
    llm = case.model()
    with track_usage() as usage:
        responses = await llm.astream_chat(user("hi"))
        await anext(responses)
        await responses.aclose()
        # LlamaIndex's wrapper leaves the engine's own generator to the event loop, which
        # closes it (and so counts it) on one of its next turns.
        await until(lambda: usage.requests > 0)

    assert usage.requests == 1 and usage.estimated


# ---------------------------------------------------------------------- scope


async def test_trackers_in_other_threads_never_see_each_others_calls(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.default = chat_completion("ok", usage=USAGE)
    llm = ChatCase("langchain", "invoke", fake_server).model()
    counts: dict[str, tuple[int, int]] = {}
    barrier = threading.Barrier(3)

    def work(name: str, calls: int) -> None:
        with track_usage() as usage:
            barrier.wait()  # all three blocks are open at once
            for _ in range(calls):
                llm.invoke(name)
            barrier.wait()
        counts[name] = (usage.requests, usage.total_tokens)

    with track_usage() as here:
        threads = [threading.Thread(target=work, args=(f"t{n}", n)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        barrier.wait()
        barrier.wait()
        for thread in threads:
            thread.join()

    assert counts == {"t1": (1, 18), "t2": (2, 36)}
    assert here.requests == 0  # threads not started with its context never reach it
    assert fake_server.request_count == 3


async def test_trackers_nest(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("ok", usage=USAGE)
    case = ChatCase("llama_index", "invoke", fake_server)
    llm = case.model()
    with track_usage(prices=PRICES) as outer:
        await case.ask(llm)
        with track_usage() as inner:  # no prices of its own: the outer block's apply
            await case.ask(llm)
            await case.ask(llm)
        await case.ask(llm)

    assert (outer.requests, outer.total_tokens) == (4, 72)
    assert (inner.requests, inner.total_tokens) == (2, 36)
    assert inner.cost == pytest.approx(2 * COST, rel=1e-12)
    assert outer.cost == pytest.approx(4 * COST, rel=1e-12)


async def test_a_cancelled_call_counts_nothing(fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue(chat_completion("late", usage=USAGE, delay=2.0))
    llm = ChatCase("langchain", "ainvoke", fake_server).model()
    with track_usage() as usage:
        task = asyncio.ensure_future(llm.ainvoke("hello"))
        await until(lambda: fake_server.request_count == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert (usage.requests, usage.total_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "stream"), one("llama_index", "astream")]
)
async def test_a_stream_without_a_usage_chunk_is_estimated(
    fake_server: FakeOpenAIServer, framework: Any, mode: Any
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.enqueue(chat_stream(["Hello", " world"], include_usage=False))  # a server
    with track_usage() as usage:  # that ignores stream_options
        assert await case.ask(case.model()) == "Hello world"

    assert usage.requests == 1 and usage.estimated
    assert usage.completion_tokens >= 2
