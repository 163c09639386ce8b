"""Item 6: a stream that stops before the server finished the answer raises; the partial text
is never handed back as a finished answer, however the stream stopped."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import ModelConnectionError

import runcrate_integrations as core
from tests.reliability.cases import ChatCase, Framework, Mode, one, user
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    SSEResponse,
    chat_stream,
    tool_call,
)

PIECES = ["Once upon", " a time", " the end"]


def _without_finish(done: bool) -> SSEResponse:
    """Role and text chunks, no finish_reason chunk; then ``[DONE]`` or a clean end of body."""
    events = chat_stream(PIECES).events[:-1]  # the last event is the finish_reason chunk
    assert all(e["choices"][0]["finish_reason"] is None for e in events if isinstance(e, dict))
    return SSEResponse(events, done=done)


def _check_interrupted(case: ChatCase, err: BaseException) -> None:
    assert isinstance(err, case.error(core.StreamInterruptedError)), repr(err)
    assert "partial answer was discarded" in str(err)
    if case.framework == "langchain":
        assert isinstance(err, ModelConnectionError)


async def test_connection_dropped_mid_stream_raises(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # Role chunk + two text chunks, then the socket closes: no finish_reason, no [DONE].
    fake_server.enqueue(chat_stream(PIECES, drop_after=3))
    llm = stream_chat.model(max_retries=2)

    pieces, err = await stream_chat.partial(llm)

    _check_interrupted(stream_chat, err)
    assert "".join(pieces) == "Once upon a time"  # what had arrived, never " the end"
    assert fake_server.request_count == 1  # tokens were delivered: a resend would repeat them


@pytest.mark.parametrize("done", [True, False], ids=["with-DONE", "clean-end-without-DONE"])
async def test_stream_ending_without_finish_reason_raises(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer, done: bool
) -> None:
    fake_server.enqueue(_without_finish(done))

    pieces, err = await stream_chat.partial(stream_chat.model())

    _check_interrupted(stream_chat, err)
    assert "".join(pieces) == "".join(PIECES)  # every piece came, but the answer never ended
    assert "no finish_reason" in str(err)


async def test_tool_call_cut_mid_stream_is_never_returned_as_a_call(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # role, the call's head, its (complete-looking) arguments, then the connection drops
    # before finish_reason: the call must not surface as one to execute.
    call = tool_call("transfer_money", {"to": "alice", "amount": 10}, id="call_1")
    fake_server.enqueue(chat_stream([], tool_calls=[call], drop_after=3))

    _, err = await stream_chat.partial(stream_chat.model())

    _check_interrupted(stream_chat, err)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_langchain_invoke_with_streaming_on_raises_on_a_cut_stream(
    fake_server: FakeOpenAIServer, mode: Mode
) -> None:
    # streaming=True makes invoke stream under the hood; the cut must not become an answer.
    case = ChatCase("langchain", "stream", fake_server)
    llm = case.model(streaming=True)
    fake_server.enqueue(chat_stream(PIECES, drop_after=3))

    with pytest.raises(case.error(core.StreamInterruptedError)):
        if mode == "invoke":
            llm.invoke("hello")
        else:
            await llm.ainvoke("hello")

    assert fake_server.requests[0].body["stream"] is True


@pytest.mark.parametrize(
    ("framework", "mode"), [one("llama_index", "stream"), one("llama_index", "astream")]
)
async def test_llama_index_stream_complete_raises_on_a_stream_without_finish_reason(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Mode
) -> None:
    case = ChatCase(framework, mode, fake_server)
    llm = case.model()
    fake_server.enqueue(_without_finish(done=True))
    texts: list[Any] = []

    with pytest.raises(core.StreamInterruptedError):
        if mode == "stream":
            texts.extend(r.text for r in llm.stream_complete("hello"))
        else:
            texts.extend([r.text async for r in await llm.astream_complete("hello")])

    assert fake_server.request_count == 1


async def test_llama_index_stream_chat_final_response_needs_a_finish(
    fake_server: FakeOpenAIServer,
) -> None:
    # The last response of a LlamaIndex stream is "the whole answer"; it must not be emitted.
    case = ChatCase("llama_index", "stream", fake_server)
    fake_server.enqueue(_without_finish(done=True))
    seen = []

    with pytest.raises(core.StreamInterruptedError):
        for response in case.model().stream_chat(user("hello")):
            seen.append(response)

    assert seen and all(r.delta for r in seen)  # only partial deltas; no final delta=""
    assert not any("finish_reason" in r.additional_kwargs for r in seen)
