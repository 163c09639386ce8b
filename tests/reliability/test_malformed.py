"""Item 7: a 2xx answer the adapters cannot use raises a clear error saying what was wrong."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.exceptions import ModelAPIError, ModelError

import runcrate_integrations as core
from tests.reliability.cases import ChatCase, EmbedCase
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    SSEResponse,
    chat_stream,
)


def _role_chunk() -> dict[str, Any]:
    first = chat_stream(["x"]).events[0]
    assert isinstance(first, dict)
    return first


_ROLE_CHUNK = _role_chunk()

# name -> (what the server sends with 200, a fragment the error message must contain)
BAD_BODIES: dict[str, tuple[JSONResponse, str]] = {
    "malformed-json": (JSONResponse('{"id": "chatcmpl-1", "choices": [{'), "malformed JSON"),
    "html-page": (
        JSONResponse("<html>Bad gateway</html>", headers={"content-type": "text/html"}),
        "not a JSON object",
    ),
    "json-array": (JSONResponse([{"choices": []}]), "not a JSON object"),
    "empty-choices": (JSONResponse({"id": "chatcmpl-1", "choices": []}), "no choices"),
    "no-choices-key": (
        JSONResponse({"id": "chatcmpl-1", "object": "chat.completion"}),
        "no choices",
    ),
}


@pytest.mark.parametrize("bad", list(BAD_BODIES))
async def test_unusable_answer_raises_response_format_error(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer, bad: str
) -> None:
    spec, fragment = BAD_BODIES[bad]
    fake_server.enqueue(spec)

    with pytest.raises(
        whole_chat.error(core.ResponseFormatError), match=re.escape(fragment)
    ) as caught:
        await whole_chat.ask(whole_chat.model(max_retries=2))

    assert fake_server.request_count == 1  # a 2xx is not retried
    if whole_chat.framework == "langchain":
        assert isinstance(caught.value, ModelAPIError)


BAD_STREAMS: dict[str, tuple[SSEResponse, str]] = {
    "line-not-json": (
        SSEResponse([_ROLE_CHUNK, 'data: {"choices": [{"delta": {"content": "hi"'], done=True),
        "stream line that is not JSON",
    ),
    "chunk-not-an-object": (
        SSEResponse([_ROLE_CHUNK, "data: [1, 2]"]),
        "stream chunk that is not a JSON object",
    ),
}


@pytest.mark.parametrize("bad", list(BAD_STREAMS))
async def test_unusable_stream_raises_response_format_error(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer, bad: str
) -> None:
    spec, fragment = BAD_STREAMS[bad]
    fake_server.enqueue(spec)

    _, err = await stream_chat.partial(stream_chat.model())

    assert isinstance(err, stream_chat.error(core.ResponseFormatError)), repr(err)
    assert fragment in str(err)


async def test_stream_whose_chunks_never_have_choices_raises(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # Only usage-style chunks (empty choices), then [DONE]: there is no answer at all.
    empty = {**_ROLE_CHUNK, "choices": []}
    fake_server.enqueue(SSEResponse([empty, empty]))

    _, err = await stream_chat.partial(stream_chat.model())

    assert isinstance(err, stream_chat.error(core.StreamInterruptedError)), repr(err)
    assert "no finish_reason" in str(err)


# BUG (reported to the lead): an error event inside a 200 stream (`data: {"error": {...}}`,
# which OpenAI-compatible servers send when a model fails mid-answer) is raised by the openai
# client as a bare `openai.APIError`: not a RuncrateError (docs/errors.md: "Every error this
# package raises derives from RuncrateError"), not LangChain's ModelError, without the
# "Runcrate API error" prefix or `.code`. Fails until transport.stream_json translates it.
async def test_error_event_inside_a_stream_raises_a_typed_runcrate_error(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    crash = {"error": {"code": "server_error", "message": "model crashed mid-answer"}}
    fake_server.enqueue(SSEResponse([_ROLE_CHUNK, chat_stream(["Hel"]).events[1], crash]))

    _, err = await stream_chat.partial(stream_chat.model())

    assert "model crashed mid-answer" in str(err)
    assert isinstance(err, core.RuncrateError), repr(err)
    if stream_chat.framework == "langchain":
        assert isinstance(err, ModelError), repr(err)


BAD_EMBEDDINGS: dict[str, tuple[JSONResponse, str]] = {
    "malformed-json": (JSONResponse('{"object": "list", "data": [{'), "malformed JSON"),
    "no-data-list": (JSONResponse({"object": "list", "data": "oops"}), "no 'data' list"),
    "too-few-vectors": (JSONResponse({"object": "list", "data": []}), "got 0 vector(s) back"),
    "bad-base64": (
        JSONResponse({"object": "list", "data": [{"index": 0, "embedding": "!!not-b64"}]}),
        "not valid base64",
    ),
}


@pytest.mark.parametrize("bad", list(BAD_EMBEDDINGS))
async def test_embeddings_unusable_answer_raises_response_format_error(
    embed: EmbedCase, fake_server: FakeOpenAIServer, bad: str
) -> None:
    spec, fragment = BAD_EMBEDDINGS[bad]
    fake_server.enqueue(spec)

    with pytest.raises(embed.error(core.ResponseFormatError), match=re.escape(fragment)):
        await embed.embed(embed.model(max_retries=2), ["alpha"])

    assert fake_server.request_count == 1
