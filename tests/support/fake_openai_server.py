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

Note: openai's client ignores ``retry-after: 0`` (only 0 < value counts) and sleeps its own
backoff (~0.4-0.5 s for the first retry); use ``retry-after-ms`` for faster retries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http
import json
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class RecordedRequest:
    method: str
    path: str  # including any query string
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or raw bytes when the body is not JSON


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
    finish_reason: str | None = None,
    usage: JSON | None = None,
    include_usage: bool | None = None,
    done: bool = True,
    drop_after: int | None = None,
    model: str = "deepseek-ai/DeepSeek-V3",
    delay: float = 0.0,
    chunk_delay: float = 0.0,
) -> SSEResponse:
    """Realistic ``chat.completion.chunk`` events: role first, finish_reason last, then usage."""
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
        self._lock = threading.Lock()
        self._queue: deque[Spec | Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._connections = 0
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

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._connections = 0
        self.default = None

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
                with self._lock:
                    self._requests.append(request)
                    queued = self._queue.popleft() if self._queue else None
                if not await self._respond(writer, request, queued):
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
        return RecordedRequest(method, path, headers, body)

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
        return error(404, "not_found", f"No route for {route[0]} {route[1]}")

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
        queued: Spec | Responder | None,
    ) -> bool:
        """Send one response; return whether the connection stays open."""
        try:
            spec = self._resolve(request, queued)
        except Exception as exc:  # a broken responder must fail the test, not hang it
            spec = error(500, "fake_server_error", repr(exc))
        await asyncio.sleep(spec.delay)
        if isinstance(spec, Disconnect):
            return False
        keep = request.headers.get("connection", "").lower() != "close"
        if isinstance(spec, JSONResponse):
            body = _encode_body(spec.body)
            head = {"content-type": "application/json", "content-length": str(len(body))}
            writer.write(_head(spec.status, head | spec.headers, keep) + body)
            await writer.drain()
            return keep
        return await self._stream(writer, request, spec, keep)

    async def _stream(
        self, writer: asyncio.StreamWriter, request: RecordedRequest, spec: SSEResponse, keep: bool
    ) -> bool:
        head = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
        writer.write(_head(spec.status, head | spec.headers, keep))
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
