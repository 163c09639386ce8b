"""A local, scriptable OpenAI-compatible HTTP server for fault-injection tests.

Pure stdlib: an asyncio server on 127.0.0.1 (ephemeral port) running in a daemon thread with its
own event loop, speaking HTTP/1.1 with keep-alive. Every request is recorded; each one consumes the
next scripted spec from a FIFO queue, or falls back to ``server.default`` (``None`` = echo mode).

    with running_server() as server:
        server.enqueue(error(429, "rate_limited", "slow down", {"retry-after": "0"}))
        server.enqueue(chat_completion("hi"))
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=1)
        reply = client.chat.completions.create(model="m", messages=[])
        assert reply.choices[0].message.content == "hi" and server.request_count == 2

Echo mode: ``POST /v1/chat/completions`` answers the text of the last user message (streamed in a
few chunks when ``"stream": true``, with a usage chunk when ``stream_options.include_usage``);
``POST /v1/embeddings`` returns 8 hash-derived floats per input (base64 little-endian float32 when
``encoding_format == "base64"``); ``GET /v1/models`` returns ``server.models``.

Truncated streams (``SSEResponse(drop_after=N)``): streams are sent with chunked transfer encoding,
so closing the socket mid-body is a protocol error for the client, never a clean end of stream.
With the ``openai`` client (sync and async) iteration yields the N chunks sent, then raises
``openai.APIConnectionError`` (its ``__cause__`` is ``httpx2.RemoteProtocolError``: "peer closed
connection without sending complete message body"). Adapters therefore see an exception, not a
stream that silently lacks ``finish_reason``. The openai client does not retry mid-stream.

Rate limits (``server.rate_limit = FixedWindow(limit=20, window=1.0)`` or
``TokenBucket(rate=20.0, burst=20)``; ``None``, the default, is off): every answer (JSON, stream,
embeddings, the limiter's own 429s) then carries Runcrate's ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a Unix time in seconds, fractional). A request
over the limit gets ``429 {"error": {"code": "rate_limited", ...}}`` instead of its scripted or echo
answer (the queue is not consumed); ``Retry-After`` only with ``retry_after=True``. Every request
is decided when its head and body have arrived; ``server.admitted_count`` and
``server.rate_limited_count`` count the decisions, ``RecordedRequest.rate_limited`` and
``.received_at`` record them per request. ``server.reset()`` zeroes the counters and turns the
limiter off again; ``limiter.reset()`` refills a limiter in place.

Media routes (echo mode): images, speech, transcriptions and video jobs in Runcrate's shapes,
with fake bytes; see :mod:`tests.support.fake_media` (``server.media`` holds their state).

Note: openai's client ignores ``retry-after: 0`` (only 0 < value counts) and sleeps its own
backoff (~0.4-0.5 s for the first retry); use ``retry-after-ms`` for faster retries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http
import json
import math
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from . import fake_media
from .fake_media import MediaState

JSON = dict[str, Any]


@dataclass
class RecordedRequest:
    method: str
    path: str  # including any query string
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or raw bytes when the body is not JSON
    received_at: float = 0.0  # time.time() when the whole request had arrived
    rate_limited: bool = False  # answered 429 by ``server.rate_limit``


@dataclass
class JSONResponse:
    """A complete response; ``body`` may be str/bytes to send malformed JSON verbatim."""

    body: Any = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class SSEResponse:
    """A ``text/event-stream``; dict events are sent as ``data: {json}``, str events verbatim."""

    events: list[JSON | str] = field(default_factory=list)
    done: bool = True  # send ``data: [DONE]`` at the end
    drop_after: int | None = None  # close the socket after this many events (no [DONE], no end)
    usage_chunk: JSON | None = None
    include_usage: bool | None = None  # None: send usage_chunk iff the request asked for it
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0


@dataclass
class Disconnect:
    """Close the connection without answering (after ``delay`` seconds)."""

    delay: float = 0.0


Spec = JSONResponse | SSEResponse | Disconnect
Responder = Callable[[RecordedRequest], Spec]  # builds a spec from the request it answers


def _model(id: str, context: int, inputs: list[str], outputs: list[str], feats: list[str]) -> JSON:
    return {
        "id": id,
        "object": "model",
        "owned_by": "runcrate",
        "context_length": context,
        "input_modalities": inputs,
        "output_modalities": outputs,
        "supported_features": feats,
    }


DEFAULT_MODELS: list[JSON] = [
    _model(
        "deepseek-ai/DeepSeek-V3", 131072, ["text"], ["text"], ["tools", "json_mode", "streaming"]
    ),
    _model(
        "Qwen/Qwen2.5-VL-72B-Instruct", 32768, ["text", "image"], ["text"], ["tools", "streaming"]
    ),
    _model("BAAI/bge-m3", 8192, ["text"], ["embeddings"], []),
]


# --------------------------------------------------------------------------- spec constructors


def error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: Any = None,
    delay: float = 0.0,
) -> JSONResponse:
    """Runcrate's error body: ``{"error": {"code", "message", "details"}}``."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status, dict(headers or {}), delay)


