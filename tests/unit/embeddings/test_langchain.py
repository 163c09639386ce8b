"""``RuncrateEmbeddings`` (LangChain): exact bodies, ordering, validation, errors, secrets."""

from __future__ import annotations

import json

import pytest
from langchain_core.load import dumps, loads
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import SecretStr, ValidationError

from langchain_runcrate.embeddings import RuncrateEmbeddings
from runcrate_integrations.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    MissingAPIKeyError,
    ResponseFormatError,
)
from tests.helpers import Recorder, error

from .replies import embedding_body

KEY = "rc_live_langchain_secret_1234"
FIVE = ["a", "b", "c", "d", "e"]


def make(rec: Recorder | None = None, /, **kwargs: object) -> RuncrateEmbeddings:
    rec = rec or Recorder()
    params: dict[str, object] = {
        "model": "BAAI/bge-m3",
        "api_key": KEY,
        "http_client": rec.client(),
        "http_async_client": rec.async_client(),
    }
    params.update(kwargs)
    return RuncrateEmbeddings(**params)


class TestRuncrateEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[RuncrateEmbeddings]:
        return RuncrateEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"model": "BAAI/bge-m3", "api_key": KEY}

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, object], dict[str, object]]:
        return (
            {"RUNCRATE_API_KEY": "rc_live_from_env", "RUNCRATE_BASE_URL": "http://127.0.0.1:9/v1"},
            {"model": "BAAI/bge-m3"},
            {"api_key": "rc_live_from_env", "base_url": "http://127.0.0.1:9/v1"},
        )


# ---------------------------------------------------------------------------- bodies


def test_embed_documents_exact_body_and_order() -> None:
    rec = Recorder([embedding_body([[0.1, 0.2], [0.3, 0.4]], order=[1, 0])])
    assert make(rec).embed_documents(["first", "second"]) == [[0.1, 0.2], [0.3, 0.4]]
    assert rec.bodies == [{"model": "BAAI/bge-m3", "input": ["first", "second"]}]
    assert str(rec.requests[0].url) == "https://api.runcrate.ai/v1/embeddings"


def test_embed_query_sends_one_string() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]])])
    assert make(rec).embed_query("what?") == [1.0, 2.0]
    assert rec.body == {"model": "BAAI/bge-m3", "input": "what?"}


def test_options_reach_the_body() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]], base64_encoded=True)])
    emb = make(rec, dimensions=2, encoding_format="base64", model_kwargs={"user": "u-1"})
    assert emb.embed_documents(["x"]) == [[1.0, 2.0]]
    assert rec.body == {
        "model": "BAAI/bge-m3",
        "input": ["x"],
        "dimensions": 2,
        "encoding_format": "base64",
        "user": "u-1",
    }
    assert emb.extra_body == {"user": "u-1"}


def test_headers_key_and_base_url() -> None:
    rec = Recorder([embedding_body([[1.0]])])
    emb = make(rec, base_url="http://127.0.0.1:8092/v1/", default_headers={"X-Team": "search"})
    emb.embed_query("x")
    request = rec.requests[0]
    assert str(request.url) == "http://127.0.0.1:8092/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-team"] == "search"
    assert request.headers["user-agent"].startswith("runcrate-integrations/")


def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://127.0.0.1:9999/v1")
    rec = Recorder([embedding_body([[1.0]])])
    make(rec).embed_query("x")
    assert str(rec.requests[0].url) == "http://127.0.0.1:9999/v1/embeddings"


def test_five_texts_chunk_size_two_make_three_ordered_requests() -> None:
    rec = Recorder(
        [
            embedding_body([[0.0], [1.0]], order=[1, 0]),
            embedding_body([[2.0], [3.0]], order=[1, 0]),
            embedding_body([[4.0]]),
        ]
    )
    # One batch at a time: the scripted replies answer in arrival order.
    llm = make(rec, chunk_size=2, max_concurrency=1)
    assert llm.embed_documents(FIVE) == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert [b["input"] for b in rec.bodies] == [["a", "b"], ["c", "d"], ["e"]]


async def test_async_batches_use_the_async_client() -> None:
    async_rec = Recorder(
        [
            embedding_body([[0.0], [1.0]], order=[1, 0]),
            embedding_body([[2.0], [3.0]], order=[1, 0]),
            embedding_body([[4.0]]),
            embedding_body([[9.0]]),
        ]
    )
    sync_rec = Recorder()  # answers nothing: a thread-pool fallback to sync would fail here
    emb = make(
        chunk_size=2, http_client=sync_rec.client(), http_async_client=async_rec.async_client()
    )
    assert await emb.aembed_documents(FIVE) == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert await emb.aembed_query("q") == [9.0]
    assert [b["input"] for b in async_rec.bodies] == [["a", "b"], ["c", "d"], ["e"], "q"]
    assert sync_rec.requests == []


async def test_empty_list_returns_empty_without_a_request() -> None:
    rec = Recorder()
    emb = make(rec)
    assert emb.embed_documents([]) == []
    assert await emb.aembed_documents([]) == []
    assert rec.requests == []


