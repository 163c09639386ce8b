"""Zero-latency OpenAI-compatible server for the overhead benchmark.

Stdlib only (asyncio protocol, HTTP/1.1 keep-alive), meant to run in its own
process so that its CPU time does not compete for the GIL of the client being
measured.  Every response is built once at start-up; serving a request is a
header parse plus one ``transport.write``.

Endpoints:

* ``POST .../chat/completions`` — a canned ``chat.completion`` JSON, or, when
  the body asks for ``"stream": true``, a chunked SSE stream of
  ``STREAM_CHUNKS`` content chunks, one usage chunk and ``data: [DONE]``.
* ``GET .../models`` — a one-model catalog, in case a client looks it up.
* ``POST .../images/generations`` — a canned ``{"created", "data": [{"b64_json"}]}`` holding a
  small PNG (whatever the body asks for: the media benchmark times the client, not a download).
* ``POST .../audio/speech`` — canned audio bytes (``audio/mpeg``, ``SPEECH_BYTES`` long).
* ``GET /_stats`` — requests served per path, so the benchmark can check how
  many HTTP requests a contender makes per call.

Run ``python benchmarks/_server.py [--port N]``; it prints ``PORT <n>`` on
stdout once listening and runs until killed or its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
from collections import Counter
from typing import Any

MODEL = "bench-model"
STREAM_CHUNKS = 200
CREATED = 1_700_000_000
COMPLETION_TEXT = "Hello! How can I help you today?"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def completion_body() -> bytes:
    return _json_bytes(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": COMPLETION_TEXT},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
        }
    )


def _chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def stream_events(n_chunks: int = STREAM_CHUNKS) -> list[bytes]:
    """SSE events: n content chunks (last one finishes), a usage chunk, [DONE]."""
    events: list[bytes] = []
    for i in range(n_chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        event = _chunk(delta, "stop" if i == n_chunks - 1 else None)
        events.append(b"data: " + _json_bytes(event) + b"\n\n")
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": None,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": n_chunks, "total_tokens": 9 + n_chunks},
    }
    events.append(b"data: " + _json_bytes(usage) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def models_body() -> bytes:
    return _json_bytes(
        {
            "object": "list",
            "data": [
                {
                    "id": MODEL,
                    "object": "model",
                    "created": CREATED,
                    "owned_by": "bench",
                    "context_length": 32768,
                    "input_modalities": ["text"],
                    "output_modalities": ["text"],
                    "supported_features": ["tools", "structured_outputs"],
                }
            ],
        }
    )


SPEECH_BYTES = 16_000


def _png(width: int = 64, height: int = 64) -> bytes:
    """A valid RGB PNG with a gradient (a few kB once compressed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 4 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_body() -> bytes:
    import base64

    return _json_bytes(
        {"created": CREATED, "data": [{"url": None, "b64_json": base64.b64encode(_png()).decode()}]}
    )


def speech_bytes() -> bytes:
    return b"ID3\x04\x00\x00" + bytes(range(256)) * (SPEECH_BYTES // 256)


def _error(message: str) -> bytes:
    return _json_bytes({"error": {"message": message, "type": "invalid_request_error"}})


def _response(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"content-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n"
        "x-request-id: req-bench\r\n"
        "\r\n"
    )
    return head.encode() + body


def _chunked_response(content_type: str, pieces: list[bytes]) -> bytes:
    # One HTTP chunk per SSE event, as real streaming servers send them.
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"content-type: {content_type}\r\n"
        "transfer-encoding: chunked\r\n"
        "cache-control: no-cache\r\n"
        "x-request-id: req-bench\r\n"
        "\r\n"
    ).encode()
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
    return head + body + b"0\r\n\r\n"


class Responses:
    """All response bytes, prebuilt."""

    def __init__(self, n_chunks: int = STREAM_CHUNKS) -> None:
        self.completion = _response(200, "application/json", completion_body())
        self.stream = _chunked_response("text/event-stream; charset=utf-8", stream_events(n_chunks))
        self.models = _response(200, "application/json", models_body())
        self.image = _response(200, "application/json", image_body())
        self.speech = _response(200, "audio/mpeg", speech_bytes())
        self.not_found = _response(404, "application/json", _error("not found"))
        self.bad = _response(400, "application/json", _error("bad request"))


class _HTTPProtocol(asyncio.Protocol):
    def __init__(self, responses: Responses, stats: Counter[str]) -> None:
        self.responses = responses
        self.stats = stats
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        # Loop: a client may pipeline, or one read may hold several requests.
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _version = lines[0].split(" ", 2)
            except ValueError:
                self._reply(self.responses.bad, close=True)
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            close = headers.get("connection", "").lower() == "close"
            self._reply(self._route(method, target, body), close=close)

    def _route(self, method: str, target: str, body: bytes) -> bytes:
        path = target.split("?", 1)[0]
        if path == "/_stats":
            return _response(200, "application/json", _json_bytes(dict(self.stats)))
        self.stats[f"{method} {path}"] += 1
        if path.endswith("/chat/completions"):
            if method != "POST":
                return _response(405, "application/json", b"{}")
            try:
                stream = bool(json.loads(body or b"{}").get("stream"))
            except (ValueError, AttributeError):
                return self.responses.bad
            return self.responses.stream if stream else self.responses.completion
        if path.endswith("/models") and method == "GET":
            return self.responses.models
        if path.endswith("/images/generations") and method == "POST":
            return self.responses.image
        if path.endswith("/audio/speech") and method == "POST":
            return self.responses.speech
        return self.responses.not_found

    def _reply(self, payload: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(payload)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, n_chunks: int) -> None:
    responses = Responses(n_chunks)
    stats: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _HTTPProtocol(responses, stats), host, port, backlog=2048, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    # Exit when the parent goes away (its end of our stdin closes).
    threading.Thread(target=_wait_stdin_eof, args=(loop, stop), daemon=True).start()
    async with server:
        await stop.wait()


def _wait_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    try:
        while sys.stdin.buffer.read(1024):
            pass
    except (OSError, ValueError):
        pass
    loop.call_soon_threadsafe(stop.set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=STREAM_CHUNKS)
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("this server only listens on loopback")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.chunks))


if __name__ == "__main__":
    main()
