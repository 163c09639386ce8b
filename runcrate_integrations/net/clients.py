"""The ``openai`` clients every request goes through: instances with equal settings share one
client (one connection pool), per process (a forked child never touches its parent's sockets:
it starts empty pools) and per event loop (an async connection cannot move between loops; a
loop's clients close when it shuts down its async generators, as ``asyncio.run`` does).
:class:`Clients` pickles and copies as its settings. Each client's ``httpx2`` client is kept
too, so a download from another host (a media URL) uses the pool without the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .._version import __version__
from ..config import NO_KEY, ClientSettings, Connection

if TYPE_CHECKING:
    import httpx2
    import openai


class SyncPooled(NamedTuple):
    """An ``openai`` client and the ``httpx2`` client it sends through."""

    api: openai.OpenAI
    http: httpx2.Client


class AsyncPooled(NamedTuple):
    """Async twin of :class:`SyncPooled`."""

    api: openai.AsyncOpenAI
    http: httpx2.AsyncClient


@functools.cache
def user_agent() -> str:
    """``runcrate-integrations/<version> openai-python/<version>`` (read when the first client
    is built: importlib.metadata costs ~10 ms at import time)."""
    from importlib.metadata import version

    return f"runcrate-integrations/{__version__} openai-python/{version('openai')}"


@functools.cache
def _ssl_context() -> Any:
    # Loading the CA bundle takes ~20 ms: every pooled client of the process shares one.
    import httpx2

    return httpx2.create_ssl_context()


def _client_kwargs(settings: ClientSettings) -> dict[str, Any]:
    return {
        "api_key": settings.secret or NO_KEY,
        "base_url": settings.base_url,
        "timeout": settings.timeout,
        "max_retries": 0,  # the transport's one loop retries, not the client
        "default_headers": {"User-Agent": user_agent(), **dict(settings.default_headers)},
    }


def new_sync(settings: ClientSettings, http_client: Any = None) -> SyncPooled:
    """A new sync client for ``settings`` (on ``http_client``, or a new pooled one)."""
    import openai  # lazily: openai is slow to import

    if http_client is None:
        http_client = openai.DefaultHttpxClient(verify=_ssl_context())
    api = openai.OpenAI(**_client_kwargs(settings), http_client=http_client)
    return SyncPooled(api, http_client)


def new_async(settings: ClientSettings, http_client: Any = None) -> AsyncPooled:
    """Async twin of :func:`new_sync`."""
    import openai

    if http_client is None:
        http_client = openai.DefaultAsyncHttpxClient(verify=_ssl_context())
    api = openai.AsyncOpenAI(**_client_kwargs(settings), http_client=http_client)
    return AsyncPooled(api, http_client)


# ---------------------------------------------------------------------------- pools


@dataclass(slots=True)
class _LoopClients:
    """The async clients of one event loop, and the guard that closes them with it (held here:
    the loop itself keeps only a weak reference to it)."""

    clients: dict[tuple[Any, ...], AsyncPooled] = field(default_factory=dict)
    guard: AsyncGenerator[None, None] | None = None


@dataclass(slots=True)
class _Pools:
    """The shared clients of one process."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sync: dict[tuple[Any, ...], SyncPooled] = field(default_factory=dict)
    loops: dict[asyncio.AbstractEventLoop, _LoopClients] = field(default_factory=dict)


_pools = _Pools()
# A forked child's copy of its parent's pools: kept (never used, never closed) so that no
# finaliser in the child touches a socket the parent still reads from.
_inherited: list[_Pools] = []


def _after_fork_in_child() -> None:
    global _pools
    _inherited.append(_pools)
    _pools = _Pools()  # a fresh lock too: the parent's may have been held by another thread


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def sync_client(settings: ClientSettings) -> SyncPooled:
    """This process's shared sync client for ``settings``."""
    pools = _pools
    key = settings.pool_key
    client = pools.sync.get(key)
    if client is None:
        with pools.lock:
            if (client := pools.sync.get(key)) is None:
                client = pools.sync[key] = new_sync(settings)
    return client


