"""Bulk embeddings in the core: ordered batches, bounded concurrency, progress, all-or-nothing."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest

from runcrate_integrations.config import ClientSettings
from runcrate_integrations.embeddings import (
    DEFAULT_MAX_CONCURRENCY,
    Embedder,
    EmbeddingOptions,
    embed_texts,
)
from runcrate_integrations.errors import AuthenticationError
from runcrate_integrations.net.clients import Clients
from tests.helpers import Recorder, private_client, until

from .replies import BULK_KEY, Echo, embedding_body, vector

KEY = BULK_KEY


TEXTS = [f"text number {i}" + "!" * (i % 7) for i in range(103)]


@contextmanager
def threads_started() -> Iterator[list[threading.Thread]]:
    """The threads this thread starts while the block runs: what the call under test started,
    whatever threads other tests left running (a process-wide count would see those too)."""
    caller = threading.current_thread()
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        if threading.current_thread() is caller:
            started.append(thread)
        start(thread)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", spy)
        yield started


class Together(Echo):
    """Holds each request until ``n`` are at the server at once: the batches can only all be
    answered if ``n`` of them really run together (a broken barrier fails the call)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(n, timeout=10)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        texts = self._start(request)
        self.barrier.wait()
        return self._answer(texts)


def test_options_check_and_carry_max_concurrency() -> None:
    assert EmbeddingOptions("m").max_concurrency == DEFAULT_MAX_CONCURRENCY == 4
    opts = EmbeddingOptions("m", chunk_size=3, max_concurrency=8)
    assert pickle.loads(pickle.dumps(opts)) == opts
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="max_concurrency must be an integer >= 1"):
            EmbeddingOptions("m", max_concurrency=bad)  # type: ignore[arg-type]  # bad on purpose


def test_the_spec_passes_concurrency_and_rate_limits_to_the_embedder() -> None:
    from langchain_runcrate import RuncrateEmbeddings
    from llama_index_runcrate import RuncrateEmbedding

    lc = RuncrateEmbeddings(model="m", api_key=KEY, max_concurrency=2, rate_limits=False)
    li = RuncrateEmbedding(model_name="m", api_key=KEY, num_workers=2, rate_limits=False)
    for emb in (lc.embedder, li.embedder):
        assert emb.options.max_concurrency == 2
        assert emb.clients.settings.rate_limits is False
    assert RuncrateEmbeddings(model="m", api_key=KEY).embedder.clients.settings.rate_limits


@pytest.mark.parametrize("concurrency", [1, 2, 4, 16])
def test_order_is_kept_and_every_text_is_embedded_once(concurrency: int) -> None:
    echo = Echo(delay=0.002)
    opts = EmbeddingOptions("m", chunk_size=5, max_concurrency=concurrency)
    assert embed_texts(echo.client(), opts, TEXTS) == [vector(t) for t in TEXTS]
    assert sorted(echo.inputs) == sorted(TEXTS)  # once each
    assert echo.most_in_flight <= concurrency


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_async_order_is_kept_and_every_text_is_embedded_once(concurrency: int) -> None:
    echo = Echo(delay=0.002)
    opts = EmbeddingOptions("m", chunk_size=5, max_concurrency=concurrency)
    assert await Embedder(echo.async_client(), opts).aembed_texts(TEXTS) == [
        vector(t) for t in TEXTS
    ]
    assert sorted(echo.inputs) == sorted(TEXTS)
    assert echo.most_in_flight <= concurrency


def test_batches_really_overlap() -> None:
    echo = Together(4)  # two rounds of four batches at the server at once
    opts = EmbeddingOptions("m", chunk_size=1, max_concurrency=4)
    assert embed_texts(echo.client(), opts, TEXTS[:8]) == [vector(t) for t in TEXTS[:8]]
    assert echo.most_in_flight == 4


def test_progress_counts_each_batch_in_the_callers_thread() -> None:
    echo = Echo()
    seen: list[tuple[int, str]] = []
    opts = EmbeddingOptions("m", chunk_size=10, max_concurrency=4)
    embed_texts(
        echo.client(),
        opts,
        TEXTS,
        progress=lambda n: seen.append((n, threading.current_thread().name)),
    )
    assert sorted(n for n, _ in seen) == [3] + [10] * 10
    assert {name for _, name in seen} == {threading.current_thread().name}


