"""Self-test of the fault-injection server, through plain httpx2 and the real openai client."""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import time
from collections.abc import Iterator

import httpx2
import openai
import pytest
from openai.types.chat import (
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from tests.support.fake_openai_server import (
    Disconnect,
    FakeOpenAIServer,
    JSONResponse,
    SSEResponse,
    chat_completion,
    chat_stream,
    embeddings,
    error,
    hash_vector,
    running_server,
    tool_call,
)

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running_server() as srv:
        yield srv


def client_for(server: FakeOpenAIServer, max_retries: int = 0, timeout: float = 5) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="k", base_url=server.base_url, max_retries=max_retries, timeout=timeout
    )


def test_json_response_and_recorded_request(server: FakeOpenAIServer) -> None:
    server.enqueue(JSONResponse({"ok": True}, status=201, headers={"x-extra": "1"}))
    server.enqueue(JSONResponse("{not json", status=200))
    with httpx2.Client(base_url=server.base_url) as http:
        response = http.post("/anything?q=1", json={"a": [1, 2]}, headers={"X-Marker": "m1"})
        assert (response.status_code, response.json()) == (201, {"ok": True})
        assert response.headers["x-extra"] == "1"
        assert http.post("/raw", content=b"\x00bin").text == "{not json"
        assert http.get("/v1/nowhere").json()["error"]["code"] == "not_found"  # echo fallback
    first, second, _ = server.requests
    assert (first.method, first.path, first.body) == ("POST", "/v1/anything?q=1", {"a": [1, 2]})
    assert first.headers["x-marker"] == "m1" and first.headers["content-type"] == "application/json"
    assert second.body == b"\x00bin"
    assert server.request_count == 3 and server.connection_count == 1  # keep-alive reuse
    server.reset()
    assert server.request_count == 0 and server.connection_count == 0


def test_error_then_success_with_openai_retry(server: FakeOpenAIServer) -> None:
    server.enqueue(error(429, "rate_limited", "Too many requests", {"retry-after": "0"}))
    server.enqueue(chat_completion("after retry"))
    reply = client_for(server, max_retries=1).chat.completions.create(model="m", messages=USER)
    assert reply.choices[0].message.content == "after retry"
    assert server.request_count == 2 and server.pending == 0


def test_error_body_reaches_openai_exception(server: FakeOpenAIServer) -> None:
    server.enqueue(error(402, "insufficient_credits", "Top up", details={"balance": 0}))
    with pytest.raises(openai.APIStatusError) as info:
        client_for(server).chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 402
    assert info.value.body == {
        "code": "insufficient_credits",
        "message": "Top up",
        "details": {"balance": 0},
    }


def test_completion_with_tool_calls_and_reasoning(server: FakeOpenAIServer) -> None:
    call = tool_call("get_weather", {"city": "Paris"}, id="call_1")
    server.enqueue(chat_completion(None, tool_calls=[call], reasoning_content="think"))
    reply = client_for(server).chat.completions.create(model="m", messages=USER)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert isinstance(choice.message.tool_calls[0], ChatCompletionMessageFunctionToolCall)
    assert choice.message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert choice.message.model_extra == {"reasoning_content": "think"}


