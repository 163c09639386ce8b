"""Models cross process boundaries as configuration, never as sockets.

Every model and embeddings class pickles (before and after its first call, sync and async) and
the copy works; a LangChain chain holding one pickles too. Worker pools (``fork`` and
``spawn``, a ``ProcessPoolExecutor`` of 4 each, and joblib) run many calls from a model the
parent already used, so a pooled keep-alive connection exists when the children start: a forked
child reusing its parent's socket would read another process's answer. Each call asks the echo
server for its own marker; none may come back crossed (someone else's marker) or be lost.

The fake server runs in the parent only (a thread); children reach it over loopback.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from tests.reliability.cases import CALL_TIMEOUT, EMBED_MODEL, KEY, MODEL, user
from tests.support.fake_openai_server import FakeOpenAIServer, hash_vector

CALLS = 1000  # per start method, half through each chat adapter
WORKERS = 4
ASYNC_EVERY = 50  # every 50th call in a worker is an asyncio.run(...) of the async method

CLASSES = ("ChatRuncrate", "RuncrateLLM", "RuncrateEmbeddings", "RuncrateEmbedding")


def build(name: str, server: FakeOpenAIServer) -> Any:
    common: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "max_retries": 0,
        "timeout": CALL_TIMEOUT,
    }
    if name == "ChatRuncrate":
        return ChatRuncrate(model=MODEL, **common)
    if name == "RuncrateLLM":
        return RuncrateLLM(model=MODEL, **common)
    if name == "RuncrateEmbeddings":
        return RuncrateEmbeddings(model=EMBED_MODEL, **common)
    return RuncrateEmbedding(model_name=EMBED_MODEL, **common)


def ask(model: Any, marker: str) -> Any:
    """One sync call asking for ``marker``: the answer (text, or the vector)."""
    if isinstance(model, ChatRuncrate):
        return model.invoke(marker).content
    if isinstance(model, RuncrateLLM):
        return model.chat(user(marker)).message.content
    if isinstance(model, RuncrateEmbeddings):
        return model.embed_query(marker)
    return model.get_text_embedding(marker)


async def aask(model: Any, marker: str) -> Any:
    """Async twin of :func:`ask`."""
    if isinstance(model, ChatRuncrate):
        return (await model.ainvoke(marker)).content
    if isinstance(model, RuncrateLLM):
        return (await model.achat(user(marker))).message.content
    if isinstance(model, RuncrateEmbeddings):
        return await model.aembed_query(marker)
    return await model.aget_text_embedding(marker)


def expected(model: Any, marker: str) -> Any:
    """What the echo server answers for ``marker``."""
    if isinstance(model, (ChatRuncrate, RuncrateLLM)):
        return marker
    return hash_vector(marker)


# ---------------------------------------------------------------------- pickling


@pytest.mark.parametrize("when", ["before-first-call", "after-first-call"])
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", CLASSES)
def test_pickled_copy_works(fake_server: FakeOpenAIServer, name: str, kind: str, when: str) -> None:
    model = build(name, fake_server)
    if kind == "sync":
        if when == "after-first-call":
            assert ask(model, "first") == expected(model, "first")
        copy = pickle.loads(pickle.dumps(model))
        assert type(copy) is type(model)
        assert ask(copy, "second") == expected(model, "second")
        return

    async def scenario() -> Any:
        if when == "after-first-call":
            assert await aask(model, "first") == expected(model, "first")
        # Inside the running loop, with this loop's pooled client alive.
        copy = pickle.loads(pickle.dumps(model))
        assert type(copy) is type(model)
        return await aask(copy, "second")

    assert asyncio.run(scenario()) == expected(model, "second")
    # The original still works in a new loop.
    assert asyncio.run(aask(model, "third")) == expected(model, "third")


@pytest.mark.parametrize("when", ["before-first-call", "after-first-call"])
def test_a_langchain_chain_pickles(fake_server: FakeOpenAIServer, when: str) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("user", "{text}")])
    chain = prompt | build("ChatRuncrate", fake_server) | StrOutputParser()
    if when == "after-first-call":
        assert chain.invoke({"text": "first"}) == "first"
    copy = pickle.loads(pickle.dumps(chain))
    assert copy.invoke({"text": "second"}) == "second"
    assert asyncio.run(copy.ainvoke({"text": "third"})) == "third"


# ---------------------------------------------------------------------- worker processes

# The models a worker calls: set by the pool's initializer. With fork it is the parent's own
# object (memory copied, not pickled), whose cached client is the parent's pooled one.
_WORKER_MODELS: dict[str, Any] = {}


def _init_worker(models: dict[str, Any]) -> None:
    _WORKER_MODELS.clear()
    _WORKER_MODELS.update(models)


def _call_in_worker(task: tuple[str, str, bool]) -> tuple[str, str, int]:
    """(marker, what came back or the error, worker pid)."""
    name, marker, use_async = task
    model = _WORKER_MODELS[name]
    try:
        answer = asyncio.run(aask(model, marker)) if use_async else ask(model, marker)
    except Exception as exc:  # reported as lost, with its reason
        answer = f"!{type(exc).__name__}: {exc}"
    return marker, str(answer), os.getpid()


def _kept_alive(client: Any) -> int:
    """Open connections in a sync client's pool (openai -> httpx2 -> httpcore2)."""
    pool = client._client._transport._pool
    return sum(1 for c in pool.connections if not c.is_closed())


