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
    FixedWindow,
    JSONResponse,
    RateDecision,
    SSEResponse,
    TokenBucket,
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


# --------------------------------------------------------------------------- rate limits


class FakeClock:
    """A Unix-time clock that only moves when told to."""

    def __init__(self, now: float = 1_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rate_headers(response: httpx2.Response) -> tuple[int, int, float]:
    h = response.headers
    return (
        int(h["x-ratelimit-limit"]),
        int(h["x-ratelimit-remaining"]),
        float(h["x-ratelimit-reset"]),
    )


def test_fixed_window_decisions() -> None:
    clock = FakeClock(100.2)
    limiter = FixedWindow(limit=2, window=1.0, clock=clock)  # aligned: windows [100, 101), ...
    assert limiter.acquire() == RateDecision(True, 2, 1, 101.0, 0.0)
    clock.now = 100.5
    assert limiter.acquire() == RateDecision(True, 2, 0, 101.0, 0.0)
    clock.now = 100.9
    refused = limiter.acquire()
    assert (refused.allowed, refused.remaining, refused.reset) == (False, 0, 101.0)
    assert refused.retry_after == pytest.approx(0.1)
    clock.now = 101.0  # rollover: a fresh window
    assert limiter.acquire() == RateDecision(True, 2, 1, 102.0, 0.0)
    clock.now = 105.7  # idle windows in between do not matter
    assert limiter.acquire() == RateDecision(True, 2, 1, 106.0, 0.0)
    limiter.reset()
    assert limiter.acquire().remaining == 1

    clock.now = 100.2
    unaligned = FixedWindow(limit=1, window=0.5, aligned=False, clock=clock)
    assert unaligned.acquire().reset == pytest.approx(100.7)  # opened by the first request
    clock.now = 100.69
    assert not unaligned.acquire().allowed
    clock.now = 100.7
    assert unaligned.acquire().reset == pytest.approx(101.2)


def test_token_bucket_decisions() -> None:
    clock = FakeClock(50.0)
    bucket = TokenBucket(rate=10.0, burst=2, clock=clock)  # one token per 0.1 s, starts full
    assert bucket.acquire() == RateDecision(True, 2, 1, 50.0, 0.0)  # tokens left: reset = now
    second = bucket.acquire()
    assert (second.allowed, second.remaining, second.retry_after) == (True, 0, 0.0)
    assert second.reset == pytest.approx(50.1)  # empty: the next token's time
    clock.now = 50.04
    refused = bucket.acquire()
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert refused.reset == pytest.approx(50.1) and refused.retry_after == pytest.approx(0.06)
    clock.now = 50.1  # exactly one token refilled (float arithmetic must not lose it)
    refilled = bucket.acquire()
    assert refilled.allowed and refilled.remaining == 0
    clock.now = 60.0  # refill is capped at burst
    assert bucket.acquire() == RateDecision(True, 2, 1, 60.0, 0.0)
    clock.now = 60.0
    bucket.acquire()
    bucket.reset()
    assert bucket.acquire().remaining == 1
    assert TokenBucket(rate=20.0).burst == 20 and TokenBucket(rate=0.5).burst == 1
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        FixedWindow(limit=0)


def test_header_formatting_and_retry_after_flag() -> None:
    clock = FakeClock(200.25)
    limiter = FixedWindow(limit=1, window=1.0, clock=clock)
    assert limiter.headers(limiter.acquire()) == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "201.000",
    }
    assert "Retry-After" not in limiter.headers(limiter.acquire())  # off by default
    bucket = TokenBucket(rate=4.0, burst=1, retry_after=True, reset_decimals=0, clock=clock)
    bucket.acquire()
    refused = bucket.headers(bucket.acquire())
    assert refused["X-RateLimit-Reset"] == "201"  # 200.5 rounded up to whole seconds
    assert refused["Retry-After"] == "1"  # 0.25 s, rounded up


