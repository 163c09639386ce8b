"""stream / astream: token chunks, usage, reasoning, tool-call chunks, cut streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.exceptions import ModelConnectionError
from langchain_core.messages import AIMessageChunk

from langchain_runcrate import RuncrateStreamInterruptedError
from runcrate_integrations import StreamInterruptedError
from tests.helpers import chunk, sse, text_chunks

from .conftest import MODEL, MakeChat

STREAM_BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
USAGE = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return total


def test_stream_tokens_and_usage(make_chat: MakeChat) -> None:
    llm, rec = make_chat([sse(text_chunks(["Hel", "lo", "!"]))])
    chunks = list(llm.stream("hi"))
    assert rec.body == STREAM_BODY
    assert [c.content for c in chunks if c.content] == ["Hel", "lo", "!"]
    whole = merge(chunks)
    assert whole.content == "Hello!"
    assert whole.usage_metadata == USAGE
    assert whole.response_metadata == {
        "model_provider": "runcrate",
        "finish_reason": "stop",
        "model_name": MODEL,
        "id": "chatcmpl-123",
        "system_fingerprint": "fp_rc1",
    }
    assert whole.chunk_position == "last"


async def test_astream_tokens_and_usage(make_chat: MakeChat) -> None:
    llm, rec = make_chat([sse(text_chunks(["a", "b"]))])
    chunks = [c async for c in llm.astream("hi")]
    assert rec.body == STREAM_BODY
    assert [c.content for c in chunks if c.content] == ["a", "b"]
    assert merge(chunks).usage_metadata == USAGE


def test_stream_usage_false_asks_for_none(make_chat: MakeChat) -> None:
    llm, rec = make_chat([sse(text_chunks(["x"], usage=False))], stream_usage=False)
    chunks = list(llm.stream("hi"))
    assert rec.body == {k: v for k, v in STREAM_BODY.items() if k != "stream_options"}
    assert merge(chunks).usage_metadata is None


async def test_stream_usage_per_call(make_chat: MakeChat) -> None:
    llm, rec = make_chat([sse(text_chunks(["x"], usage=False))])
    [c async for c in llm.astream("hi", stream_usage=False)]
    assert "stream_options" not in rec.body


def test_cumulative_usage_is_reported_once(make_chat: MakeChat) -> None:
    # Some servers repeat the running usage on several chunks; it must not be summed.
    raws = text_chunks(["a"], usage=False)
    raws[-1]["usage"] = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    raws.append(chunk(usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}))
    llm, _ = make_chat([sse(raws)])
    assert merge(list(llm.stream("hi"))).usage_metadata == USAGE


REASONING_STREAM = [
    chunk({"role": "assistant", "content": "", "reasoning_content": "Let me "}),
    chunk({"reasoning_content": "think."}),
    chunk({"content": "42"}),
    chunk({}, finish_reason="stop"),
    chunk(
        usage={
            "prompt_tokens": 9,
            "completion_tokens": 30,
            "total_tokens": 39,
            "completion_tokens_details": {"reasoning_tokens": 25},
        }
    ),
]


def test_stream_reasoning_kept_and_in_content_blocks(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(REASONING_STREAM)])
    chunks = list(llm.stream("hi"))
    assert chunks[0].content_blocks == [{"type": "reasoning", "reasoning": "Let me "}]
    whole = merge(chunks)
    assert whole.additional_kwargs == {"reasoning_content": "Let me think."}
    assert whole.content_blocks == [
        {"type": "reasoning", "reasoning": "Let me think."},
        {"type": "text", "text": "42"},
    ]
    assert whole.usage_metadata == {
        "input_tokens": 9,
        "output_tokens": 30,
        "total_tokens": 39,
        "output_token_details": {"reasoning": 25},
    }


async def test_astream_reasoning(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(REASONING_STREAM)])
    whole = merge([c async for c in llm.astream("hi")])
    assert whole.content_blocks[0] == {"type": "reasoning", "reasoning": "Let me think."}


TOOL_STREAM = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
                }
            ]
        }
    ),
    chunk({}, finish_reason="tool_calls"),
]


def test_streamed_tool_calls_merge_into_whole_calls(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(TOOL_STREAM)])
    chunks = list(llm.stream("weather?"))
    assert chunks[0].tool_call_chunks == [
        {"name": "get_weather", "args": "", "id": "call_a", "index": 0, "type": "tool_call_chunk"}
    ]
    whole = merge(chunks)
    assert whole.tool_calls == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_a", "type": "tool_call"},
        {"name": "get_time", "args": {"tz": "CET"}, "id": "call_b", "type": "tool_call"},
    ]
    assert whole.response_metadata["finish_reason"] == "tool_calls"


async def test_astreamed_tool_calls_merge(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(TOOL_STREAM)])
    whole = merge([c async for c in llm.astream("weather?")])
    assert [tc["name"] for tc in whole.tool_calls] == ["get_weather", "get_time"]


def test_streamed_broken_tool_json_is_an_invalid_call(make_chat: MakeChat) -> None:
    raws = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": "city=Oslo"},
                    }
                ]
            }
        ),
        chunk({}, finish_reason="tool_calls"),
    ]
    llm, _ = make_chat([sse(raws)])
    whole = merge(list(llm.stream("x")))
    assert whole.tool_calls == []
    assert whole.invalid_tool_calls == [
        {"name": "f", "args": "city=Oslo", "id": "c", "error": None, "type": "invalid_tool_call"}
    ]


@pytest.mark.parametrize("done", [True, False])
def test_stream_without_finish_reason_raises_after_yielding(
    make_chat: MakeChat, done: bool
) -> None:
    raws = text_chunks(["par", "tial"], usage=False)[:-1]  # no finish_reason chunk
    llm, _ = make_chat([sse(raws, done=done)])
    seen: list[str] = []
    with pytest.raises(RuncrateStreamInterruptedError) as info:
        for c in llm.stream("hi"):
            seen.append(str(c.content))
    assert seen == ["par", "tial"]
    assert isinstance(info.value, StreamInterruptedError)
    assert isinstance(info.value, ModelConnectionError)
    assert isinstance(info.value.__cause__, StreamInterruptedError)


async def test_astream_without_finish_reason_raises(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(text_chunks(["x"], usage=False)[:-1])])
    seen = []
    with pytest.raises(RuncrateStreamInterruptedError, match="no finish_reason"):
        async for c in llm.astream("hi"):
            seen.append(c.content)
    assert seen == ["x"]


class _Dropping(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """Sends the first SSE events, then the connection drops."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.data = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.data
        raise httpx2.RemoteProtocolError("peer closed connection")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.data:
            yield part
        raise httpx2.RemoteProtocolError("peer closed connection")

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def _dropping_response() -> tuple[httpx2.Response, _Dropping]:
    stream = _Dropping(text_chunks(["a", "b"])[:3])
    headers = {"content-type": "text/event-stream"}
    return httpx2.Response(200, stream=stream, headers=headers), stream