def async_client(settings: ClientSettings) -> AsyncPooled:
    """The shared async client for ``settings`` on the running event loop (outside a running
    loop, building a client eagerly, a private, unpooled one)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return new_async(settings)
    pools = _pools
    key = settings.pool_key
    entry = pools.loops.get(loop)
    client = entry.clients.get(key) if entry is not None else None
    if client is not None:
        return client
    with pools.lock:
        entry = pools.loops.get(loop)
        if entry is None:
            # Loops closed without shutting down their async generators: their clients are
            # dropped, for the transports' finalisers to close the sockets.
            for closed in [lp for lp in pools.loops if lp.is_closed()]:
                del pools.loops[closed]
            entry = pools.loops[loop] = _LoopClients()
            # An async generator started on the loop (to its first yield, now) is closed by
            # the loop's shutdown_asyncgens() while the loop still runs: it closes the clients.
            guard = entry.guard = _loop_guard(pools, loop, entry)
            with contextlib.suppress(StopIteration):
                guard.asend(None).send(None)
        if (client := entry.clients.get(key)) is None:
            client = entry.clients[key] = new_async(settings)
    return client


async def _loop_guard(
    pools: _Pools, loop: asyncio.AbstractEventLoop, entry: _LoopClients
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with pools.lock:
            if pools.loops.get(loop) is entry:
                del pools.loops[loop]
        for client in list(entry.clients.values()):
            with contextlib.suppress(Exception):
                await client.api.close()


def pooled_client_count() -> int:
    """How many shared clients (connection pools) this process holds; for tests and benchmarks."""
    return len(_pools.sync) + sum(len(e.clients) for e in list(_pools.loops.values()))


# ---------------------------------------------------------------------------- per instance


class Clients:
    """The clients of one model instance: the process's pooled ones, or private ones around
    ``http_client`` / ``http_async_client`` (for proxies, mTLS or tests; the caller's to close).
    """

    __slots__ = ("_async", "_pools", "_sync", "http_async_client", "http_client", "settings")

    def __init__(
        self, settings: ClientSettings, *, http_client: Any = None, http_async_client: Any = None
    ) -> None:
        self.settings = settings
        self.http_client = http_client
        self.http_async_client = http_async_client
        self._sync: SyncPooled | None = None
        self._async: AsyncPooled | None = None
        self._pools: _Pools | None = None

    @classmethod
    def of(cls, connection: Connection) -> Clients:
        """A public class's clients: its resolved settings, with the caller's http clients."""
        return cls(
            connection.client_settings(),
            http_client=connection.http_client,
            http_async_client=connection.http_async_client,
        )

    def sync(self) -> SyncPooled:
        """The sync client (cached; looked up again in a forked child)."""
        if self._sync is None or self._pools is not _pools:
            if self.http_client is not None:
                self._sync = new_sync(self.settings, self.http_client)
            else:
                self._sync = sync_client(self.settings)
            self._pools = _pools
        return self._sync

    def async_(self) -> AsyncPooled:
        """The async client: the running loop's pooled one, or the private one."""
        if self.http_async_client is None:
            return async_client(self.settings)  # two dict lookups
        if self._async is None:
            self._async = new_async(self.settings, self.http_async_client)
        return self._async

    def __reduce__(self) -> tuple[Any, ...]:
        return (Clients, (self.settings,))  # a caller's http clients are not pickled

    def __copy__(self, memo: object = None) -> Clients:
        # http clients are the caller's objects (sockets, locks): shared, never copied.
        return Clients(
            self.settings, http_client=self.http_client, http_async_client=self.http_async_client
        )

    __deepcopy__ = __copy__

    def __repr__(self) -> str:
        return f"Clients(base_url={self.settings.base_url!r})"
