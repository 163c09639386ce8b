"""``runcrate_integrations.embeddings``: bodies, parsing, batching and the request functions."""

from __future__ import annotations

import copy
import pickle
import time
from typing import Any

import httpx2
import pytest

from runcrate_integrations.config import ClientSettings
from runcrate_integrations.embeddings import (
    Embedder,
    EmbeddingOptions,
    batches,
    check_texts,
    decode_base64_vector,
    embed_texts,
    parse_embeddings,
)
from runcrate_integrations.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ResponseFormatError,
)
from runcrate_integrations.net.clients import Clients
from tests.helpers import Recorder, error

from .replies import b64, embedding_body

KEY = "rc_live_core_test_key"
FIVE = ["a", "b", "c", "d", "e"]


def settings(**kwargs: object) -> ClientSettings:
    return ClientSettings.resolve(api_key=KEY, **kwargs)  # type: ignore[arg-type]  # test kwargs


def private_client(settings: ClientSettings, http: httpx2.Client) -> Any:
    return Clients(settings, http_client=http)


def private_async_client(settings: ClientSettings, http: httpx2.AsyncClient) -> Any:
    return Clients(settings, http_async_client=http)


# ---------------------------------------------------------------------------- request bodies


def test_body_for_one_text_sends_a_plain_string() -> None:
    assert EmbeddingOptions("BAAI/bge-m3").body("hello") == {
        "model": "BAAI/bge-m3",
        "input": "hello",
    }


def test_body_with_every_option() -> None:
    body = EmbeddingOptions(
        "m", dimensions=256, encoding_format="base64", extra_body={"user": "u1"}
    ).body(["a", "b"])
    assert body == {
        "model": "m",
        "input": ["a", "b"],
        "dimensions": 256,
        "encoding_format": "base64",
        "user": "u1",
    }


def test_float_is_the_server_default_and_is_not_sent() -> None:
    assert "encoding_format" not in EmbeddingOptions("m", encoding_format="float").body(["a"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, "model must be a non-empty"),
        ({"model": "  "}, "model must be a non-empty"),
        ({"dimensions": 0}, "dimensions must be an integer >= 1, got 0"),
        ({"dimensions": True}, "dimensions must be an integer >= 1, got True"),
        ({"dimensions": 2.5}, "dimensions must be an integer >= 1, got 2.5"),
        ({"encoding_format": "int8"}, "encoding_format must be 'float' or 'base64', got 'int8'"),
        ({"extra_body": {"input": ["x"]}}, "extra_body must not set 'input'"),
        ({"extra_body": {"model": "other"}}, "extra_body must not set 'model'"),
        ({"extra_body": {"dimensions": 8}}, "set by the dimensions option"),
        ({"extra_body": {"encoding_format": "base64"}}, "set by the encoding_format option"),
        ({"extra_body": {"user": object()}}, "extra_body is not JSON-serialisable"),
    ],
)
def test_body_is_checked(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"model": "m", **kwargs}
    model = args.pop("model")
    with pytest.raises(ValueError, match=message):
        EmbeddingOptions(model, **args)  # type: ignore[arg-type]  # bad on purpose


def test_options_precompute_the_body_and_check_chunk_size() -> None:
    opts = EmbeddingOptions("m", dimensions=8, encoding_format="base64", extra_body={"user": "u"})
    assert opts.body(["x"]) == {
        "model": "m",
        "input": ["x"],
        "dimensions": 8,
        "encoding_format": "base64",
        "user": "u",
    }
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
            EmbeddingOptions("m", chunk_size=bad)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ValueError, match="model must be"):
        EmbeddingOptions("")


def test_options_pickle_and_compare() -> None:
    opts = EmbeddingOptions("m", dimensions=8, chunk_size=3)
    clone = pickle.loads(pickle.dumps(opts))
    assert clone == opts
    assert clone.body("x") == {"model": "m", "input": "x", "dimensions": 8}


# ---------------------------------------------------------------------------- inputs


def test_check_texts_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="got a single string; wrap it in a list"):
        check_texts("hello")


def test_check_texts_names_the_bad_index() -> None:
    with pytest.raises(ValueError, match=r"texts\[2\] is an empty string"):
        check_texts(["a", "b", ""])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string, got int"):
        check_texts(["a", 3])
    with pytest.raises(TypeError, match="expected a list of strings, got dict"):
        check_texts({"a": 1})


def test_check_texts_accepts_any_iterable() -> None:
    assert check_texts(t for t in ("a", "b")) == ["a", "b"]
    assert check_texts(("a",)) == ["a"]


