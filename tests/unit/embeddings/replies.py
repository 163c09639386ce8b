"""Canned ``/embeddings`` answers for the embeddings tests."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import httpx2

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
