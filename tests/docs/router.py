"""A loopback HTTP proxy used only while recording the docs' cassettes.

The snippets of one page may use a chat model, a reasoning model and an embedding model, all
through one ``RUNCRATE_BASE_URL``, as a user of Runcrate would. A server that serves those on
different URLs (the local llama.cpp servers: chat on 8091, embeddings on 8092, reasoning on
8093) is put behind this router, which the snippets see as their one base URL:

* ``/embeddings`` goes to the embeddings upstream;
* the media paths (``/images/...``, ``/audio/...``, ``/videos...``, ``/files/...``) go to the
  media upstream, with the ``Host`` the snippet sent, so that a URL the media server builds
  for a generated file points back through this router;
* a request whose JSON body names a reasoning model (``deepseek/deepseek-r1`` unless
  ``RUNCRATE_DOCS_REASONING_MODELS`` lists others, comma-separated) goes to the reasoning one;
* everything else (chat, ``GET /models``) goes to the chat upstream.

Requests and answers pass through unchanged (the ``Authorization`` header included); an answer
is read whole before it is sent on, which a recording does not mind. vcr records at the client,
so the cassettes hold the snippets' own requests and the upstreams' real answers.

One thing is asked again: llama.cpp refuses, now and then, a generation of the small local model
that breaks its own tool-call grammar (a 500, or an error event in a stream, "does not match the
expected ... format"). A page has many such calls, and recording it whole must not hinge on
every one of them going right the first time, so the router asks the upstream again (up to
:data:`REGENERATE` times) and passes on the first real answer.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REASONING_MODELS = ("deepseek/deepseek-r1",)
#: Times a generation the upstream refused for breaking its own grammar is asked for again.
REGENERATE = 8
_GRAMMAR_REFUSAL = b"does not match the expected"
# Hop-by-hop headers, and those recomputed for the re-sent body.
# The real connection classes, taken before any cassette is active: vcr patches http.client
# while it records, and the router's own upstream requests must not land in the cassette too.
_HTTP = http.client.HTTPConnection
_HTTPS = http.client.HTTPSConnection
_MEDIA_PARTS = ("/images/", "/audio/", "/videos/", "/files/")
_DROP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "accept-encoding",
        "content-encoding",
        "proxy-connection",
        "upgrade",
        "te",
    }
)


@dataclass(frozen=True)
class Upstreams:
    """Where each kind of request goes (base URLs ending in ``/v1`` or the like)."""

    chat: str
    embeddings: str
    reasoning: str
    reasoning_models: frozenset[str] = field(default=frozenset(DEFAULT_REASONING_MODELS))
    media: str = ""  # empty: the chat upstream

    @classmethod
    def from_env(cls, chat: str) -> Upstreams:
        models = os.environ.get("RUNCRATE_DOCS_REASONING_MODELS")
        names = (m.strip() for m in models.split(",")) if models else DEFAULT_REASONING_MODELS
        return cls(
            chat=chat,
            embeddings=os.environ.get("RUNCRATE_EMBEDDINGS_BASE_URL") or chat,
            reasoning=os.environ.get("RUNCRATE_REASONING_BASE_URL") or chat,
            reasoning_models=frozenset(n for n in names if n),
            media=os.environ.get("RUNCRATE_MEDIA_BASE_URL") or chat,
        )

    @staticmethod
    def is_media(path: str) -> bool:
        route = path.split("?")[0].rstrip("/")
        return any(part in route for part in _MEDIA_PARTS) or route.endswith("/videos")

    def pick(self, path: str, body: bytes) -> str:
        if path.split("?")[0].rstrip("/").endswith("/embeddings"):
            return self.embeddings
        if self.is_media(path):
            return self.media or self.chat
        try:
            model = json.loads(body).get("model") if body else None
        except (ValueError, AttributeError):
            model = None
        return self.reasoning if model in self.reasoning_models else self.chat


class Router:
    """``with Router(upstreams) as router:`` serves ``router.base_url`` until the block ends."""

    PREFIX = "/v1"

    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams
        self.log: list[tuple[str, str, str]] = []  # (method, path, upstream)
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                router._relay(self, body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="docs-router"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.PREFIX}"

    def __enter__(self) -> Router:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _relay(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        rest = path[len(self.PREFIX) :] if path.startswith(self.PREFIX) else path
        upstream = self.upstreams.pick(path, body)
        self.log.append((handler.command, path, upstream))
        target = urlsplit(upstream.rstrip("/") + rest)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _DROP}
        headers["Accept-Encoding"] = "identity"
        if self.upstreams.is_media(path) and handler.headers.get("Host"):
            headers["Host"] = handler.headers["Host"]  # file URLs then lead back here
        url = target.path + (f"?{target.query}" if target.query else "")
        for _ in range(REGENERATE + 1):
            conn = (_HTTPS if target.scheme == "https" else _HTTP)(target.netloc, timeout=600)
            try:
                conn.request(handler.command, url, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
            except OSError as exc:  # the upstream is down: say so, as a gateway would
                data = json.dumps(
                    {"error": {"code": "bad_gateway", "message": f"docs router: {upstream}: {exc}"}}
                ).encode()
                status, reason = 502, "Bad Gateway"
                answer_headers = [("Content-Type", "application/json")]
            finally:
                conn.close()
            if _GRAMMAR_REFUSAL not in data:
                break
        handler.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in _DROP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