def test_sync_client_is_built_once() -> None:
    rec = Recorder([embedding_body([[1.0]]), embedding_body([[2.0]])])
    emb = make(rec)
    emb.embed_query("a")
    client = emb.embedder.clients.sync()
    emb.embed_query("b")
    assert emb.embedder.clients.sync() is client


def test_instances_with_equal_settings_share_one_pool() -> None:
    one = RuncrateEmbeddings(model="a", api_key=KEY)
    two = RuncrateEmbeddings(model="b", api_key=KEY)
    assert one.embedder.clients.sync() is two.embedder.clients.sync()


# ---------------------------------------------------------------------------- validation


async def test_bad_texts_fail_before_any_request() -> None:
    rec = Recorder()
    emb = make(rec, chunk_size=2)
    with pytest.raises(ValueError, match=r"texts\[3\] is an empty string"):
        emb.embed_documents(["a", "b", "c", ""])
    with pytest.raises(ValueError, match="cannot embed an empty string"):
        emb.embed_query("")
    with pytest.raises(TypeError, match="got a single string"):
        emb.embed_documents("oops")  # type: ignore[arg-type]  # the classic mistake
    with pytest.raises(TypeError, match=r"texts\[0\] must be a string, got NoneType"):
        await emb.aembed_documents([None])  # type: ignore[list-item]  # bad on purpose
    assert rec.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"dimensions": 0}, "dimensions"),
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"dimension": 256}, "dimension"),  # a typo is an error, not silently ignored
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**kwargs)


def test_bad_model_and_extra_body_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="model must be a non-empty"):
        make(model="")
    with pytest.raises(ValueError, match="extra_body must not set 'input'"):
        make(extra_body={"input": "x"})


def test_missing_key_keeps_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
    monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKeyError, match="RUNCRATE_API_KEY"):
        RuncrateEmbeddings(model="m")
    # A local server may run without a key.
    assert RuncrateEmbeddings(model="m", base_url="http://127.0.0.1:8092/v1").api_key is None


def test_changing_a_field_rebuilds_the_request_settings() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0]])])
    emb = make(rec)
    emb.dimensions = 2
    emb.embed_query("x")
    assert rec.body == {"model": "BAAI/bge-m3", "input": "x", "dimensions": 2}
    with pytest.raises(ValueError, match=r"(?s)chunk_size.*greater than or equal to 1"):
        emb.chunk_size = 0
    assert emb.chunk_size == 256  # the rejected value was undone


def test_model_copy_with_update_uses_the_new_values() -> None:
    rec = Recorder([embedding_body([[1.0]])])
    copy = make(rec).model_copy(update={"model": "other"})
    copy.embed_query("x")
    assert rec.body["model"] == "other"


# ---------------------------------------------------------------------------- errors


def test_402_is_insufficient_credits() -> None:
    rec = Recorder([error(402, "insufficient_credits", "Out of credits")])
    with pytest.raises(InsufficientCreditsError, match="Add credits"):
        make(rec).embed_documents(["a"])
    assert len(rec.requests) == 1


async def test_401_is_authentication_error_async() -> None:
    rec = Recorder([error(401, "invalid_api_key", f"Invalid API Key {KEY}")])
    with pytest.raises(AuthenticationError, match="rc_live_") as info:
        await make(rec).aembed_query("a")
    assert KEY not in str(info.value)


def test_dimensions_ignored_by_the_server_is_reported() -> None:
    rec = Recorder([embedding_body([[1.0, 2.0, 3.0]])])
    with pytest.raises(ResponseFormatError, match="may not support the dimensions option"):
        make(rec, dimensions=2).embed_query("x")


# ---------------------------------------------------------------------------- secrets


def test_key_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
    emb = make()
    assert isinstance(emb.api_key, SecretStr)
    for text in (repr(emb), str(emb), dumps(emb), json.dumps(emb.to_json()), emb.model_dump_json()):
        assert KEY not in text
    serialised = json.loads(dumps(emb))
    secret = {"lc": 1, "type": "secret", "id": ["RUNCRATE_API_KEY"]}
    assert serialised["kwargs"]["api_key"] == secret
    assert "http_client" not in serialised["kwargs"]


@pytest.mark.filterwarnings("ignore:The function `loads` is in beta")
def test_dumps_loads_round_trip() -> None:
    emb = RuncrateEmbeddings(model="m", api_key=KEY, chunk_size=7, dimensions=64)
    revived = loads(
        dumps(emb),
        secrets_map={"RUNCRATE_API_KEY": KEY},
        valid_namespaces=["langchain_runcrate"],
        allowed_objects=[RuncrateEmbeddings],
    )
    assert isinstance(revived, RuncrateEmbeddings)
    assert (revived.model, revived.chunk_size, revived.dimensions) == ("m", 7, 64)
    assert revived.api_key is not None and revived.api_key.get_secret_value() == KEY
