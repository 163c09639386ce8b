"""get_runcrate_callback: LangChain's names over the core's count, budget included."""

from __future__ import annotations

import pytest

from langchain_runcrate import BudgetExceededError, RuncrateEmbeddings, get_runcrate_callback
from tests.helpers import Recorder, completion_body
from tests.unit.embeddings.replies import embedding_body

from .conftest import KEY, MODEL, MakeChat

PRICES = {MODEL: {"input": 1.0, "output": 3.0}}


def test_the_callback_shows_langchains_names(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("a"), completion_body("b")])  # 12 + 5 tokens each
    with get_runcrate_callback(prices=PRICES) as cb:
        llm.invoke("one")
        llm.invoke("two")
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (24, 10, 34)
    assert cb.successful_requests == 2
    assert cb.total_cost == pytest.approx((24 * 1.0 + 10 * 3.0) / 1e6, rel=1e-12)
    assert cb.by_model[MODEL].requests == 2 and not cb.estimated
    assert str(cb) == (
        "Runcrate usage: 2 requests, 34 tokens (24 prompt, 10 completion), $0.000054"
    )


def test_an_unpriced_model_shows_no_cost_rather_than_zero(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("a")])
    with get_runcrate_callback() as cb:
        llm.invoke("one")
    assert cb.total_cost is None and "cost unknown" in str(cb)


def test_the_callback_takes_a_budget(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body("a")])
    with get_runcrate_callback(prices=PRICES, budget=0.0) as cb, pytest.raises(BudgetExceededError):
        llm.invoke("one", max_tokens=5)
    assert rec.requests == [] and cb.successful_requests == 0


async def test_a_with_block_per_call_keeps_no_state_behind(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("a")] * 3)
    for _ in range(3):
        with get_runcrate_callback() as cb:
            await llm.ainvoke("one")
        assert cb.successful_requests == 1  # each block sees its own call only


def test_embeddings_count_in_the_callback_too(make_chat: MakeChat) -> None:
    # The callback is a view of the core's count, so embeddings (which LangChain's callbacks
    # never see) count in it as chat does.
    rec = Recorder([embedding_body([[1.0], [2.0]], model="BAAI/bge-m3")])
    embeddings = RuncrateEmbeddings(
        model="BAAI/bge-m3", api_key=KEY, max_retries=0, http_client=rec.client()
    )
    llm, _ = make_chat([completion_body("a")])
    prices = {**PRICES, "BAAI/bge-m3": {"input": 0.5}}
    with get_runcrate_callback(prices=prices) as cb:
        assert embeddings.embed_documents(["a", "b"]) == [[1.0], [2.0]]
        llm.invoke("one")
    assert cb.successful_requests == 2
    assert (cb.prompt_tokens, cb.completion_tokens) == (2 + 12, 5)
    assert cb.by_model["BAAI/bge-m3"].prompt_tokens == 2
    assert cb.total_cost == pytest.approx((2 * 0.5 + 12 * 1.0 + 5 * 3.0) / 1e6, rel=1e-12)


def test_no_langchain_hook_is_added_by_a_with_block(make_chat: MakeChat) -> None:
    # langchain-core's own get_usage_metadata_callback registers a configure hook on every
    # use; this one registers none, at import or per block.
    from langchain_core.tracers import context

    hooks = list(context._configure_hooks)
    llm, _ = make_chat([completion_body("a")] * 3)
    for _ in range(3):
        with get_runcrate_callback() as cb:
            llm.invoke("one")
        assert cb.successful_requests == 1
    assert context._configure_hooks == hooks