def test_batches_keep_order_and_size() -> None:
    assert batches(FIVE, 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert batches(FIVE, 10) == [FIVE]
    assert batches([], 3) == []
    with pytest.raises(ValueError, match="batch size must be an integer >= 1"):
        batches(FIVE, 0)


# ---------------------------------------------------------------------------- answers


def test_base64_decodes_little_endian_float32() -> None:
    values = [0.5, -0.25, 1.0, 3.0]
    assert decode_base64_vector(b64(values)) == values
    # Byte-level check, independent of the helper: 1.0f is 00 00 80 3f little-endian.
    assert decode_base64_vector("AACAPw==") == [1.0]


def test_base64_errors_are_response_format_errors() -> None:
    with pytest.raises(ResponseFormatError, match="not valid base64"):
        decode_base64_vector("!!!")
    with pytest.raises(ResponseFormatError, match="3 bytes, not a whole number of float32"):
        decode_base64_vector("AAAA")


def test_parse_orders_vectors_by_index() -> None:
    body = embedding_body([[0.0], [1.0], [2.0]], order=[2, 0, 1])
    assert parse_embeddings(body, 3) == [[0.0], [1.0], [2.0]]


def test_parse_decodes_base64_whatever_was_asked() -> None:
    body = embedding_body([[0.5, 1.5], [2.5, -1.0]], order=[1, 0], base64_encoded=True)
    assert parse_embeddings(body, 2) == [[0.5, 1.5], [2.5, -1.0]]


def test_parse_without_index_uses_position() -> None:
    assert parse_embeddings({"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}, 2) == [
        [1.0],
        [2.0],
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"object": "list"}, r"no 'data' list \(keys: \['object'\]\)"),
        ({"data": None}, "no 'data' list"),
        (embedding_body([[1.0]]), r"sent 2 input\(s\) to /embeddings but got 1 vector\(s\)"),
        (
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]},
            "repeats index 0",
        ),
        (
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [2.0]}]},
            r"data\[1\] has index 5, outside 0..1",
        ),
        ({"data": [{"index": 0, "embedding": [1.0]}, "oops"]}, r"data\[1\] .* is not an object"),
        (
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": None}]},
            "embedding 1 is neither a list of floats nor a base64 string",
        ),
    ],
)
def test_parse_rejects_broken_answers(body: dict[str, object], message: str) -> None:
    with pytest.raises(ResponseFormatError, match=message):
        parse_embeddings(body, 2)


def test_parse_checks_requested_dimensions() -> None:
    body = embedding_body([[1.0, 2.0, 3.0]])
    assert parse_embeddings(body, 1, dimensions=3) == [[1.0, 2.0, 3.0]]
    with pytest.raises(ResponseFormatError, match="asked for dimensions=2 but embedding 0 has 3"):
        parse_embeddings(body, 1, dimensions=2)


# ---------------------------------------------------------------------------- requests


def test_batches_are_sent_in_order_and_reassembled() -> None:
    rec = Recorder(
        [
            embedding_body([[0.0], [1.0]], order=[1, 0]),
            embedding_body([[2.0], [3.0]], order=[1, 0]),
            embedding_body([[4.0]]),
        ]
    )
    client = private_client(settings(), rec.client())
    # One batch at a time: the scripted replies answer in arrival order.
    vectors = embed_texts(client, EmbeddingOptions("m", chunk_size=2, max_concurrency=1), FIVE)
    assert vectors == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert rec.bodies == [
        {"model": "m", "input": ["a", "b"]},
        {"model": "m", "input": ["c", "d"]},
        {"model": "m", "input": ["e"]},
    ]
    assert [str(r.url) for r in rec.requests] == ["https://api.runcrate.ai/v1/embeddings"] * 3
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_async_batches_are_sent_in_order_and_reassembled() -> None:
    rec = Recorder(
        [
            embedding_body([[0.0], [1.0]], order=[1, 0], base64_encoded=True),
            embedding_body([[2.0], [3.0]], order=[1, 0], base64_encoded=True),
            embedding_body([[4.0]], base64_encoded=True),
        ]
    )
    client = private_async_client(settings(), rec.async_client())
    opts = EmbeddingOptions("m", chunk_size=2, encoding_format="base64")
    assert await Embedder(client, opts).aembed_texts(FIVE) == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert [b["input"] for b in rec.bodies] == [["a", "b"], ["c", "d"], ["e"]]
    assert {b["encoding_format"] for b in rec.bodies} == {"base64"}


def test_single_text_goes_out_as_a_string() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]])])
    client = private_client(settings(), rec.client())
    assert Embedder(client, EmbeddingOptions("m", dimensions=2)).embed_text("hi") == [1.0, 2.0]
    assert rec.body == {"model": "m", "input": "hi", "dimensions": 2}


async def test_async_single_text() -> None:
    rec = Recorder([embedding_body([[1.0]])])
    client = private_async_client(settings(), rec.async_client())
    assert await Embedder(client, EmbeddingOptions("m")).aembed_text("hi") == [1.0]
    assert rec.body == {"model": "m", "input": "hi"}