def test_sse_stream_parsed_by_openai(server: FakeOpenAIServer) -> None:
    server.enqueue(chat_stream(["Hel", "lo"], reasoning_pieces=["hmm"]))
    stream = client_for(server).chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # asked for usage
    server.enqueue(chat_stream(["x"]))
    chunks = list(client_for(server).chat.completions.create(model="m", messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"  # no usage chunk when not asked


def test_garbage_sse_line_is_a_json_error_in_openai(server: FakeOpenAIServer) -> None:
    server.enqueue(SSEResponse(["data: garbage"]))
    with pytest.raises(ValueError):  # json.JSONDecodeError, not an openai error
        list(client_for(server).chat.completions.create(model="m", messages=USER, stream=True))


def test_truncated_stream_raises_api_connection_error(server: FakeOpenAIServer) -> None:
    server.enqueue(chat_stream(["a", "b", "c"], drop_after=2))
    stream = client_for(server).chat.completions.create(model="m", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2 and all(c.choices[0].finish_reason is None for c in received)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert server.request_count == 1  # openai does not retry a stream mid-body


async def test_truncated_stream_async_raises_too(server: FakeOpenAIServer) -> None:
    server.enqueue(chat_stream(["a", "b"], drop_after=1))
    async with openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass


def test_delay_triggers_client_timeout_and_disconnect_is_connection_error(
    server: FakeOpenAIServer,
) -> None:
    server.enqueue(chat_completion("late", delay=2.0), Disconnect())
    client = client_for(server, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started < 1.5
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)


def test_echo_mode(server: FakeOpenAIServer) -> None:
    client = client_for(server)
    parts: list[ChatCompletionContentPartTextParam] = [
        {"type": "text", "text": "second "},
        {"type": "text", "text": "marker-42"},
    ]
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "first"},
        {"role": "user", "content": parts},
    ]
    reply = client.chat.completions.create(model="my-model", messages=messages)
    assert reply.choices[0].message.content == "second marker-42" and reply.model == "my-model"
    stream = client.chat.completions.create(
        model="m",
        messages=[*USER, {"role": "user", "content": "streamed echo"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed echo"
    assert chunks[-1].usage is not None and len(chunks) >= 5
    models = client.models.list().data
    assert [m.id for m in models] == [m["id"] for m in server.models]
    assert models[0].model_extra is not None and "context_length" in models[0].model_extra
    server.default = error(503, "overloaded", "busy")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=USER)


def test_embeddings_float_and_base64(server: FakeOpenAIServer) -> None:
    client = client_for(server)
    result = client.embeddings.create(model="e", input=["a", "b"])  # openai asks base64
    assert server.last_request.body["encoding_format"] == "base64"
    assert [d.embedding for d in result.data] == [hash_vector("a"), hash_vector("b")]
    with httpx2.Client() as http:
        body = {"model": "e", "input": "a", "encoding_format": "base64"}
        raw = http.post(f"{server.base_url}/embeddings", json=body).json()["data"][0]["embedding"]
        assert list(struct.unpack("<8f", base64.b64decode(raw))) == hash_vector("a")
        body["encoding_format"] = "float"
        server.enqueue(embeddings([[0.5, -0.25]]))
        assert http.post(f"{server.base_url}/embeddings", json=body).json()["data"] == [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}
        ]


async def _ask_200(client: openai.AsyncOpenAI) -> None:
    async def ask(i: int) -> tuple[str, str | None]:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"marker-{i}"}]
        reply = await client.chat.completions.create(model="m", messages=messages)
        return f"marker-{i}", reply.choices[0].message.content

    results = await asyncio.gather(*(ask(i) for i in range(200)))
    assert all(expected == got for expected, got in results)


async def test_200_concurrent_requests_match_their_markers(server: FakeOpenAIServer) -> None:
    # openai's default pool (max_connections=1000, keep-alive 100) opens one connection per
    # in-flight request, then keeps 100 of them for the next wave.
    async with openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0) as client:
        await _ask_200(client)
        first_wave = server.connection_count
        await _ask_200(client)
    print(f"default pool: {first_wave} connections, then {server.connection_count} after wave 2")
    assert server.request_count == 400
    assert first_wave <= 200 and server.connection_count <= first_wave + 100


async def test_200_concurrent_requests_share_a_bounded_pool(server: FakeOpenAIServer) -> None:
    limits = httpx2.Limits(max_connections=10, max_keepalive_connections=10)
    http = openai.DefaultAsyncHttpxClient(limits=limits)
    async with openai.AsyncOpenAI(
        api_key="k", base_url=server.base_url, max_retries=0, http_client=http
    ) as client:
        await _ask_200(client)
        await _ask_200(client)
    print(f"bounded pool: {server.connection_count} connections for 400 requests")
    assert server.request_count == 400 and server.connection_count <= 10


def test_stop_is_prompt_with_inflight_and_idle_connections() -> None:
    server = FakeOpenAIServer().start()
    with httpx2.Client(base_url=server.base_url, timeout=5) as http:
        http.get("/models")  # leaves an idle keep-alive connection
        server.enqueue(chat_completion("never", delay=30))
        threading.Timer(0.2, server.stop).start()
        started = time.monotonic()
        with pytest.raises(httpx2.TransportError):  # the in-flight request is cut by stop()
            http.post("/chat/completions", json={})
        assert time.monotonic() - started < 2
