"""A budget is a hard stop: what would pass it is never sent.

Prices here are set so that a call's worst case (what it holds while in flight) and its
answer's cost are exact: input is free, and every answer uses all its ``max_tokens``. Then
"how many calls fit" is arithmetic, whatever the concurrency, and every test checks the exact
number of requests the server received (0 when refused).
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

import runcrate_integrations as core
from runcrate_integrations import BudgetExceededError, track_usage
from tests.helpers import until
from tests.reliability.cases import MODEL, ChatCase, EmbedCase
from tests.support.fake_openai_server import (
    DEFAULT_MODELS,
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Spec,
    chat_completion,
    chat_stream,
    error,
)

MAX_TOKENS = 10
PRICES = {MODEL: {"input": 0.0, "output": 100.0}}  # USD per million tokens
CALL = MAX_TOKENS * 100.0 / 1e6  # what one call holds, and what its answer costs
USAGE = {"prompt_tokens": 9, "completion_tokens": MAX_TOKENS, "total_tokens": 9 + MAX_TOKENS}


def chat_requests(server: FakeOpenAIServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def answer(case: ChatCase, usage: dict[str, Any] | None = None) -> Spec:
    usage = usage or USAGE
    if case.streaming:
        return chat_stream(["fine"], usage=usage)
    return chat_completion("fine", usage=usage)


async def test_once_the_budget_is_spent_no_call_is_sent(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = answer(chat)
    llm = chat.model(max_tokens=MAX_TOKENS)
    with track_usage(prices=PRICES, budget=2 * CALL) as usage:
        await chat.ask(llm)
        await chat.ask(llm)
        with pytest.raises(BudgetExceededError) as refused:
            await chat.ask(llm)

    assert len(chat_requests(fake_server)) == 2
    assert usage.requests == 2 and usage.cost == pytest.approx(2 * CALL)
    message = str(refused.value)
    assert "Budget reached: $0.002 spent of $0.002." in message
    assert "Nothing was sent" in message
    assert (refused.value.spent, refused.value.budget, refused.value.model) == (
        pytest.approx(2 * CALL),
        pytest.approx(2 * CALL),
        MODEL,
    )
    assert isinstance(refused.value, core.RuncrateError)


async def test_a_call_whose_worst_case_would_pass_the_budget_is_refused(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    llm = whole_chat.model(max_tokens=MAX_TOKENS)
    with track_usage(prices=PRICES, budget=0.5 * CALL), pytest.raises(BudgetExceededError) as no:
        await whole_chat.ask(llm)

    assert fake_server.request_count == 0
    assert f"A call to {MODEL!r} may cost up to $0.001," in str(no.value)
    assert "set max_tokens to hold less" in str(no.value)


@pytest.mark.parametrize("method", ["batch", "abatch"])
async def test_a_batch_of_30_sends_only_what_the_budget_allows(
    fake_server: FakeOpenAIServer, method: str
) -> None:
    fake_server.default = chat_completion("fine", usage=USAGE, delay=0.02)
    llm = ChatCase("langchain", "invoke", fake_server).model(max_tokens=MAX_TOKENS)
    prompts = [f"question {i}" for i in range(30)]
    config: Any = {"max_concurrency": 8}
    with track_usage(prices=PRICES, budget=3.5 * CALL) as usage:
        if method == "batch":
            results = llm.batch(prompts, config=config, return_exceptions=True)
        else:
            results = await llm.abatch(prompts, config=config, return_exceptions=True)

    # Three calls' worst cases fit in 3.5 calls; the fourth never, in flight or answered.
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(refused) == 27 and len(results) == 30
    assert len(chat_requests(fake_server)) == 3 == usage.requests
    assert usage.cost == pytest.approx(3 * CALL)


async def test_a_refused_call_holds_nothing(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("fine", usage=USAGE)
    case = ChatCase("langchain", "invoke", fake_server)
    with track_usage(prices=PRICES, budget=1.5 * CALL) as usage:
        with pytest.raises(BudgetExceededError):
            await case.ask(case.model(max_tokens=2 * MAX_TOKENS))  # holds 2 calls' worth
        await case.ask(case.model(max_tokens=MAX_TOKENS))  # fits: nothing was held

    assert len(chat_requests(fake_server)) == 1 and usage.requests == 1


async def test_a_failed_call_gives_its_hold_back(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(error(500, "server_error", "boom"), answer(chat))
    llm = chat.model(max_tokens=MAX_TOKENS)
    with track_usage(prices=PRICES, budget=1.5 * CALL) as usage:  # one call at a time
        with pytest.raises(chat.error(core.InternalServerError)):
            await chat.ask(llm)
        await chat.ask(llm)

    assert len(chat_requests(fake_server)) == 2 and usage.requests == 1


async def test_a_cancelled_call_gives_its_hold_back(fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue(chat_completion("late", usage=USAGE, delay=2.0))
    fake_server.enqueue(chat_completion("fine", usage=USAGE))
    llm = ChatCase("langchain", "ainvoke", fake_server).model(max_tokens=MAX_TOKENS)
    with track_usage(prices=PRICES, budget=1.5 * CALL) as usage:
        task = asyncio.ensure_future(llm.ainvoke("slow"))
        await until(lambda: fake_server.request_count == 1)
        with pytest.raises(BudgetExceededError):  # the slow call holds the budget
            await llm.ainvoke("meanwhile")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await llm.ainvoke("after")).content == "fine"

    assert fake_server.request_count == 2 and usage.requests == 1


async def test_a_stream_closed_early_gives_its_hold_back(fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue(chat_stream(["a", "b", "c"], usage=USAGE, chunk_delay=0.05))
    fake_server.enqueue(chat_completion("fine", usage=USAGE))
    llm = ChatCase("langchain", "stream", fake_server).model(max_tokens=MAX_TOKENS)
    with track_usage(prices={MODEL: {"input": 0.0, "output": 100.0}}, budget=1.5 * CALL) as usage:
        stream = llm.stream("go")
        next(stream)
        stream.close()
        assert llm.invoke("again").content == "fine"

    assert fake_server.request_count == 2 and usage.requests == 2 and usage.estimated


async def test_without_max_tokens_a_call_holds_the_rest_of_the_context_window(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # The fault server's catalog gives the model 131,072 tokens: at $100 per million output
    # tokens a call may cost ~$13.1, so a $10 budget refuses it and a $20 one lets it through.
    spec = answer(whole_chat)
    catalog = JSONResponse({"object": "list", "data": DEFAULT_MODELS})
    fake_server.default = lambda request: catalog if request.method == "GET" else spec
    llm = whole_chat.model()
    with track_usage(prices=PRICES, budget=10.0), pytest.raises(BudgetExceededError) as no:
        await whole_chat.ask(llm)
    assert "set max_tokens to hold less" in str(no.value)
    assert chat_requests(fake_server) == []  # only the catalog was read
    with track_usage(prices=PRICES, budget=20.0) as usage:
        await whole_chat.ask(llm)
    assert usage.requests == 1


async def test_a_model_without_a_price_stops_a_budget(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = answer(whole_chat)
    llm = whole_chat.model(max_tokens=MAX_TOKENS)
    with track_usage(budget=1.0) as usage:
        await whole_chat.ask(llm)  # sent alone: its cost cannot be bounded before
        with pytest.raises(BudgetExceededError) as stop:
            await whole_chat.ask(llm)

    assert len(chat_requests(fake_server)) == 1 and usage.cost is None
    assert f"an answer from {MODEL!r} has an unknown cost" in str(stop.value)
    assert f"track_usage(prices={{{MODEL!r}: {{...}}}})" in str(stop.value)


async def test_with_the_servers_cost_a_budget_needs_no_price(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("fine", usage={**USAGE, "cost": 0.4})
    case = ChatCase("llama_index", "invoke", fake_server)
    llm = case.model(max_tokens=MAX_TOKENS)
    with track_usage(budget=1.0) as usage:
        for _ in range(3):
            await case.ask(llm)
        with pytest.raises(BudgetExceededError, match=r"Budget reached: \$1\.20 spent"):
            await case.ask(llm)

    assert len(chat_requests(fake_server)) == 3 and usage.cost == pytest.approx(1.2)


async def test_unpriced_calls_under_a_budget_are_sent_one_at_a_time(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.enqueue(chat_completion("slow", usage={**USAGE, "cost": 0.1}, delay=0.3))
    llm = ChatCase("langchain", "ainvoke", fake_server).model(max_tokens=MAX_TOKENS)
    with track_usage(budget=1.0) as usage:
        first = asyncio.ensure_future(llm.ainvoke("one"))
        await until(lambda: fake_server.request_count == 1)
        with pytest.raises(BudgetExceededError, match="cannot be bounded"):
            await llm.ainvoke("two")
        await first

    assert fake_server.request_count == 1 and usage.cost == pytest.approx(0.1)


async def test_an_inner_budget_binds_only_its_own_block(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("fine", usage=USAGE)
    case = ChatCase("langchain", "invoke", fake_server)
    llm = case.model(max_tokens=MAX_TOKENS)
    with track_usage(prices=PRICES) as outer:
        with track_usage(budget=CALL), pytest.raises(BudgetExceededError):
            await case.ask(llm)
            await case.ask(llm)
        await case.ask(llm)  # the outer block has no budget
        await case.ask(llm)

    assert outer.requests == 3 and len(chat_requests(fake_server)) == 3


async def test_an_outer_budget_binds_inner_blocks(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = chat_completion("fine", usage=USAGE)
    case = ChatCase("llama_index", "invoke", fake_server)
    llm = case.model(max_tokens=MAX_TOKENS)
    with (
        track_usage(prices=PRICES, budget=CALL) as outer,
        track_usage() as inner,
        pytest.raises(BudgetExceededError),
    ):
        await case.ask(llm)
        await case.ask(llm)

    assert (outer.requests, inner.requests, fake_server.request_count) == (1, 1, 1)


async def test_embeddings_are_held_and_refused_too(
    embed: EmbedCase, fake_server: FakeOpenAIServer
) -> None:
    if embed.framework == "langchain":
        emb = embed.model(chunk_size=1, max_concurrency=1)
    else:
        emb = embed.model(embed_batch_size=1, num_workers=1)
    # One token per text (the echo server's usage) at $1 per token; the estimate held for
    # "text N" is 2-3 tokens, so a $4 budget admits the first requests and then refuses.
    with track_usage(prices={"BAAI/bge-m3": {"input": 1e6}}, budget=4.0) as usage:
        with pytest.raises(BudgetExceededError):
            await embed.embed(emb, [f"text {i}" for i in range(10)])
        # LlamaIndex's async batch lets the error out while admitted requests still run.
        await until(lambda: usage.in_flight == 0)

    assert fake_server.request_count == usage.requests
    assert 1 <= usage.requests < 10 and usage.cost is not None and usage.cost <= 4.0


def test_the_error_pickles_with_its_figures() -> None:
    with track_usage(budget=0.0), pytest.raises(BudgetExceededError) as refused:
        core.usage.open_meter("some/model", core.usage.UsageRecord("some/model", 0))
    copy = pickle.loads(pickle.dumps(refused.value))
    assert type(copy) is BudgetExceededError
    assert str(copy) == str(refused.value)
    assert (copy.model, copy.spent, copy.budget) == ("some/model", 0.0, 0.0)