def test_dropped_connection_mid_stream(make_chat: MakeChat) -> None:
    response, _ = _dropping_response()
    llm, _ = make_chat([response])
    seen = []
    with pytest.raises(RuncrateStreamInterruptedError, match="connection dropped"):
        for c in llm.stream("hi"):
            seen.append(c.content)
    assert seen == ["a", "b"]


async def test_adropped_connection_mid_stream(make_chat: MakeChat) -> None:
    response, _ = _dropping_response()
    llm, _ = make_chat([response])
    with pytest.raises(RuncrateStreamInterruptedError):
        [c async for c in llm.astream("hi")]


async def test_abandoned_astream_closes_the_response(make_chat: MakeChat) -> None:
    response, stream = _dropping_response()
    llm, _ = make_chat([response])
    agen = llm.astream("hi")
    async for _ in agen:
        break
    await agen.aclose()
    assert stream.closed


def test_abandoned_stream_closes_the_response(make_chat: MakeChat) -> None:
    response, stream = _dropping_response()
    llm, _ = make_chat([response])
    gen = llm.stream("hi")
    next(gen)
    gen.close()
    assert stream.closed


class _Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class _ATokens(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_callbacks_see_each_token_once(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(text_chunks(["a", "b"]))])
    handler = _Tokens()
    list(llm.stream("hi", config={"callbacks": [handler]}))
    assert [t for t in handler.tokens if t] == ["a", "b"]


async def test_async_callbacks_see_each_token_once(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(text_chunks(["a", "b"]))], streaming=True)
    handler = _ATokens()
    message = await llm.ainvoke("hi", config={"callbacks": [handler]})
    assert message.content == "ab"
    assert [t for t in handler.tokens if t] == ["a", "b"]


