"""``RuncrateEmbedding`` (LlamaIndex): one request per batch, ordering, validation, secrets."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import ValidationError

from llama_index_runcrate.embeddings import RuncrateEmbedding
from runcrate_integrations.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    MissingAPIKeyError,
)
from tests.helpers import Recorder, error

from .replies import Echo, echo, embedding_body, keyword_vector, vector

KEY = "rc_live_llama_secret_5678"
FIVE = ["a", "b", "c", "d", "e"]


def make(rec: Recorder | None = None, /, **kwargs: object) -> RuncrateEmbedding:
    rec = rec or Recorder()
    params: dict[str, object] = {
        "model": "BAAI/bge-m3",
        "api_key": KEY,
        "http_client": rec.client(),
        "http_async_client": rec.async_client(),
    }
    params.update(kwargs)
    return RuncrateEmbedding(**params)


def test_is_a_base_embedding_with_a_stable_class_name() -> None:
    emb = make()
    assert isinstance(emb, BaseEmbedding)
    assert RuncrateEmbedding.class_name() == "RuncrateEmbedding"
    assert emb.model_name == "BAAI/bge-m3"
    assert emb.embed_batch_size == 256


def test_query_and_text_send_one_string() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]]), embedding_body([[3.0, 4.0]])])
    emb = make(rec)
    assert emb.get_query_embedding("what?") == [1.0, 2.0]
    assert emb.get_text_embedding("doc") == [3.0, 4.0]
    assert rec.bodies == [
        {"model": "BAAI/bge-m3", "input": "what?"},
        {"model": "BAAI/bge-m3", "input": "doc"},
    ]


def test_one_request_per_llama_index_batch_in_order_with_one_worker() -> None:
    rec = Recorder(
        [
            embedding_body([[0.0], [1.0]], order=[1, 0]),
            embedding_body([[2.0], [3.0]], order=[1, 0]),
            embedding_body([[4.0]]),
        ]
    )
    emb = make(rec, embed_batch_size=2, num_workers=1)  # one after another: answers queued
    assert emb.get_text_embedding_batch(FIVE) == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert rec.bodies == [
        {"model": "BAAI/bge-m3", "input": ["a", "b"]},
        {"model": "BAAI/bge-m3", "input": ["c", "d"]},
        {"model": "BAAI/bge-m3", "input": ["e"]},
    ]


async def test_async_batches_in_order() -> None:
    # LlamaIndex gathers its async batches concurrently; echo answers each by its content.
    texts = ["cat", "dog", "fish", "cat cat", "dog fish"]
    rec = Recorder([echo, echo, echo, echo])
    emb = make(rec, embed_batch_size=2)
    assert await emb.aget_text_embedding_batch(texts) == [keyword_vector(t) for t in texts]
    assert sorted(len(b["input"]) for b in rec.bodies) == [1, 2, 2]
    assert await emb.aget_query_embedding("cat") == keyword_vector("cat")
    assert rec.body == {"model": "BAAI/bge-m3", "input": "cat"}


async def test_async_text_embedding() -> None:
    rec = Recorder([embedding_body([[5.0]])])
    assert await make(rec).aget_text_embedding("x") == [5.0]


def test_options_and_aliases_reach_the_body() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]], base64_encoded=True)])
    emb = RuncrateEmbedding(
        model_name="m",
        api_key=KEY,
        api_base="http://127.0.0.1:8092/v1",
        dimensions=2,
        encoding_format="base64",
        additional_kwargs={"user": "u"},
        http_client=rec.client(),
        async_http_client=rec.async_client(),
    )
    assert emb.get_text_embedding_batch(["x"]) == [[1.0, 2.0]]
    assert rec.body == {
        "model": "m",
        "input": ["x"],
        "dimensions": 2,
        "encoding_format": "base64",
        "user": "u",
    }
    assert str(rec.requests[0].url) == "http://127.0.0.1:8092/v1/embeddings"
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_empty_batch_sends_nothing() -> None:
    rec = Recorder()
    emb = make(rec)
    assert emb.get_text_embedding_batch([]) == []
    assert await emb.aget_text_embedding_batch([]) == []
    assert rec.requests == []


async def test_a_bad_text_in_a_later_batch_fails_before_any_request() -> None:
    rec = Recorder([embedding_body([[0.0], [1.0]])])
    emb = make(rec, embed_batch_size=2)
    with pytest.raises(ValueError, match=r"texts\[4\] is an empty string"):
        emb.get_text_embedding_batch(["a", "b", "c", "d", ""])
    with pytest.raises(ValueError, match=r"texts\[0\] is an empty string"):
        await emb.aget_text_embedding_batch(["", "b", "c"])
    with pytest.raises(ValueError, match="cannot embed an empty string"):
        emb.get_query_embedding("")
    assert rec.requests == []


def test_bad_settings_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="embed_batch_size"):
        make(embed_batch_size=0)
    with pytest.raises(ValidationError, match="dimensions"):
        make(dimensions=0)
    with pytest.raises(ValidationError, match="encoding_format"):
        make(encoding_format="int8")
    with pytest.raises(ValueError, match="model must be a non-empty"):
        make(model="")
    monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
    monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKeyError, match="RUNCRATE_API_KEY"):
        RuncrateEmbedding(model="m")


def test_changing_a_field_rebuilds_the_request_settings() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]])])
    emb = make(rec)
    emb.dimensions = 2
    emb.get_query_embedding("a")
    assert rec.body == {"model": "BAAI/bge-m3", "input": "a", "dimensions": 2}
    with pytest.raises(ValueError, match=r"(?s)dimensions.*greater than or equal to 1"):
        emb.dimensions = 0
    assert emb.dimensions == 2  # the rejected value was undone


def test_402_and_401_are_typed() -> None:
    rec = Recorder(
        [
            error(402, "insufficient_credits", "Out of credits"),
            error(401, "invalid_api_key", "Invalid API Key"),
        ]
    )
    emb = make(rec)
    with pytest.raises(InsufficientCreditsError, match="Add credits"):
        emb.get_text_embedding_batch(["a"])
    with pytest.raises(AuthenticationError, match="RUNCRATE_API_KEY"):
        emb.get_query_embedding("a")
    assert len(rec.requests) == 2


async def test_402_async() -> None:
    rec = Recorder([error(402, "insufficient_credits", "Out of credits")])
    with pytest.raises(InsufficientCreditsError):
        await make(rec).aget_query_embedding("a")


def test_key_never_serialised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)
    emb = make()
    for text in (repr(emb), str(emb), emb.to_json(), json.dumps(emb.to_dict()), emb.json()):
        assert KEY not in text
    data = emb.to_dict()
    assert "api_key" not in data and "http_client" not in data
    assert data["class_name"] == "RuncrateEmbedding"
    # Reloading takes the key from the environment again.
    revived = RuncrateEmbedding.from_dict(data)
    assert revived.model_name == "BAAI/bge-m3"
    assert revived.embedder.clients.settings.api_key is not None
    assert revived.embedder.clients.settings.api_key.get_secret_value() == KEY


def test_pickles_for_multiprocessing_ingestion(caplog: pytest.LogCaptureFixture) -> None:
    emb = RuncrateEmbedding(model="m", api_key=KEY, dimensions=8)
    emb.embedder.clients.sync()  # a used instance holds a live client
    with caplog.at_level(logging.WARNING):
        revived = pickle.loads(pickle.dumps(emb))
    assert "unpickleable" not in caplog.text
    assert revived.embedder.options == emb.embedder.options
    assert revived.embedder.clients.settings == emb.embedder.clients.settings


# ---------------------------------------------------------------------- sync batches at once

TEXTS = [f"passage {i}" + "." * (i % 5) for i in range(37)]


def echo_model(echo: Echo, **kwargs: object) -> RuncrateEmbedding:
    return RuncrateEmbedding(model="m", api_key=KEY, http_client=echo.http(), **kwargs)


@pytest.mark.parametrize("workers", [1, 3, None])
def test_sync_batches_go_out_num_workers_at_once_in_order(workers: int | None) -> None:
    echo = Echo(delay=0.02)
    emb = echo_model(echo, embed_batch_size=2, num_workers=workers)
    assert emb.get_text_embedding_batch(TEXTS) == [vector(t) for t in TEXTS]
    assert sorted(echo.inputs) == sorted(TEXTS)  # every text sent once
    assert echo.most_in_flight == (workers or 1)


def test_sync_batches_default_to_four_at_once() -> None:
    echo = Echo(delay=0.02)
    assert echo_model(echo, embed_batch_size=1).get_text_embedding_batch(TEXTS[:12]) == [
        vector(t) for t in TEXTS[:12]
    ]
    assert echo.most_in_flight == 4


def test_sync_batches_keep_llama_index_events_callbacks_and_cache() -> None:
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.embedding import (
        EmbeddingEndEvent,
        EmbeddingStartEvent,
    )
    from llama_index.core.storage.kvstore import SimpleKVStore

    seen: list[object] = []

    class Collect(BaseEventHandler):
        def handle(self, event: object, **kwargs: object) -> None:
            if isinstance(event, (EmbeddingStartEvent, EmbeddingEndEvent)):
                seen.append(event)

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    debug = LlamaDebugHandler()
    echo = Echo(delay=0.01)
    emb = echo_model(
        echo,
        embed_batch_size=4,
        num_workers=3,
        callback_manager=CallbackManager([debug]),
        embeddings_cache=SimpleKVStore(),
    )
    try:
        assert emb.get_text_embedding_batch(TEXTS) == [vector(t) for t in TEXTS]
        assert emb.get_text_embedding_batch(TEXTS[:8]) == [vector(t) for t in TEXTS[:8]]
    finally:
        root.event_handlers.remove(handler)
    batches = 10 + 2
    assert [type(e).__name__ for e in seen].count("EmbeddingStartEvent") == batches
    ends = [e for e in seen if isinstance(e, EmbeddingEndEvent)]
    assert sorted(c for e in ends for c in e.chunks) == sorted(TEXTS + TEXTS[:8])
    assert len(debug.get_event_pairs(CBEventType.EMBEDDING)) == batches
    assert len(echo.inputs) == len(TEXTS)  # the second call was answered from the cache


def test_a_failed_sync_batch_stops_the_rest_and_raises_typed() -> None:
    echo = Echo(delay=0.01, fail_on=TEXTS[0])
    emb = echo_model(echo, embed_batch_size=1, num_workers=2, max_retries=0)
    with pytest.raises(AuthenticationError):
        emb.get_text_embedding_batch(TEXTS)
    assert len(echo.inputs) <= 4  # the failing batch and the few already under way


def test_sync_show_progress_counts_every_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from runcrate_integrations import embeddings as core

    counted: list[int] = []

    @contextmanager
    def bar(show: bool, total: int) -> Iterator[Callable[[int], object] | None]:
        assert show and total == len(TEXTS)
        yield counted.append

    monkeypatch.setattr("llama_index_runcrate.embeddings.progress_bar", bar)
    emb = echo_model(Echo(), embed_batch_size=5, num_workers=2)
    assert emb.get_text_embedding_batch(TEXTS, show_progress=True) == [vector(t) for t in TEXTS]
    assert sorted(counted) == [2] + [5] * 7
    assert core.progress_bar is not bar  # only the adapter's name was replaced