def tool_call(name: str, arguments: JSON | str, id: str | None = None) -> JSON:
    """An OpenAI ``tool_calls`` entry; dict arguments are JSON-encoded as the wire does."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": id or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": args},
    }


def _usage(prompt: int, completion: int) -> JSON:
    return dict(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def chat_completion(
    content: str | None = "Hello!",
    *,
    tool_calls: list[JSON] | None = None,
    reasoning_content: str | None = None,
    usage: JSON | None = None,
    finish_reason: str | None = None,
    model: str = "deepseek-ai/DeepSeek-V3",
    status: int = 200,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> JSONResponse:
    message: JSON = {"role": "assistant", "content": content}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage or _usage(10, len((content or "").split()) + 1),
    }
    return JSONResponse(body, status, dict(headers or {}), delay)


def chat_stream(
    text_pieces: list[str],
    *,
    reasoning_pieces: list[str] | None = None,
    tool_calls: list[JSON] | None = None,
    indexed: bool = True,
    finish_reason: str | None = None,
    usage: JSON | None = None,
    include_usage: bool | None = None,
    done: bool = True,
    drop_after: int | None = None,
    model: str = "deepseek-ai/DeepSeek-V3",
    delay: float = 0.0,
    chunk_delay: float = 0.0,
) -> SSEResponse:
    """Realistic ``chat.completion.chunk`` events: role first, finish_reason last, then usage.

    Tool calls stream as OpenAI does (a head with ``index`` and ``id``, then the arguments);
    ``indexed=False`` sends each call whole in its own chunk, with an ``id`` and no ``index``,
    as some OpenAI-compatible servers do.
    """
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: JSON, finish: str | None = None, choices: bool = True) -> JSON:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [choice] if choices else [],
        }

    events: list[JSON | str] = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"reasoning_content": p}) for p in reasoning_pieces or []]
    events += [chunk({"content": p}) for p in text_pieces]
    for i, call in enumerate(tool_calls or []):
        if not indexed:
            events.append(chunk({"tool_calls": [call]}))
            continue
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        args = {"index": i, "function": {"arguments": call["function"]["arguments"]}}
        events += [chunk({"tool_calls": [head]}), chunk({"tool_calls": [args]})]
    events.append(chunk({}, finish_reason or ("tool_calls" if tool_calls else "stop")))
    usage_chunk = chunk({}, choices=False)
    usage_chunk["usage"] = usage or _usage(10, len(text_pieces))
    return SSEResponse(
        events, done, drop_after, usage_chunk, include_usage, 200, {}, delay, chunk_delay
    )


def _embeddings_body(vectors: list[list[float]], encoding_format: Any, model: str) -> JSON:
    def encode(vector: list[float]) -> list[float] | str:
        if encoding_format != "base64":  # OpenAI's base64 is little-endian float32
            return vector
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")

    data = [
        {"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": len(vectors), "total_tokens": len(vectors)}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def embeddings(vectors: list[list[float]], *, model: str = "BAAI/bge-m3") -> Responder:
    """A /embeddings list body; honours the request's ``encoding_format`` (base64 float32)."""

    def respond(request: RecordedRequest) -> Spec:
        body = request.body if isinstance(request.body, dict) else {}
        return JSONResponse(_embeddings_body(vectors, body.get("encoding_format"), model))

    return respond