def _tasks(method: str, names: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    return [
        (names[i % len(names)], f"{method}-{names[i % len(names)]}-{i}", i % ASYNC_EVERY == 0)
        for i in range(CALLS)
    ]


def _chat_markers(server: FakeOpenAIServer) -> Counter[str]:
    """How often the server was asked for each marker (chat requests' last user message)."""
    seen: Counter[str] = Counter()
    for request in server.requests:
        body = request.body
        if request.method == "POST" and isinstance(body, dict) and "messages" in body:
            seen[str(body["messages"][-1]["content"])] += 1
    return seen


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_thousand_calls_in_worker_processes(fake_server: FakeOpenAIServer, method: str) -> None:
    models = {name: build(name, fake_server) for name in ("ChatRuncrate", "RuncrateLLM")}
    for name, model in models.items():  # used in the parent first: a keep-alive connection
        assert ask(model, f"parent-{name}") == f"parent-{name}"
        assert _kept_alive(model.client) >= 1, "no pooled connection to inherit: test is moot"
    tasks = _tasks(method, tuple(models))

    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        WORKERS, mp_context=context, initializer=_init_worker, initargs=(models,)
    ) as pool:
        results = list(pool.map(_call_in_worker, tasks, chunksize=25))

    sent = [marker for _, marker, _ in tasks]
    answered = {marker: answer for marker, answer, _ in results}
    crossed = [(m, a) for m, a in answered.items() if a != m and not a.startswith("!")]
    lost = [m for m in sent if m not in answered or answered[m].startswith("!")]
    assert not crossed, f"{len(crossed)} calls got another call's answer: {crossed[:5]}"
    assert not lost, f"{len(lost)} calls lost: {[(m, answered.get(m)) for m in lost[:5]]}"
    pids = {pid for _, _, pid in results}
    assert os.getpid() not in pids
    assert len(pids) >= 2, "the calls did not spread over several worker processes"
    # Each worker opened connections of its own (none read from the parent's socket).
    assert fake_server.connection_count >= len(pids)
    # The server saw each marker exactly once: no duplicate, no retry, no stray request.
    seen = _chat_markers(fake_server)
    assert [m for m in sent if seen[m] != 1] == []
    # And the parent's own pooled connection still answers the parent.
    for name, model in models.items():
        assert ask(model, f"parent-again-{name}") == f"parent-again-{name}"


def _joblib_call(model: Any, marker: str) -> tuple[str, Any, int]:
    return marker, ask(model, marker), os.getpid()


def test_joblib_parallel(fake_server: FakeOpenAIServer) -> None:
    from joblib import Parallel, delayed

    models = [build(name, fake_server) for name in CLASSES]
    for model in models:  # used in the parent first
        assert ask(model, "parent") == expected(model, "parent")
    jobs = [(model, f"joblib-{i}") for i in range(3) for model in models]

    results = Parallel(n_jobs=2)(delayed(_joblib_call)(model, marker) for model, marker in jobs)

    assert len(results) == len(jobs)
    for (model, marker), (got_marker, answer, pid) in zip(jobs, results, strict=True):
        assert got_marker == marker
        assert answer == expected(model, marker), marker
        assert pid != os.getpid()
