"""Item 11: many concurrent calls each get their own answer, through one shared client.

The fake server's echo mode answers each request with its own prompt, so an answer delivered
to the wrong caller (a shared buffer, a mixed-up stream) shows as a mismatch. Each test spies on
the ``post`` of the client class in use to prove every call went through one client object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net.clients import pooled_client_count, sync_client
from tests.reliability.cases import KEY, ChatCase, EmbedCase, Framework, user
from tests.support.fake_openai_server import FakeOpenAIServer, hash_vector

N = 200
N_STREAMS = 100  # streams hold their connection longer; 100 interleave just as well


def _markers(n: int, tag: str) -> list[str]:
    return [f"{tag}-{i:03d}-{'x' * (i % 7)}" for i in range(n)]


def _spy_on_posts(monkeypatch: pytest.MonkeyPatch, client: Any) -> list[int]:
    """Record ``id(client)`` of every request sent through ``type(client).post``."""
    cls = type(client)
    original: Callable[..., Any] = cls.post
    used: list[int] = []

    if asyncio.iscoroutinefunction(original):

        async def apost(self: Any, *args: Any, **kwargs: Any) -> Any:
            used.append(id(self))
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "post", apost)
    else:

        def post(self: Any, *args: Any, **kwargs: Any) -> Any:
            used.append(id(self))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "post", post)
    return used


def _check_server(server: FakeOpenAIServer, n: int) -> None:
    assert server.request_count == n  # no retries, no extra calls (e.g. GET /models)
    assert all(r.path == "/v1/chat/completions" for r in server.requests)
    # One connection per in-flight request at most; pooled connections are reused.
    assert 1 <= server.connection_count <= n


# Distinct settings per test, so each test's pool is new and its count can be checked.
def _headers(test: str) -> dict[str, str]:
    return {"X-Reliability-Test": test}


async def test_200_concurrent_langchain_ainvoke(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = ChatCase("langchain", "ainvoke", fake_server)
    llm = case.model(default_headers=_headers("lc-ainvoke"))
    before = pooled_client_count()
    used = _spy_on_posts(monkeypatch, llm.async_client)
    prompts = _markers(N, "lc")

    answers = await asyncio.gather(*(llm.ainvoke(p) for p in prompts))

    assert [a.content for a in answers] == prompts
    assert pooled_client_count() - before == 1
    assert len(used) == N and set(used) == {id(llm.async_client)}
    _check_server(fake_server, N)


async def test_200_concurrent_llama_index_achat(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = ChatCase("llama_index", "ainvoke", fake_server)
    llm = case.model(default_headers=_headers("li-achat"))
    before = pooled_client_count()
    used = _spy_on_posts(monkeypatch, llm.async_client)
    prompts = _markers(N, "li")

    answers = await asyncio.gather(*(llm.achat(user(p)) for p in prompts))

    assert [a.message.content for a in answers] == prompts
    assert pooled_client_count() - before == 1
    assert len(used) == N and set(used) == {id(llm.async_client)}
    _check_server(fake_server, N)


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_100_concurrent_streams(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, framework: Framework
) -> None:
    # Streams interleave chunk by chunk on the shared pool; each must fold only its own.
    case = ChatCase(framework, "astream", fake_server)
    llm = case.model(default_headers=_headers(f"{framework}-astream"))
    client = llm.async_client
    used = _spy_on_posts(monkeypatch, client)
    prompts = _markers(N_STREAMS, f"{framework}-stream")

    answers = await asyncio.gather(*(case.ask(llm, p) for p in prompts))

    assert answers == prompts
    assert set(used) == {id(client)}
    _check_server(fake_server, N_STREAMS)


async def test_200_instances_with_equal_settings_share_one_pool(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    lc_case = ChatCase("langchain", "ainvoke", fake_server)
    li_case = ChatCase("llama_index", "ainvoke", fake_server)
    headers = _headers("many-instances")
    models = [
        (lc_case if i % 2 else li_case).model(default_headers=headers, temperature=i / 100)
        for i in range(N)
    ]
    before = pooled_client_count()
    used = _spy_on_posts(monkeypatch, models[1].async_client)
    prompts = _markers(N, "many")

    answers = await asyncio.gather(
        *(
            lc_case.ask(m, p) if i % 2 else li_case.ask(m, p)
            for i, (m, p) in enumerate(zip(models, prompts, strict=True))
        )
    )

    assert answers == prompts
    # Both frameworks, 200 instances, one pool: the settings are equal.
    assert pooled_client_count() - before == 1
    assert len(set(used)) == 1
    _check_server(fake_server, N)
    temperatures = sorted(r.body["temperature"] for r in fake_server.requests)
    assert temperatures == [i / 100 for i in range(N)]  # each instance sent its own params


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_threads_share_one_sync_client(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, framework: Framework
) -> None:
    case = ChatCase(framework, "invoke", fake_server)
    headers = _headers(f"{framework}-threads")
    llm = case.model(default_headers=headers)
    settings = ClientSettings.resolve(
        api_key=KEY,
        base_url=fake_server.base_url,
        timeout=5.0,
        max_retries=0,
        default_headers=headers,
    )
    before = pooled_client_count()
    client = sync_client(settings).api  # what the model will use: equal settings, same client
    assert pooled_client_count() - before == 1
    used = _spy_on_posts(monkeypatch, client)
    prompts = _markers(64, f"{framework}-thread")

    def ask(prompt: str) -> str:
        if framework == "langchain":
            return str(llm.invoke(prompt).content)
        return str(llm.chat(user(prompt)).message.content)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, prompts))

    assert answers == prompts
    assert set(used) == {id(client)}
    assert pooled_client_count() - before == 1
    _check_server(fake_server, len(prompts))
    assert fake_server.connection_count <= 16


async def test_sequential_calls_reuse_one_connection(fake_server: FakeOpenAIServer) -> None:
    case = ChatCase("llama_index", "ainvoke", fake_server)
    llm = case.model(default_headers=_headers("keep-alive"))

    for prompt in _markers(20, "seq"):
        assert await case.ask(llm, prompt) == prompt

    assert fake_server.connection_count == 1


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_200_concurrent_embeddings(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, framework: Framework
) -> None:
    case = EmbedCase(framework, "async", fake_server)
    emb = case.model(default_headers=_headers(f"{framework}-embed"))
    texts = _markers(N, f"{framework}-embed")

    if framework == "langchain":
        vectors = await asyncio.gather(*(emb.aembed_query(t) for t in texts))
    else:
        vectors = await asyncio.gather(*(emb.aget_query_embedding(t) for t in texts))

    assert vectors == [pytest.approx(hash_vector(t), abs=1e-6) for t in texts]
    assert fake_server.request_count == N
    assert 1 <= fake_server.connection_count <= N