def test_stream_logprobs_merge(make_chat: MakeChat) -> None:
    lp = [{"token": t, "logprob": -0.5, "bytes": None, "top_logprobs": []} for t in "ab"]
    raws = [
        {
            **chunk({"content": "a"}),
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "a"},
                    "logprobs": {"content": [lp[0]]},
                    "finish_reason": None,
                }
            ],
        },
        {
            **chunk({"content": "b"}),
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "b"},
                    "logprobs": {"content": [lp[1]]},
                    "finish_reason": "stop",
                }
            ],
        },
    ]
    llm, rec = make_chat([sse(raws)], logprobs=True)
    whole = merge(list(llm.stream("hi")))
    assert rec.body["logprobs"] is True
    assert whole.response_metadata["logprobs"] == {"content": lp}


def test_streamed_refusal_is_kept(make_chat: MakeChat) -> None:
    raws = [
        chunk({"role": "assistant", "content": None, "refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk({}, finish_reason="stop"),
    ]
    llm, _ = make_chat([sse(raws)])
    whole = merge(list(llm.stream("x")))
    assert whole.additional_kwargs == {"refusal": "I can't help with that."}
    assert whole.usage_metadata is None


def test_v1_tool_call_after_text_stays_its_own_block(make_chat: MakeChat) -> None:
    # Some servers write a little text before a tool call; with v1 content blocks the tool
    # call must not share the text block's index (and be merged into it).
    from tests.helpers import chunk, sse

    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"x": 3}'},
    }
    llm, _ = make_chat(
        [
            sse(
                [
                    chunk({"role": "assistant", "content": "```json\n"}),
                    chunk({"tool_calls": [call]}),
                    chunk({}, finish_reason="tool_calls"),
                ]
            )
        ],
        output_version="v1",
    )
    full = None
    for c in llm.stream("hi"):
        full = c if full is None else full + c
    assert full is not None
    assert [b["type"] for b in full.content_blocks] == ["text", "tool_call"]
    assert full.tool_calls == [{"name": "f", "args": {"x": 3}, "id": "call_1", "type": "tool_call"}]


def test_v0_tool_call_chunks_keep_the_servers_index(make_chat: MakeChat) -> None:
    from tests.helpers import chunk, sse

    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    llm, _ = make_chat(
        [
            sse(
                [
                    chunk({"role": "assistant", "content": "hm"}),
                    chunk({"tool_calls": [call]}),
                    chunk({}, finish_reason="tool_calls"),
                ]
            )
        ]
    )
    indexes = [tc["index"] for c in llm.stream("hi") for tc in c.tool_call_chunks]
    assert indexes == [0]


# Some servers stream each tool call whole in its own chunk, with an id and no index.
UNINDEXED_TOOL_STREAM = [
    chunk({"role": "assistant", "content": "Checking."}),
    chunk(
        {
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ]
        }
    ),
    chunk(
        {
            "tool_calls": [
                {
                    "id": "call_oslo",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ]
        }
    ),
    chunk({}, finish_reason="tool_calls"),
]
UNINDEXED_CALLS = [
    {"name": "weather", "args": {"city": "Paris"}, "id": "call_paris", "type": "tool_call"},
    {"name": "weather", "args": {"city": "Oslo"}, "id": "call_oslo", "type": "tool_call"},
]


def test_tool_calls_streamed_without_index_get_their_own_chunk_index(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(UNINDEXED_TOOL_STREAM)])
    chunks = list(llm.stream("weather?"))
    assert [(tc["id"], tc["index"]) for c in chunks for tc in c.tool_call_chunks] == [
        ("call_paris", 0),
        ("call_oslo", 1),
    ]
    assert merge(chunks).tool_calls == UNINDEXED_CALLS


async def test_v1_tool_calls_streamed_without_index_are_two_blocks(make_chat: MakeChat) -> None:
    llm, _ = make_chat([sse(UNINDEXED_TOOL_STREAM)], output_version="v1")
    whole = merge([c async for c in llm.astream("weather?")])
    assert [(b["type"], b.get("id")) for b in whole.content_blocks] == [
        ("text", None),
        ("tool_call", "call_paris"),
        ("tool_call", "call_oslo"),
    ]
    assert whole.tool_calls == UNINDEXED_CALLS