async def test_async_progress_counts_each_batch() -> None:
    echo = Echo()
    done: list[int] = []
    opts = EmbeddingOptions("m", chunk_size=10, max_concurrency=4)
    await Embedder(echo.async_client(), opts).aembed_texts(TEXTS, progress=done.append)
    assert sum(done) == len(TEXTS) and len(done) == 11


def test_embedder_passes_progress_through() -> None:
    echo = Echo()
    clients = Clients(ClientSettings.resolve(api_key=KEY), http_client=echo.http())
    emb = Embedder(clients, EmbeddingOptions("m", chunk_size=50, max_concurrency=2))
    done: list[int] = []
    assert emb.embed_texts(TEXTS, progress=done.append) == [vector(t) for t in TEXTS]
    assert sorted(done) == [3, 50, 50]


def test_every_text_is_checked_before_any_request() -> None:
    echo = Echo()
    opts = EmbeddingOptions("m", chunk_size=5, max_concurrency=4)
    with pytest.raises(ValueError, match=r"texts\[102\] is an empty string"):
        embed_texts(echo.client(), opts, [*TEXTS[:102], ""])
    assert echo.inputs == []


def test_a_failed_batch_stops_the_rest_and_raises() -> None:
    echo = Echo(delay=0.01, fail_on=TEXTS[0])
    opts = EmbeddingOptions("m", chunk_size=1, max_concurrency=2)
    with threads_started() as started, pytest.raises(AuthenticationError):
        embed_texts(echo.client(), opts, TEXTS)
    for thread in started:  # the batch still running when the error came ends by itself
        thread.join(timeout=10)
    assert not [t for t in started if t.is_alive()]
    assert len(echo.inputs) <= 4  # the first two, maybe the next two; never all 103


async def test_async_a_failed_batch_cancels_the_rest_and_raises() -> None:
    echo = Echo(delay=0.01, fail_on=TEXTS[0])
    opts = EmbeddingOptions("m", chunk_size=1, max_concurrency=2)
    with pytest.raises(AuthenticationError):
        await Embedder(echo.async_client(), opts).aembed_texts(TEXTS)
    # At once, no waiting: the call has already cancelled and awaited every batch.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers  # nothing left running
    assert len(echo.inputs) <= 3


async def test_async_cancelling_the_call_cancels_every_batch() -> None:
    echo = Echo(delay=0.5)
    opts = EmbeddingOptions("m", chunk_size=1, max_concurrency=4)
    call = asyncio.ensure_future(Embedder(echo.async_client(), opts).aembed_texts(TEXTS))
    await until(lambda: echo.in_flight == 4)  # the first four batches are at the server
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert len(echo.inputs) == 4
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers


def test_a_progress_callback_that_raises_stops_the_call() -> None:
    echo = Echo()
    opts = EmbeddingOptions("m", chunk_size=10, max_concurrency=2)

    def boom(n: int) -> None:
        raise RuntimeError("progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        embed_texts(echo.client(), opts, TEXTS, progress=boom)


def test_one_batch_needs_no_threads() -> None:
    rec = Recorder([embedding_body([[1.0], [2.0]])])
    client = private_client(ClientSettings.resolve(api_key=KEY), rec.client())
    with threads_started() as started:
        assert embed_texts(client, EmbeddingOptions("m", max_concurrency=8), ["a", "b"]) == [
            [1.0],
            [2.0],
        ]
    assert started == []


def test_several_batches_run_in_the_packages_threads_and_leave_none() -> None:
    # The other side of test_one_batch_needs_no_threads: the spy does see the call's pool.
    with threads_started() as started:
        embed_texts(Echo().client(), EmbeddingOptions("m", chunk_size=10, max_concurrency=4), TEXTS)
    assert 1 <= len(started) <= 4
    assert all(t.name.startswith("runcrate-embeddings") for t in started), started
    assert not [t for t in started if t.is_alive()]  # the call waited for its pool


def test_batches_run_in_the_callers_context() -> None:
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
    seen: set[str] = set()
    echo = Echo()
    original = echo.handler

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.add(marker.get())  # e.g. a tracing span set by the caller
        return original(request)

    echo.handler = handler  # type: ignore[method-assign]  # spy
    marker.set("caller")
    embed_texts(echo.client(), EmbeddingOptions("m", chunk_size=10, max_concurrency=4), TEXTS)
    assert seen == {"caller"}
