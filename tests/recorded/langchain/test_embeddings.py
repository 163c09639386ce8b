"""RuncrateEmbeddings against a real embeddings endpoint: batching, order, both encodings."""

from __future__ import annotations

import math

from langchain_runcrate import RuncrateEmbeddings

TEXTS = ["Runcrate runs models.", "Cats sleep a lot.", "GPUs do matrix maths."]


def _is_vector(vector: list[float], dims: int | None = None) -> None:
    assert vector
    assert all(isinstance(x, float) for x in vector)
    if dims is not None:
        assert len(vector) == dims


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embed_documents_in_batches(embeddings: RuncrateEmbeddings) -> None:
    # chunk_size=2: two requests (2 texts, then 1), answers joined in input order.
    batched = embeddings.model_copy(update={"chunk_size": 2})
    vectors = batched.embed_documents(TEXTS)
    assert len(vectors) == 3
    dims = len(vectors[0])
    for vector in vectors:
        _is_vector(vector, dims)
    single = embeddings.embed_query(TEXTS[2])
    assert _cosine(vectors[2], single) > 0.999, "the third vector belongs to the third text"


async def test_aembed(embeddings: RuncrateEmbeddings) -> None:
    vectors = await embeddings.aembed_documents(TEXTS[:2])
    query = await embeddings.aembed_query(TEXTS[0])
    assert len(vectors) == 2
    _is_vector(query, len(vectors[0]))
    assert _cosine(vectors[0], query) > 0.999
    assert _cosine(vectors[0], vectors[1]) < 0.999


def test_base64_encoding_gives_the_same_floats(embeddings: RuncrateEmbeddings) -> None:
    as_float = embeddings.embed_query(TEXTS[1])
    as_base64 = embeddings.model_copy(update={"encoding_format": "base64"}).embed_query(TEXTS[1])
    _is_vector(as_base64, len(as_float))
    assert _cosine(as_float, as_base64) > 0.9999