def hash_vector(text: str, dims: int = 8) -> list[float]:
    """Deterministic floats in [-1, 1) derived from sha256(text); what echo mode embeds."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i] - 128) / 128 for i in range(dims)]


# --------------------------------------------------------------------------- rate limits

RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class RateDecision:
    """One request's fate under a limiter, and what its answer's headers say."""

    allowed: bool
    limit: int
    remaining: int  # after this request
    reset: float  # Unix time (seconds)
    retry_after: float  # seconds until a request would be allowed; 0.0 when allowed


class RateLimiter:
    """Base of the limiter modes: a lock, a clock and the header/429 formatting.

    ``clock`` returns Unix time in seconds (``time.time``); pass a fake one for exact tests.
    ``reset_decimals``: digits after the point in ``X-RateLimit-Reset`` (0 sends whole seconds,
    rounded up). ``retry_after``: also send ``Retry-After`` (whole seconds, rounded up) on 429s.
    ``reset_from_now``: send ``X-RateLimit-Reset`` as seconds from now, as some servers do,
    instead of Runcrate's Unix time.
    """

    def __init__(
        self,
        *,
        retry_after: bool = False,
        reset_decimals: int = 3,
        reset_from_now: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retry_after = retry_after
        self.reset_decimals = reset_decimals
        self.reset_from_now = reset_from_now
        self.clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the fresh state: full bucket, or a new, empty window."""
        with self._lock:
            self._reset(self.clock())

    def acquire(self) -> RateDecision:
        """Decide one request now (consumes capacity when allowed)."""
        with self._lock:
            return self._acquire(self.clock())

    def _reset(self, now: float) -> None:
        raise NotImplementedError

    def _acquire(self, now: float) -> RateDecision:
        raise NotImplementedError

    def headers(self, decision: RateDecision) -> dict[str, str]:
        at = max(0.0, decision.reset - self.clock()) if self.reset_from_now else decision.reset
        digits = self.reset_decimals
        reset = f"{at:.{digits}f}" if digits > 0 else str(math.ceil(at))
        values = (str(decision.limit), str(decision.remaining), reset)
        headers = dict(zip(RATE_LIMIT_HEADERS, values, strict=True))
        if self.retry_after and not decision.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
        return headers

    def rejection(self, decision: RateDecision) -> JSONResponse:
        """The 429 sent instead of the answer (headers are added by the server)."""
        return error(429, "rate_limited", f"Rate limit exceeded: {self.describe()}.")

    def describe(self) -> str:
        raise NotImplementedError


class FixedWindow(RateLimiter):
    """At most ``limit`` requests per ``window`` seconds, counted in consecutive windows.

    ``aligned`` (default): windows start at multiples of ``window`` in Unix time, as a
    per-second counter keyed by the clock does; otherwise a window opens with the first request
    after the previous one ended. Headers: Limit = ``limit``, Remaining = requests left in this
    window, Reset = this window's end.
    """

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        aligned: bool = True,
        retry_after: bool = False,
        reset_decimals: int = 3,
        reset_from_now: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("FixedWindow needs limit >= 1 and window > 0")
        self.limit, self.window, self.aligned = limit, window, aligned
        super().__init__(
            retry_after=retry_after,
            reset_decimals=reset_decimals,
            reset_from_now=reset_from_now,
            clock=clock,
        )

    def _reset(self, now: float) -> None:
        self._end = -math.inf  # the next request opens a window
        self._used = 0

    def _acquire(self, now: float) -> RateDecision:
        if now >= self._end:
            start = math.floor(now / self.window) * self.window if self.aligned else now
            self._end, self._used = start + self.window, 0
        allowed = self._used < self.limit
        if allowed:
            self._used += 1
        wait = 0.0 if allowed else self._end - now
        return RateDecision(allowed, self.limit, self.limit - self._used, self._end, wait)

    def describe(self) -> str:
        return f"{self.limit} requests per {self.window:g} s window"

    def __repr__(self) -> str:
        return f"FixedWindow(limit={self.limit}, window={self.window!r}, aligned={self.aligned})"