def test_empty_list_sends_nothing() -> None:
    rec = Recorder()
    assert embed_texts(private_client(settings(), rec.client()), EmbeddingOptions("m"), []) == []
    assert rec.requests == []


def test_a_bad_text_anywhere_stops_every_batch() -> None:
    rec = Recorder([embedding_body([[0.0], [1.0]])])
    client = private_client(settings(), rec.client())
    with pytest.raises(ValueError, match=r"texts\[4\] is an empty string"):
        embed_texts(client, EmbeddingOptions("m", chunk_size=2), ["a", "b", "c", "d", ""])
    with pytest.raises(ValueError, match="cannot embed an empty string"):
        Embedder(client, EmbeddingOptions("m")).embed_text("")
    assert rec.requests == []


def test_wrong_count_in_a_later_batch_is_a_response_format_error() -> None:
    rec = Recorder([embedding_body([[0.0], [1.0]]), embedding_body([[2.0]])])
    client = private_client(settings(), rec.client())
    with pytest.raises(ResponseFormatError, match=r"sent 2 input\(s\).*got 1 vector\(s\)"):
        embed_texts(client, EmbeddingOptions("m", chunk_size=2), ["a", "b", "c", "d"])


def test_402_is_typed_and_not_retried() -> None:
    rec = Recorder([error(402, "insufficient_credits", "No credits left")])
    client = private_client(settings(max_retries=2), rec.client())
    with pytest.raises(InsufficientCreditsError, match="No credits left") as info:
        embed_texts(client, EmbeddingOptions("m"), ["a"])
    assert info.value.code == "insufficient_credits"
    assert len(rec.requests) == 1


async def test_401_is_typed_async() -> None:
    rec = Recorder([error(401, "invalid_api_key", "Invalid API Key")])
    client = private_async_client(settings(), rec.async_client())
    with pytest.raises(AuthenticationError, match="RUNCRATE_API_KEY") as info:
        await Embedder(client, EmbeddingOptions("m")).aembed_texts(["a"])
    assert KEY not in str(info.value)
    assert len(rec.requests) == 1


def test_429_is_retried_by_the_core_client() -> None:
    # A reset time in the past means "retry now": the core's retry path, without sleeping.
    past = str(int(time.time()) - 10)
    rec = Recorder(
        [
            error(429, "rate_limited", "slow down", headers={"X-RateLimit-Reset": past}),
            embedding_body([[1.0]]),
        ]
    )
    client = private_client(settings(max_retries=1), rec.client())
    assert embed_texts(client, EmbeddingOptions("m"), ["a"]) == [[1.0]]
    assert len(rec.requests) == 2


# ---------------------------------------------------------------------------- Embedder


def test_embedder_keeps_its_sync_client() -> None:
    rec = Recorder([embedding_body([[1.0]]), embedding_body([[2.0]])])
    emb = Embedder(Clients(settings(), http_client=rec.client()), EmbeddingOptions("m"))
    first = emb.clients.sync()
    assert emb.embed_text("a") == [1.0]
    assert emb.embed_texts(["b"]) == [[2.0]]
    assert emb.clients.sync() is first


def test_embedder_uses_the_shared_pool_without_an_http_client() -> None:
    one = Embedder(Clients(settings()), EmbeddingOptions("m"))
    two = Embedder(Clients(settings()), EmbeddingOptions("other"))
    assert one.clients.sync() is two.clients.sync()


async def test_embedder_keeps_a_given_async_client() -> None:
    rec = Recorder([embedding_body([[1.0]]), embedding_body([[2.0]])])
    emb = Embedder(Clients(settings(), http_async_client=rec.async_client()), EmbeddingOptions("m"))
    first = emb.clients.async_()
    assert await emb.aembed_text("a") == [1.0]
    assert await emb.aembed_texts(["b"]) == [[2.0]]
    assert emb.clients.async_() is first


async def test_embedder_async_pool_is_shared_per_loop() -> None:
    one = Embedder(Clients(settings()), EmbeddingOptions("m"))
    two = Embedder(Clients(settings()), EmbeddingOptions("m"))
    assert one.clients.async_() is two.clients.async_()


def test_embedder_copies_and_pickles_without_its_clients() -> None:
    http = httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(500)))
    emb = Embedder(Clients(settings(), http_client=http), EmbeddingOptions("m", chunk_size=3))
    emb.clients.sync()
    clone = copy.deepcopy(emb)
    assert clone.options == emb.options and clone.clients.settings == emb.clients.settings
    assert clone.clients.http_client is http
    plain = Embedder(Clients(settings()), EmbeddingOptions("m"))
    plain.clients.sync()
    revived = pickle.loads(pickle.dumps(plain))
    assert revived.clients.settings == plain.clients.settings and revived.clients._sync is None
