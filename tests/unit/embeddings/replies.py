"""Canned ``/embeddings`` answers for the embeddings tests."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx2

from runcrate_integrations.config import ClientSettings
from tests.helpers import error, private_async_client, private_client

JSONDict = dict[str, Any]


def b64(vector: Sequence[float]) -> str:
    """OpenAI's base64 wire form: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_body(
    vectors: Sequence[Sequence[float]],
    *,
    order: Iterable[int] | None = None,
    base64_encoded: bool = False,
    model: str = "BAAI/bge-m3",
) -> JSONDict:
    """An ``/embeddings`` answer; ``order`` lists the indexes in the order the items appear."""
    order = list(range(len(vectors))) if order is None else list(order)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": b64(vectors[i]) if base64_encoded else list(vectors[i]),
        }
        for i in order
    ]
    usage = {"prompt_tokens": len(vectors), "total_tokens": len(vectors)}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def keyword_vector(text: str) -> list[float]:
    """A toy embedding: how often the text mentions cats, dogs and fish (plus a bias)."""
    low = text.lower()
    return [float(low.count("cat")), float(low.count("dog")), float(low.count("fish")), 0.1]


def echo(request: httpx2.Request) -> httpx2.Response:
    """Embed whatever was sent with :func:`keyword_vector`, answering in reverse index order."""
    sent = json.loads(request.content)["input"]
    texts = [sent] if isinstance(sent, str) else sent
    vectors = [keyword_vector(t) for t in texts]
    return httpx2.Response(200, json=embedding_body(vectors, order=reversed(range(len(texts)))))


BULK_KEY = "rc_live_bulk_test_key"


def vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 997)]


class Echo:
    """Answers each /embeddings request with vectors derived from its inputs (any order),
    optionally slowly, and counts how many were in flight at once."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.inputs: list[str] = []
        self.batches: list[list[str]] = []  # each request's texts, in arrival order
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def _start(self, request: httpx2.Request) -> list[str]:
        texts: list[str] = json.loads(request.content)["input"]
        with self.lock:
            self.inputs += texts
            self.batches.append(texts)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return texts

    def _answer(self, texts: list[str]) -> httpx2.Response:
        with self.lock:
            self.in_flight -= 1
        if self.fail_on is not None and self.fail_on in texts:
            return error(401, "invalid_api_key", "Invalid API Key")
        # Items in reverse order, with their index: the core must put them back in place.
        body = embedding_body([vector(t) for t in texts], order=reversed(range(len(texts))))
        return httpx2.Response(200, json=body)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        texts = self._start(request)
        time.sleep(self.delay)
        return self._answer(texts)

    async def ahandler(self, request: httpx2.Request) -> httpx2.Response:
        texts = self._start(request)
        await asyncio.sleep(self.delay)
        return self._answer(texts)

    def http(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))

    def async_http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.ahandler))

    def client(self) -> Any:
        return private_client(ClientSettings.resolve(api_key=BULK_KEY), self.http())

    def async_client(self) -> Any:
        return private_async_client(ClientSettings.resolve(api_key=BULK_KEY), self.async_http())
