"""RuncrateLLM's LLM protocol over MockTransport: bodies, parsed answers, streams, events,
metadata, usage and logprobs (sync and async)."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ThinkingBlock
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.llms.function_calling import FunctionCallingLLM

from llama_index_runcrate.llms import DEFAULT_CONTEXT_WINDOW
from runcrate_integrations import StreamInterruptedError
from tests.helpers import chunk, completion_body, sse, text_chunks

from .conftest import MODEL, EventLog, MakeLLM

HELLO = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi")]
WIRE_HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
STREAM_TAIL = {"stream": True, "stream_options": {"include_usage": True}}


def test_is_a_function_calling_llm(make_llm: MakeLLM) -> None:
    llm, _ = make_llm()
    assert isinstance(llm, FunctionCallingLLM)
    assert llm.class_name() == "runcrate_llm"


# ---------------------------------------------------------------------------- chat


def test_chat_sends_exact_body_and_parses_answer(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("Hello!")], temperature=0.3, max_tokens=64)
    response = llm.chat(HELLO)
    assert rec.body == {
        "model": MODEL,
        "messages": WIRE_HELLO,
        "temperature": 0.3,
        "max_tokens": 64,
    }
    assert rec.requests[0].url.path == "/v1/chat/completions"
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Hello!"
    assert response.additional_kwargs == {**USAGE, "finish_reason": "stop"}
    assert response.raw == completion_body("Hello!")


async def test_achat_sends_exact_body_and_parses_answer(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("Hello!")], top_p=0.9)
    response = await llm.achat(HELLO, seed=7)
    assert rec.body == {"model": MODEL, "messages": WIRE_HELLO, "top_p": 0.9, "seed": 7}
    assert response.message.content == "Hello!"
    assert response.additional_kwargs["total_tokens"] == 17


def test_chat_reasoning_becomes_thinking_block(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([completion_body("4", reasoning_content="2+2")])
    response = llm.chat(HELLO)
    assert response.message.blocks[0] == ThinkingBlock(content="2+2")
    assert response.message.additional_kwargs["reasoning_content"] == "2+2"
    assert response.message.content == "4"


# ---------------------------------------------------------------------------- streams


def _check_stream(responses: list[Any]) -> None:
    assert [r.delta for r in responses] == ["Hel", "lo", ""]
    assert [r.message.content for r in responses] == ["Hel", "Hello", "Hello"]
    assert responses[-1].additional_kwargs == {**USAGE, "finish_reason": "stop"}


def test_stream_chat(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(text_chunks(["Hel", "lo"]))])
    responses = list(llm.stream_chat(HELLO))
    assert rec.body == {"model": MODEL, "messages": WIRE_HELLO, **STREAM_TAIL}
    _check_stream(responses)


async def test_astream_chat(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(text_chunks(["Hel", "lo"]))])
    responses = [r async for r in await llm.astream_chat(HELLO)]
    assert rec.body == {"model": MODEL, "messages": WIRE_HELLO, **STREAM_TAIL}
    _check_stream(responses)


def test_stream_reasoning_in_blocks_and_thinking_delta(make_llm: MakeLLM) -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "hm"}),
        chunk({"content": "4"}),
        chunk({}, finish_reason="stop"),
    ]
    llm, _ = make_llm([sse(chunks)])
    responses = list(llm.stream_chat(HELLO))
    assert responses[0].additional_kwargs == {"thinking_delta": "hm"}
    assert responses[-1].message.blocks[0] == ThinkingBlock(content="hm")
    assert responses[-1].message.additional_kwargs == {"reasoning_content": "hm"}


def test_stream_cut_before_finish_raises(make_llm: MakeLLM) -> None:
    cut = [chunk({"role": "assistant", "content": ""}), chunk({"content": "half"})]
    llm, _ = make_llm([sse(cut, done=True)])
    seen = []
    with pytest.raises(StreamInterruptedError):
        for response in llm.stream_chat(HELLO):
            seen.append(response.delta)
    assert seen == ["half"]


async def test_astream_cut_before_finish_raises(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse([chunk({"content": "half"})], done=False)])
    with pytest.raises(StreamInterruptedError):
        async for _ in await llm.astream_chat(HELLO):
            pass


# ---------------------------------------------------------------------------- complete


def test_complete(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("done")])
    response = llm.complete("do it")
    assert rec.body == {"model": MODEL, "messages": [{"role": "user", "content": "do it"}]}
    assert response.text == "done"
    assert response.additional_kwargs["prompt_tokens"] == 12


async def test_acomplete(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("done")])
    response = await llm.acomplete("do it", max_tokens=5)
    assert rec.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "do it"}],
        "max_tokens": 5,
    }
    assert response.text == "done"


def test_stream_complete(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(text_chunks(["a", "b"]))])
    out = [(r.delta, r.text) for r in llm.stream_complete("go")]
    assert rec.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "go"}],
        **STREAM_TAIL,
    }
    assert out == [("a", "a"), ("b", "ab"), ("", "ab")]


async def test_astream_complete(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse(text_chunks(["a", "b"]))])
    out = [(r.delta, r.text) async for r in await llm.astream_complete("go")]
    assert out == [("a", "a"), ("b", "ab"), ("", "ab")]


# ---------------------------------------------------------------------------- events


def test_callbacks_and_instrumentation_fire(make_llm: MakeLLM, event_log: EventLog) -> None:
    debug = LlamaDebugHandler()
    llm, _ = make_llm(
        [completion_body("x"), sse(text_chunks(["a"])), completion_body("y")],
        callback_manager=CallbackManager([debug]),
    )
    llm.chat(HELLO)
    list(llm.stream_chat(HELLO))
    llm.complete("p")
    assert len(debug.get_event_pairs(CBEventType.LLM)) == 3
    assert event_log.names == [
        "LLMChatStartEvent",
        "LLMChatEndEvent",
        "LLMChatStartEvent",
        "LLMChatInProgressEvent",
        "LLMChatInProgressEvent",
        "LLMChatEndEvent",
        "LLMCompletionStartEvent",
        "LLMCompletionEndEvent",
    ]
    payload = event_log.events[0].model_dict  # type: ignore[attr-defined]  # LLMChatStartEvent
    assert payload["model_name"] == MODEL


async def test_async_events_fire(make_llm: MakeLLM, event_log: EventLog) -> None:
    llm, _ = make_llm([completion_body("x"), sse(text_chunks(["a"]))])
    await llm.achat(HELLO)
    [r async for r in await llm.astream_complete("p")]
    assert event_log.names == [
        "LLMChatStartEvent",
        "LLMChatEndEvent",
        "LLMCompletionStartEvent",
        "LLMCompletionInProgressEvent",
        "LLMCompletionInProgressEvent",
        "LLMCompletionEndEvent",
    ]


# ---------------------------------------------------------------------------- metadata


MODELS = {
    "object": "list",
    "data": [
        {"id": MODEL, "context_length": 163840, "supported_features": ["tools", "json_schema"]},
        {"id": "vendor/no-tools", "context_length": 8192, "supported_features": ["json_schema"]},
    ],
}


def test_metadata_fallbacks_without_catalog(make_llm: MakeLLM) -> None:
    llm, _ = make_llm()
    meta = llm.metadata
    assert (
        meta.context_window,
        meta.num_output,
        meta.is_chat_model,
        meta.is_function_calling_model,
        meta.model_name,
    ) == (DEFAULT_CONTEXT_WINDOW, 256, True, True, MODEL)
    llm.max_tokens = 1000
    assert llm.metadata.num_output == 1000


def test_metadata_from_catalog(make_llm: MakeLLM) -> None:
    llm, rec = make_llm()
    rec.models = MODELS["data"]
    assert rec.catalog_requests == []  # building the LLM sends nothing
    assert llm.metadata.context_window == 163840  # fetched on first read
    assert llm.metadata.is_function_calling_model is True
    assert len(rec.catalog_requests) == 1
    info = llm.fetch_model_info(refresh=True)
    assert info is not None and info.context_length == 163840
    assert len(rec.catalog_requests) == 2
    assert llm.fetch_model_info(refresh=True) is not None
    no_tools, rec2 = make_llm(model="vendor/no-tools")  # same base URL: the cached catalog
    assert no_tools.metadata.context_window == 8192
    assert no_tools.metadata.is_function_calling_model is False
    assert rec2.catalog_requests == []
    unknown, _ = make_llm(model="not/listed")
    assert unknown.fetch_model_info() is None  # documented: None for an id the catalog lacks
    assert unknown.metadata.context_window == DEFAULT_CONTEXT_WINDOW


def test_events_never_fetch_the_catalog(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("hi")])
    rec.models = MODELS["data"]
    llm.chat(HELLO)  # instrumentation reads to_payload() on every call
    assert rec.catalog_requests == []


async def test_metadata_from_catalog_async_and_user_overrides(make_llm: MakeLLM) -> None:
    llm, rec = make_llm(
        model="vendor/no-tools", context_window=4000, is_function_calling_model=True
    )
    rec.models = MODELS["data"]
    assert await llm.afetch_model_info() is not None
    assert llm.metadata.context_window == 4000
    assert llm.metadata.is_function_calling_model is True


# ---------------------------------------------------------------------------- usage, logprobs


LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.5,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}],
        }
    ]
}


def test_logprobs_when_asked(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("Hi", logprobs=LOGPROBS)] * 2, top_logprobs=1)
    response = llm.chat(HELLO)
    assert rec.body == {"model": MODEL, "messages": WIRE_HELLO, "logprobs": True, "top_logprobs": 1}
    assert response.logprobs is not None
    assert [(lp.token, lp.logprob) for lp in response.logprobs[0]] == [("Hi", -0.5)]
    completion = llm.complete("x")
    assert completion.logprobs == response.logprobs


def test_logprobs_flag_alone_and_off_by_default(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("a"), completion_body("b")], logprobs=True)
    llm.chat(HELLO)
    assert rec.body == {"model": MODEL, "messages": WIRE_HELLO, "logprobs": True}
    plain, rec2 = make_llm([completion_body("a")])
    plain.chat(HELLO)
    # What is sent shows "off by default"; the answer's logprobs=None cannot (the reply has none).
    assert rec2.body == {"model": MODEL, "messages": WIRE_HELLO}


def test_stream_logprobs_per_chunk_and_folded(make_llm: MakeLLM) -> None:
    # Two chunks with a token each: with one, "folded" would equal "the first chunk's" and
    # "the last chunk's" alike, whatever the fold did.
    first, second = chunk({"content": "Hi"}), chunk({"content": " you"})
    first["choices"][0]["logprobs"] = LOGPROBS
    second["choices"][0]["logprobs"] = {
        "content": [
            {"token": " you", "logprob": -1.5, "bytes": [32, 121, 111, 117], "top_logprobs": []}
        ]
    }
    llm, _ = make_llm([sse([first, second, chunk({}, finish_reason="stop")])], logprobs=True)
    responses = list(llm.stream_chat(HELLO))

    def tokens(response: Any) -> list[list[tuple[str, float]]] | None:
        if response.logprobs is None:
            return None
        return [[(lp.token, lp.logprob) for lp in alts] for alts in response.logprobs]

    assert [tokens(r) for r in responses] == [
        [[("Hi", -0.5)]],  # each chunk: its own token
        [[(" you", -1.5)]],
        [[("Hi", -0.5)], [(" you", -1.5)]],  # the whole answer: both, in order
    ]


async def test_usage_and_raw_async_stream(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse(text_chunks(["a"]))])
    responses = [r async for r in await llm.astream_chat(HELLO)]
    assert responses[-1].additional_kwargs == {**USAGE, "finish_reason": "stop"}
    assert responses[-1].raw["usage"] == USAGE  # the usage chunk, for LlamaIndex token counting


def test_token_counting_handler_reads_usage_in_chat_and_stream(make_llm: MakeLLM) -> None:
    from llama_index.core.callbacks import TokenCountingHandler

    counter = TokenCountingHandler()
    llm, _ = make_llm(
        [completion_body("x"), sse(text_chunks(["a"]))], callback_manager=CallbackManager([counter])
    )
    llm.chat(HELLO)
    list(llm.stream_chat(HELLO))
    assert [(e.prompt_token_count, e.completion_token_count) for e in counter.llm_token_counts] == [
        (12, 5),
        (12, 5),
    ]
