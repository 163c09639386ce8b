"""Pooled async clients live and die with their event loop.

Scripts and notebooks call ``asyncio.run(...)`` again and again; each run is a new loop, and a
pooled connection cannot move between loops. So each loop gets one pooled async client (per
settings), closed when ``asyncio.run`` shuts the loop down: nothing may pile up (clients, file
descriptors), a closed loop's client must be closed and not merely dropped, a loop closed the
rough way (no ``shutdown_asyncgens``) is forgotten when the next loop gets its first client,
and a task cancelled mid-stream gives its connection back.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from runcrate_integrations.net import clients as client_pools
from runcrate_integrations.net.clients import pooled_client_count
from tests.reliability.cases import CALL_TIMEOUT, EMBED_MODEL, KEY, MODEL, user
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    chat_stream,
    hash_vector,
    running_server,
)

RUNS = 100
# The fake server runs in this process, so /proc/self/fd holds its sockets too: its end of the
# connection a loop just closed is closed by the server's own thread, a moment later. This
# slack absorbs that (and nothing else: one leaked connection per run would be 100+ fds).
FD_SLACK = 2
SETTLE_SECONDS = 5.0  # an upper bound on waiting for that thread, not a timing assertion


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def async_pooled() -> int:
    """Pooled async clients of this process: ``pooled_client_count()`` minus the sync ones."""
    return pooled_client_count() - len(client_pools._pools.sync)


def settle(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within :data:`SETTLE_SECONDS` (for the server's thread)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _models(server: FakeOpenAIServer) -> tuple[Any, Any, Any, Any]:
    # Equal settings everywhere: chat and embeddings share one pooled client per loop.
    common: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "max_retries": 0,
        "timeout": CALL_TIMEOUT,
    }
    return (
        ChatRuncrate(model=MODEL, **common),
        RuncrateLLM(model=MODEL, **common),
        RuncrateEmbeddings(model=EMBED_MODEL, **common),
        RuncrateEmbedding(model_name=EMBED_MODEL, **common),
    )


async def _every_method(
    models: tuple[Any, Any, Any, Any], run: int, baseline: int = 0
) -> tuple[Any, list[str]]:
    """Call each async method once; (this loop's pooled client, what went wrong).

    ``baseline``: pooled async clients of other live loops (none, unless a test elsewhere
    keeps a loop open); this loop must add exactly one.
    """
    lc, li, lc_emb, li_emb = models
    marker = f"run-{run}"
    problems: list[str] = []

    def after(method: str, ok: bool) -> None:
        if not ok:
            problems.append(f"{method}: wrong answer")
        count = async_pooled() - baseline
        if count != 1:
            problems.append(f"{method}: {count} pooled async clients on one live loop")

    after("ChatRuncrate.ainvoke", (await lc.ainvoke(marker)).content == marker)
    streamed = "".join([str(c.content) async for c in lc.astream(marker)])
    after("ChatRuncrate.astream", streamed == marker)
    after("RuncrateLLM.achat", (await li.achat(user(marker))).message.content == marker)
    final = [r async for r in await li.astream_chat(user(marker))][-1]
    after("RuncrateLLM.astream_chat", final.message.content == marker)
    vector = hash_vector(marker)
    after(
        "RuncrateEmbeddings.aembed_documents",
        await lc_emb.aembed_documents([marker, marker]) == [vector, vector],
    )
    after("RuncrateEmbeddings.aembed_query", await lc_emb.aembed_query(marker) == vector)
    after(
        "RuncrateEmbedding.aget_text_embedding", await li_emb.aget_text_embedding(marker) == vector
    )
    after(
        "RuncrateEmbedding.aget_text_embedding_batch",
        await li_emb.aget_text_embedding_batch([marker, marker]) == [vector, vector],
    )
    return lc.async_client, problems


async def _others(lc: Any) -> int:
    """Pooled async clients of loops other than this one (the pool forgets closed loops when
    a loop gets its first client; what is left belongs to loops still running elsewhere)."""
    await lc.ainvoke("probe")
    return async_pooled() - 1


def test_a_hundred_asyncio_runs_leave_no_clients_and_no_fds(fake_server: FakeOpenAIServer) -> None:
    models = _models(fake_server)
    baseline = asyncio.run(_others(models[0]))
    client, problems = asyncio.run(_every_method(models, -1, baseline))  # warm-up
    assert not problems, f"warm-up: {problems}"
    assert client.is_closed() and async_pooled() == baseline, "a closed loop's client stayed"
    gc.collect()
    fds_before = open_fds()

    for run in range(RUNS):
        client, problems = asyncio.run(_every_method(models, run, baseline))
        assert not problems, f"run {run}: {problems}"
        # The loop is gone: its client was closed (not just dropped) and is no longer pooled.
        assert client.is_closed(), f"run {run}: the closed loop's client is still open"
        assert async_pooled() == baseline, f"run {run}: a closed loop's client is still pooled"

    settle(lambda: open_fds() - fds_before <= FD_SLACK)
    assert open_fds() - fds_before <= FD_SLACK, (
        f"{open_fds() - fds_before} more open file descriptors after {RUNS} asyncio.run calls"
    )


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the rough close is the point here
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_closed_without_shutdown_is_forgotten(fake_server: FakeOpenAIServer) -> None:
    lc = _models(fake_server)[0]
    baseline = asyncio.run(_others(lc))
    assert async_pooled() == baseline, "a closed loop's client stayed"
    gc.collect()
    fds_before = open_fds()

    rough = asyncio.new_event_loop()
    try:
        assert rough.run_until_complete(lc.ainvoke("rough")).content == "rough"
    finally:
        rough.close()  # no shutdown_asyncgens(): the guard that closes the client never ran
    assert async_pooled() == baseline + 1  # nothing noticed yet
    pooled_loops = client_pools._pools.loops
    assert rough in pooled_loops

    async def next_loop() -> int:
        assert (await lc.ainvoke("next")).content == "next"
        return async_pooled() - baseline

    count = asyncio.run(next_loop())
    assert rough not in pooled_loops, "the closed loop is still in the pool"
    assert count == 1, f"{count} pooled async clients while one loop is live"
    assert async_pooled() == baseline
    rough = None  # type: ignore[assignment]  # the pool no longer holds it; neither do we
    # Forgotten, its client's sockets are closed by their finalisers: nothing stays open.
    gc.collect()
    assert settle(lambda: open_fds() - fds_before <= FD_SLACK), (
        f"{open_fds() - fds_before} more open file descriptors after the rough close"
    )


# ---------------------------------------------------------------------- cancellation


def _pool(client: Any) -> Any:
    # openai client -> httpx2.AsyncClient -> transport -> httpcore2 connection pool.
    return client._client._transport._pool


def _busy_connections(client: Any) -> int:
    """Connections of the client's pool that are serving a request (not idle, not closed)."""
    return sum(1 for c in _pool(client).connections if not (c.is_idle() or c.is_closed()))


def _open_server_connections(server: FakeOpenAIServer) -> int:
    # The server's live connection handlers: one per TCP connection it has not closed yet.
    return len(server._tasks)


async def _lc_stream(llm: Any, text: str) -> AsyncIterator[str]:
    async for chunk in llm.astream(text):
        yield str(chunk.content)


async def _li_stream(llm: Any, text: str) -> AsyncIterator[str]:
    async for response in await llm.astream_chat(user(text)):
        yield response.delta or ""


@pytest.mark.parametrize(
    ("cls", "stream"),
    [
        pytest.param(ChatRuncrate, _lc_stream, id="ChatRuncrate.astream"),
        pytest.param(RuncrateLLM, _li_stream, id="RuncrateLLM.astream_chat"),
    ],
)
def test_cancelling_a_task_mid_stream_releases_its_connection(cls: type, stream: Any) -> None:
    # A server of its own, so that every connection it sees is this test's.
    with running_server(read_timeout=30.0) as server:
        llm = cls(
            model=MODEL, api_key=KEY, base_url=server.base_url, max_retries=0, timeout=CALL_TIMEOUT
        )
        # Long enough that only a cancellation can end it within the test.
        server.enqueue(chat_stream(["tick "] * 200, chunk_delay=0.05))

        async def scenario() -> None:
            first = asyncio.Event()
            pieces: list[str] = []

            async def consume() -> None:
                async for piece in stream(llm, "stream"):
                    pieces.append(piece)
                    if piece:
                        first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), SETTLE_SECONDS)
            client = llm.async_client
            busy = [c for c in _pool(client).connections if not (c.is_idle() or c.is_closed())]
            assert len(busy) == 1, repr(_pool(client))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
            assert len(pieces) < 200
            # Client side, at once: the stream's connection is closed and out of the pool (an
            # unread stream cannot be reused, so it must not be parked as idle either).
            assert busy[0].is_closed(), repr(busy[0])
            assert busy[0] not in _pool(client).connections
            assert _busy_connections(client) == 0, repr(_pool(client))
            # Server side: only the pool's idle keep-alive connections (if any) stay open.
            idle = len(_pool(client).connections)
            deadline = time.monotonic() + SETTLE_SECONDS
            while _open_server_connections(server) > idle and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert _open_server_connections(server) == idle, "the server still holds the stream"
            # And the same loop's pooled client carries on.
            if cls is ChatRuncrate:
                assert (await llm.ainvoke("after")).content == "after"
            else:
                assert (await llm.achat(user("after"))).message.content == "after"

        asyncio.run(scenario())
