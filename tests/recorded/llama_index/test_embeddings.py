"""RuncrateEmbedding against a real embeddings endpoint: batches, order, both encodings."""

from __future__ import annotations

import math

from llama_index_runcrate import RuncrateEmbedding

TEXTS = ["Runcrate runs models.", "Cats sleep a lot.", "GPUs do matrix maths."]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_text_embedding_batch(embed_model: RuncrateEmbedding) -> None:
    # embed_batch_size=2: LlamaIndex sends two requests (2 texts, then 1), kept in order.
    batched = embed_model.model_copy(update={"embed_batch_size": 2})
    vectors = batched.get_text_embedding_batch(TEXTS)
    assert len(vectors) == 3
    assert len({len(v) for v in vectors}) == 1
    assert all(isinstance(x, float) for v in vectors for x in v)
    single = embed_model.get_text_embedding(TEXTS[2])
    assert _cosine(vectors[2], single) > 0.999, "the third vector belongs to the third text"


def test_query_embedding(embed_model: RuncrateEmbedding) -> None:
    query = embed_model.get_query_embedding(TEXTS[0])
    assert query
    assert all(isinstance(x, float) for x in query)


async def test_async_embeddings(embed_model: RuncrateEmbedding) -> None:
    vectors = await embed_model.aget_text_embedding_batch(TEXTS[:2])
    query = await embed_model.aget_query_embedding(TEXTS[0])
    assert _cosine(vectors[0], query) > 0.999
    assert _cosine(vectors[0], vectors[1]) < 0.999


def test_base64_encoding_gives_the_same_floats(embed_model: RuncrateEmbedding) -> None:
    as_float = embed_model.get_text_embedding(TEXTS[1])
    as_base64 = embed_model.model_copy(update={"encoding_format": "base64"}).get_text_embedding(
        TEXTS[1]
    )
    assert len(as_base64) == len(as_float)
    assert _cosine(as_float, as_base64) > 0.9999