def test_rate_limit_headers_on_every_answer_and_429(server: FakeOpenAIServer) -> None:
    clock = FakeClock()
    server.rate_limit = FixedWindow(limit=4, window=60.0, aligned=False, clock=clock)
    end = clock.now + 60
    server.enqueue(chat_completion("scripted"))
    chat = {"model": "m", "messages": USER}
    with httpx2.Client(base_url=server.base_url) as http:
        first = http.post("/chat/completions", json=chat)
        assert first.json()["choices"][0]["message"]["content"] == "scripted"
        assert rate_headers(first) == (4, 3, end)
        with http.stream("POST", "/chat/completions", json=chat | {"stream": True}) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            assert rate_headers(stream) == (4, 2, end)
            assert "[DONE]" in stream.read().decode()
        embedded = http.post("/embeddings", json={"model": "e", "input": ["a"]})
        assert embedded.json()["data"][0]["embedding"] == hash_vector("a")
        assert rate_headers(embedded) == (4, 1, end)
        assert rate_headers(http.get("/models")) == (4, 0, end)
        server.enqueue(chat_completion("kept for later"))
        refused = http.post("/chat/completions", json=chat)
        assert refused.status_code == 429 and rate_headers(refused) == (4, 0, end)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "retry-after" not in refused.headers
    assert server.pending == 1  # a refused request does not consume the script
    assert (server.admitted_count, server.rate_limited_count, server.request_count) == (4, 1, 5)
    assert [r.rate_limited for r in server.requests] == [False] * 4 + [True]
    with pytest.raises(openai.RateLimitError) as info:  # what a client sees
        client_for(server).chat.completions.create(model="m", messages=USER)
    assert info.value.body is not None and info.value.response.headers["x-ratelimit-limit"] == "4"


def test_spec_headers_win_and_disconnect_is_admitted(server: FakeOpenAIServer) -> None:
    server.rate_limit = TokenBucket(rate=1.0, burst=5, clock=FakeClock())
    server.enqueue(chat_completion("x", headers={"x-ratelimit-remaining": "77"}), Disconnect())
    with httpx2.Client(base_url=server.base_url) as http:
        response = http.post("/chat/completions", json={})
        assert response.headers.get_list("x-ratelimit-remaining") == ["77"]
        assert response.headers["x-ratelimit-limit"] == "5"
        with pytest.raises(httpx2.TransportError):
            http.post("/chat/completions", json={})
    assert server.admitted_count == 2


def test_window_rollover_over_http(server: FakeOpenAIServer) -> None:
    clock = FakeClock(10.5)
    server.rate_limit = FixedWindow(limit=1, window=1.0, retry_after=True, clock=clock)
    with httpx2.Client(base_url=server.base_url) as http:
        assert http.get("/models").status_code == 200
        refused = http.get("/models")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert rate_headers(refused) == (1, 0, 11.0)
        clock.now = 11.0
        again = http.get("/models")
        assert again.status_code == 200 and rate_headers(again) == (1, 0, 12.0)


def test_bucket_refill_in_real_time(server: FakeOpenAIServer) -> None:
    server.rate_limit = TokenBucket(rate=4.0, burst=3)  # a token per 0.25 s, starts with 3
    with httpx2.Client(base_url=server.base_url) as http:
        answers: list[httpx2.Response] = []
        while not answers or (answers[-1].status_code == 200 and len(answers) < 20):
            sent = time.time()  # drain the bucket; the last request's send and receive times
            answers.append(http.get("/models"))
            received = time.time()
        refused = answers[-1]
        assert refused.status_code == 429 and len(answers) >= 4  # the burst got through
        limit, remaining, reset = rate_headers(refused)
        assert (limit, remaining) == (3, 0)
        # A Unix time, at most one token after the server answered (between sent and
        # received, however slowly this machine ran the test).
        assert sent < reset <= received + 0.26
        time.sleep(max(0.0, reset - time.time()) + 0.02)
        refilled = http.get("/models")
        assert refilled.status_code == 200
    assert server.rate_limited_count == 1 and server.admitted_count == len(answers)


async def test_concurrent_requests_are_counted_exactly(server: FakeOpenAIServer) -> None:
    server.rate_limit = FixedWindow(limit=20, window=60.0, aligned=False)
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        answers = await asyncio.gather(*(http.get("/models") for _ in range(50)))
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 20 and sum(r.status_code == 429 for r in answers) == 30
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok) == list(range(20))
    assert (server.admitted_count, server.rate_limited_count) == (20, 30)


def test_reset_turns_the_limit_off(server: FakeOpenAIServer) -> None:
    server.rate_limit = FixedWindow(limit=1, window=60.0)
    with httpx2.Client(base_url=server.base_url) as http:
        http.get("/models")
        assert http.get("/models").status_code == 429
        server.rate_limit.reset()  # refills in place
        assert http.get("/models").status_code == 200
        server.reset()
        assert (server.admitted_count, server.rate_limited_count) == (0, 0)
        assert server.rate_limit is None
        plain = http.get("/models")
        assert plain.status_code == 200 and "x-ratelimit-limit" not in plain.headers
    assert server.admitted_count == 0 and server.request_count == 1