class TokenBucket(RateLimiter):
    """A bucket of ``burst`` tokens refilled continuously at ``rate`` per second; starts full.

    Each request takes one whole token or is refused. Headers: Limit = ``burst``, Remaining =
    whole tokens left, Reset = when the next request would be allowed (now while tokens remain).
    ``burst`` defaults to ``max(1, int(rate))``.
    """

    _EPSILON = 1e-9  # float refill arithmetic must not turn 1.0 tokens into 0.9999999

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        retry_after: bool = False,
        reset_decimals: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        burst = max(1, int(rate)) if burst is None else burst
        if rate <= 0 or burst < 1:
            raise ValueError("TokenBucket needs rate > 0 and burst >= 1")
        self.rate, self.burst = float(rate), burst
        super().__init__(retry_after=retry_after, reset_decimals=reset_decimals, clock=clock)

    def _reset(self, now: float) -> None:
        self._tokens, self._at = float(self.burst), now

    def _acquire(self, now: float) -> RateDecision:
        elapsed = max(0.0, now - self._at)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._at = max(self._at, now)
        allowed = self._tokens >= 1 - self._EPSILON
        if allowed:
            self._tokens = max(0.0, self._tokens - 1)
        whole = math.floor(self._tokens + self._EPSILON)
        wait = 0.0 if whole >= 1 else (1 - self._tokens) / self.rate
        return RateDecision(allowed, self.burst, whole, now + wait, 0.0 if allowed else wait)

    def describe(self) -> str:
        return f"{self.rate:g} requests/s, bursts of {self.burst}"

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate!r}, burst={self.burst})"


