"""Constructor settings mean the same in all four classes: one rule, decided in the core.

``timeout`` is seconds > 0, an ``httpx2.Timeout`` or ``None`` (wait forever) for
``ChatRuncrate``, ``RuncrateLLM``, ``RuncrateEmbeddings`` and ``RuncrateEmbedding`` alike; the
value reaches the client as given, and anything else fails at construction with one message.
Per call (chat), a timeout follows the same rule before anything is sent.
"""

from __future__ import annotations

import pickle
import re
from typing import Any

import httpx2
import pytest

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from runcrate_integrations.config import DEFAULT_TIMEOUT, ClientSettings
from tests.unit.embeddings.replies import Echo, vector

from .conftest import KEY, MODES, Adapter, Mode

CLASSES = [ChatRuncrate, RuncrateLLM, RuncrateEmbeddings, RuncrateEmbedding]
SPLIT = httpx2.Timeout(30.0, connect=2.0)


def settings(instance: Any) -> ClientSettings:
    """The core settings an instance's requests go out with."""
    holder = instance.engine if hasattr(instance, "engine") else instance.embedder
    settings: ClientSettings = holder.clients.settings
    return settings


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("given", "kept"),
    [(None, None), (5, 5.0), (2.5, 2.5), (SPLIT, SPLIT)],
    ids=["None", "int", "float", "httpx2.Timeout"],
)
def test_every_class_accepts_the_same_timeouts(cls: type[Any], given: Any, kept: Any) -> None:
    instance = cls(model="m", api_key=KEY, timeout=given)
    assert instance.timeout == kept
    assert settings(instance).timeout == kept
    if hasattr(instance, "engine"):  # the chat classes also show their openai client
        assert instance.client.timeout == kept


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_class_defaults_to_the_same_timeout(cls: type[Any]) -> None:
    assert settings(cls(model="m", api_key=KEY)).timeout == DEFAULT_TIMEOUT


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("given", "message"),
    [
        (0, "timeout must be > 0 seconds, got 0"),
        (-1.5, "timeout must be > 0 seconds, got -1.5"),
        (True, "timeout must be seconds > 0, an httpx2.Timeout or None, got bool"),
        ("30", "timeout must be seconds > 0, an httpx2.Timeout or None, got str"),
    ],
    ids=["zero", "negative", "bool", "str"],
)
def test_every_class_rejects_the_same_timeouts(cls: type[Any], given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(model="m", api_key=KEY, timeout=given)


@pytest.mark.parametrize("mode", MODES)
async def test_a_bad_per_call_timeout_fails_before_sending(
    pair: tuple[Adapter, Adapter], mode: Mode
) -> None:
    for adapter in pair:
        with pytest.raises(ValueError, match="timeout must be > 0 seconds, got 0"):
            await adapter.call(adapter.model(), mode, timeout=0)
        assert adapter.count == 0


@pytest.mark.parametrize("cls", [RuncrateLLM, RuncrateEmbedding], ids=lambda c: c.__name__)
@pytest.mark.parametrize("given", [None, 7.0, SPLIT], ids=["None", "float", "httpx2.Timeout"])
def test_a_saved_llama_index_object_loads_with_its_timeout(
    cls: type[Any], given: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = cls(model="m", api_key=KEY, timeout=given).to_json()
    assert KEY not in saved
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)  # the key is never saved
    loaded = cls.from_json(saved)
    assert loaded.timeout == given and settings(loaded).timeout == given


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_pickled_instance_keeps_its_timeout(cls: type[Any]) -> None:
    copy = pickle.loads(pickle.dumps(cls(model="m", api_key=KEY, timeout=SPLIT)))
    assert copy.timeout == SPLIT and settings(copy).timeout == SPLIT


def test_saved_fields_that_are_not_a_timeout_are_refused() -> None:
    with pytest.raises(ValueError, match=r"not an httpx2\.Timeout's fields"):
        RuncrateLLM(model="m", api_key=KEY, timeout={"connect": 1.0, "speed": 2})


# ---------------------------------------------------------------------- bulk embeddings


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_both_embeddings_classes_send_batches_at_the_same_concurrency(mode: str) -> None:
    """LangChain's ``max_concurrency`` and LlamaIndex's ``num_workers`` are one limit: the same
    texts go out in the same batches, at most that many at once, and come back in order."""
    texts = [f"chunk {i}" for i in range(23)]
    sent: dict[str, list[list[str]]] = {}
    for name in ("langchain", "llama_index"):
        echo = Echo(delay=0.02)
        common: dict[str, Any] = {
            "model": "m",
            "api_key": KEY,
            "http_client": echo.http(),
            "http_async_client": echo.async_http(),
        }
        if name == "langchain":
            lc = RuncrateEmbeddings(**common, chunk_size=4, max_concurrency=3)
            got = lc.embed_documents(texts) if mode == "sync" else await lc.aembed_documents(texts)
        else:
            li = RuncrateEmbedding(**common, embed_batch_size=4, num_workers=3)
            got = (
                li.get_text_embedding_batch(texts)
                if mode == "sync"
                else await li.aget_text_embedding_batch(texts)
            )
        assert got == [vector(t) for t in texts], name
        assert echo.most_in_flight == 3, name
        sent[name] = sorted(echo.batches)
    assert sent["langchain"] == sent["llama_index"]
    assert sorted(len(b) for b in sent["langchain"]) == [3] + [4] * 5