# --------------------------------------------------------------------------- echo mode


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _echo_chat(body: JSON) -> Spec:
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = _text(users[-1].get("content")) if users else ""
    model = str(body.get("model") or "echo")
    if not body.get("stream"):
        return chat_completion(text, model=model)
    step = max(1, -(-len(text) // 3))
    return chat_stream([text[i : i + step] for i in range(0, len(text), step)], model=model)


def _echo_embeddings(body: JSON) -> Spec:
    raw = body.get("input", [])
    inputs = raw if isinstance(raw, list) and not all(isinstance(x, int) for x in raw) else [raw]
    vecs = [hash_vector(x if isinstance(x, str) else json.dumps(x)) for x in inputs]
    model = str(body.get("model") or "echo")
    return JSONResponse(_embeddings_body(vecs, body.get("encoding_format"), model))


# --------------------------------------------------------------------------- the server


class FakeOpenAIServer:
    """Threaded asyncio HTTP/1.1 server; see the module docstring for an example."""

    def __init__(self, *, read_timeout: float = 10.0, models: list[JSON] | None = None) -> None:
        self.read_timeout = read_timeout  # hard limit on waiting for (the rest of) a request
        self.models: list[JSON] = list(DEFAULT_MODELS if models is None else models)
        self.default: Spec | Responder | None = None  # used when the queue is empty; None = echo
        self.media = MediaState()  # the media routes' files and video jobs
        self.rate_limit: RateLimiter | None = None  # FixedWindow / TokenBucket; None = off
        self._lock = threading.Lock()
        self._queue: deque[Spec | Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._connections = 0
        self._admitted = 0
        self._rate_limited = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            coro = asyncio.start_server(
                self._on_connect, "127.0.0.1", 0, limit=1 << 20, backlog=1024
            )
            self._server = asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=5)
        except BaseException:
            self.stop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting and inspection ------------------------------------------------------------------
    def enqueue(self, *specs: Spec | Responder) -> None:
        with self._lock:
            self._queue.extend(specs)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    @property
    def connection_count(self) -> int:
        """Distinct TCP connections accepted since start (or the last reset)."""
        with self._lock:
            return self._connections

    @property
    def pending(self) -> int:
        """Scripted specs not yet consumed."""
        with self._lock:
            return len(self._queue)

    @property
    def admitted_count(self) -> int:
        """Requests ``rate_limit`` let through (0 while it is off)."""
        with self._lock:
            return self._admitted

    @property
    def rate_limited_count(self) -> int:
        """Requests ``rate_limit`` answered with 429."""
        with self._lock:
            return self._rate_limited

    def reset(self) -> None:
        """Back to the state after start(): empty queue and log, echo mode, no rate limit."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._connections = 0
            self._admitted = self._rate_limited = 0
        self.default = None
        self.rate_limit = None
        self.media = MediaState()

    # HTTP --------------------------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
        try:
            while True:
                request = await asyncio.wait_for(self._read_request(reader), self.read_timeout)
                if request is None:
                    break
                limiter = self.rate_limit
                decision = limiter.acquire() if limiter is not None else None
                rejected = decision is not None and not decision.allowed
                request.rate_limited = rejected
                with self._lock:
                    self._requests.append(request)
                    queued = None
                    if rejected:
                        self._rate_limited += 1
                    else:
                        if decision is not None:
                            self._admitted += 1
                        queued = self._queue.popleft() if self._queue else None
                extra: dict[str, str] = {}
                if limiter is not None and decision is not None:
                    extra = limiter.headers(decision)
                    if rejected:
                        queued = limiter.rejection(decision)
                if not await self._respond(writer, request, queued, extra):
                    break
        except (
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass  # malformed, slow or vanished client: drop the connection
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio logs cancelled connection tasks otherwise)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return None  # client closed an idle keep-alive connection
        request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = bytearray()
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                raw += await reader.readexactly(size)
                await reader.readexactly(2)
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
        else:
            raw = bytearray(await reader.readexactly(int(headers.get("content-length", 0))))
        body: Any = bytes(raw)
        with suppress(ValueError):
            body = json.loads(raw) if raw else None
        return RecordedRequest(method, path, headers, body, time.time())

    def _resolve(self, request: RecordedRequest, queued: Spec | Responder | None) -> Spec:
        spec = queued if queued is not None else self.default
        if spec is None:
            spec = self._echo(request)
        return spec if isinstance(spec, JSONResponse | SSEResponse | Disconnect) else spec(request)

    def _echo(self, request: RecordedRequest) -> Spec:
        route = (request.method, request.path.split("?")[0].rstrip("/"))
        body = request.body if isinstance(request.body, dict) else {}
        if route[0] == "POST" and route[1].endswith("/chat/completions"):
            return _echo_chat(body)
        if route[0] == "POST" and route[1].endswith("/embeddings"):
            return _echo_embeddings(body)
        if route[0] == "GET" and route[1].endswith("/models"):
            return JSONResponse({"object": "list", "data": self.models})
        media = fake_media.echo(self.media, request, f"http://127.0.0.1:{self.port}")
        if media is not None:
            return media
        return error(404, "not_found", f"No route for {route[0]} {route[1]}")

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
        queued: Spec | Responder | None,
        extra: dict[str, str] | None = None,
    ) -> bool:
        """Send one response (``extra`` headers yield to the spec's); whether to keep open."""
        try:
            spec = self._resolve(request, queued)
        except Exception as exc:  # a broken responder must fail the test, not hang it
            spec = error(500, "fake_server_error", repr(exc))
        await asyncio.sleep(spec.delay)
        if isinstance(spec, Disconnect):
            return False
        keep = request.headers.get("connection", "").lower() != "close"
        headers = _merge_headers(extra or {}, spec.headers)
        if isinstance(spec, JSONResponse):
            body = _encode_body(spec.body)
            head = {"content-type": "application/json", "content-length": str(len(body))}
            writer.write(_head(spec.status, head | headers, keep) + body)
            await writer.drain()
            return keep
        return await self._stream(writer, request, spec, keep, headers)

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
        spec: SSEResponse,
        keep: bool,
        headers: dict[str, str],
    ) -> bool:
        head = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
        writer.write(_head(spec.status, head | headers, keep))
        events = list(spec.events)
        options = request.body.get("stream_options") if isinstance(request.body, dict) else None
        asked = isinstance(options, dict) and bool(options.get("include_usage"))
        if spec.usage_chunk is not None and (
            spec.include_usage or (spec.include_usage is None and asked)
        ):
            events.append(spec.usage_chunk)
        if spec.done:
            events.append("data: [DONE]")
        for sent, event in enumerate(events):
            if spec.drop_after is not None and sent >= spec.drop_after:
                await writer.drain()
                return False  # the caller closes mid-body: the client sees a truncated stream
            line = event if isinstance(event, str) else "data: " + json.dumps(event)
            data = (line + "\n\n").encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))  # one HTTP chunk per SSE event
            await writer.drain()
            await asyncio.sleep(spec.chunk_delay)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep


def _encode_body(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _merge_headers(base: dict[str, str], override: dict[str, str]) -> dict[str, str]:
    """``base | override`` where names match case-insensitively (a spec's own header wins)."""
    names = {k.lower() for k in override}
    return {k: v for k, v in base.items() if k.lower() not in names} | override


def _head(status: int, headers: dict[str, str], keep: bool) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    headers = {
        "x-request-id": f"req_{uuid.uuid4().hex[:16]}",
        "connection": "keep-alive" if keep else "close",
    } | headers
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@contextmanager
def running_server(**kwargs: Any) -> Iterator[FakeOpenAIServer]:
    """Start a :class:`FakeOpenAIServer` for the ``with`` block; always stopped on exit."""
    server = FakeOpenAIServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
