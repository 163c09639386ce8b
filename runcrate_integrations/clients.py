"""Who owns the ``openai`` clients every request goes through.

Instances with equal settings share one client, hence one connection pool: a thousand
``ChatRuncrate`` objects open one pool, not a thousand. Three rules keep that sharing safe:

* **Per process.** A forked child never touches its parent's sockets (a shared keep-alive
  connection hands one process's answer to another): after ``fork`` the child starts empty
  pools, and every :class:`Clients` holder notices and fetches the child's own.
* **Per event loop.** A pooled async connection cannot move between loops, so async clients
  are pooled per running loop, and closed when that loop shuts down (``asyncio.run`` and
  pytest-asyncio close a loop's async generators first; a guard generator is registered there).
  A loop closed without that step is forgotten the next time a loop gets its first client.
* **Configuration, not sockets, is copied.** :class:`Clients` pickles and deep-copies as its
  settings; the copy looks up its own clients on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import SecretStr

from ._version import __version__
from .settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    resolve_api_key,
    resolve_base_url,
)

if TYPE_CHECKING:
    import httpx2

    from ._openai import AsyncRuncrateOpenAI, RuncrateOpenAI

    Timeout = float | httpx2.Timeout | None


def check_timeout(timeout: Any) -> Timeout:
    """``timeout`` if it is one every class accepts: seconds > 0, an ``httpx2.Timeout`` (or its
    saved fields), or ``None`` (wait forever); otherwise a ``ValueError`` saying what is
    allowed."""
    if timeout is None:
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        if timeout > 0:
            return float(timeout)
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    import httpx2  # only for a value that is neither None nor a number

    if isinstance(timeout, httpx2.Timeout):
        return timeout
    if isinstance(timeout, Mapping):  # an httpx2.Timeout as saved by to_json / model_dump
        try:
            return httpx2.Timeout(**timeout)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timeout: not an httpx2.Timeout's fields: {exc}") from None
    raise ValueError(
        f"timeout must be seconds > 0, an httpx2.Timeout or None, got {type(timeout).__name__}"
    )


@functools.cache
def user_agent() -> str:
    """``runcrate-integrations/<version> openai-python/<version>`` (read when the first client
    is built: importlib.metadata costs ~10 ms at import time)."""
    from importlib.metadata import version

    return f"runcrate-integrations/{__version__} openai-python/{version('openai')}"


def __getattr__(name: str) -> Any:
    if name == "USER_AGENT":  # the old constant, computed on first use
        return user_agent()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
# The openai client insists on a key; a keyless local server gets this harmless placeholder.
_NO_KEY = "no-key"


@dataclass(frozen=True)
class ClientSettings:
    """Everything that decides which pooled client a model instance uses.

    The key is held as a ``SecretStr`` so that the repr never shows it.
    """

    base_url: str
    api_key: SecretStr | None
    timeout: Timeout = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    default_headers: tuple[tuple[str, str], ...] = field(default=())
    #: Pace requests by the server's X-RateLimit-* headers (see :mod:`.ratelimit`).
    rate_limits: bool = True

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        rate_limits: bool = True,
    ) -> ClientSettings:
        """Settings from explicit arguments, falling back to the environment."""
        url = resolve_base_url(base_url)
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        return cls(
            base_url=url,
            api_key=resolve_api_key(api_key, url),
            timeout=check_timeout(timeout),
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            default_headers=tuple(sorted((default_headers or {}).items())),
            rate_limits=bool(rate_limits),
        )

    @cached_property
    def pool_key(self) -> tuple[Any, ...]:
        """Equal settings, equal key: the key of the shared client in the pool."""
        return (
            self.base_url,
            self.secret,
            _timeout_key(self.timeout),
            self.max_retries,
            self.default_headers,
            self.rate_limits,
        )

    @property
    def secret(self) -> str | None:
        """The key itself, for the client's Authorization header and for redaction."""
        return self.api_key.get_secret_value() if self.api_key else None

    def _client_kwargs(self) -> dict[str, Any]:
        headers = {"User-Agent": user_agent(), **dict(self.default_headers)}
        return {
            "api_key": self.secret or _NO_KEY,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "default_headers": headers,
            "rate_limits": self.rate_limits,
        }


def _timeout_key(timeout: Timeout) -> Any:
    if timeout is None or isinstance(timeout, (int, float)):
        return timeout
    # An httpx2.Timeout (not imported here: httpx2 loads with the client).
    return tuple(sorted(timeout.as_dict().items()))


# ---------------------------------------------------------------------------- pools


class _LoopClients:
    """The async clients of one event loop, and the guard that closes them with it."""

    __slots__ = ("clients", "guard")

    def __init__(self) -> None:
        self.clients: dict[tuple[Any, ...], AsyncRuncrateOpenAI] = {}
        self.guard: AsyncGenerator[None, None] | None = None


class _Pools:
    """The shared clients of one process."""

    __slots__ = ("lock", "loops", "sync")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sync: dict[tuple[Any, ...], RuncrateOpenAI] = {}
        self.loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}


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


@functools.cache
def _ssl_context() -> Any:
    # Loading the CA bundle takes ~20 ms; every pooled client of the process (one more per
    # event loop) shares one context, as openai's default client would otherwise load it again.
    import httpx2

    return httpx2.create_ssl_context()


def _new_sync(settings: ClientSettings, http_client: Any = None) -> RuncrateOpenAI:
    import openai  # lazily: openai is slow to import

    from ._openai import RuncrateOpenAI

    if http_client is None:
        http_client = openai.DefaultHttpxClient(verify=_ssl_context())
    return RuncrateOpenAI(**settings._client_kwargs(), http_client=http_client)


def _new_async(settings: ClientSettings, http_client: Any = None) -> AsyncRuncrateOpenAI:
    import openai  # lazily: openai is slow to import

    from ._openai import AsyncRuncrateOpenAI

    if http_client is None:
        http_client = openai.DefaultAsyncHttpxClient(verify=_ssl_context())
    return AsyncRuncrateOpenAI(**settings._client_kwargs(), http_client=http_client)


def sync_client(settings: ClientSettings) -> RuncrateOpenAI:
    """This process's shared sync client for ``settings``."""
    pools = _pools
    key = settings.pool_key
    client = pools.sync.get(key)
    if client is None:
        with pools.lock:
            client = pools.sync.get(key)
            if client is None:
                client = pools.sync[key] = _new_sync(settings)
    return client


def async_client(settings: ClientSettings) -> AsyncRuncrateOpenAI:
    """The shared async client for ``settings`` on the running event loop.

    Outside a running loop (building a client eagerly) a private, unpooled one.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _new_async(settings)
    pools = _pools
    key = settings.pool_key
    entry = pools.loops.get(loop)
    if entry is not None:
        client = entry.clients.get(key)
        if client is not None:
            return client
    with pools.lock:
        entry = pools.loops.get(loop)
        if entry is None:
            _forget_closed_loops(pools)
            entry = pools.loops[loop] = _LoopClients()
            _close_with_loop(pools, loop, entry)
        client = entry.clients.get(key)
        if client is None:
            client = entry.clients[key] = _new_async(settings)
    return client


def _forget_closed_loops(pools: _Pools) -> None:
    # Loops closed without shutting down their async generators (a hand-made loop closed
    # directly): their clients cannot be awaited any more; dropping them lets the transports'
    # finalisers close the sockets.
    for loop in [lp for lp in pools.loops if lp.is_closed()]:
        del pools.loops[loop]


def _close_with_loop(
    pools: _Pools, loop: asyncio.AbstractEventLoop, entry: _LoopClients
) -> None:
    """Register a guard that closes ``entry``'s clients when ``loop`` shuts down.

    The guard is an async generator started on ``loop``, so the loop's own async-generator
    hooks track it; ``loop.shutdown_asyncgens()`` (run by ``asyncio.run`` before closing the
    loop) closes it while the loop still runs, and its ``finally`` awaits each client's close.
    """
    guard = _loop_guard(pools, loop, entry)
    entry.guard = guard
    # Run it to its first yield now, synchronously (nothing in it awaits before that).
    with contextlib.suppress(StopIteration):
        guard.asend(None).send(None)


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
                await client.close()


def pooled_client_count() -> int:
    """How many shared clients (connection pools) this process holds; for tests and benchmarks."""
    pools = _pools
    return len(pools.sync) + sum(len(e.clients) for e in list(pools.loops.values()))


# ---------------------------------------------------------------------------- per instance


class ClientFields(TypedDict, total=False):
    """An adapter's fields that decide its clients (see :meth:`Clients.configure`)."""

    api_key: Any
    base_url: str | None
    timeout: Any
    max_retries: int
    default_headers: Mapping[str, str] | None
    rate_limits: bool
    http_client: Any
    http_async_client: Any


class Clients:
    """The clients of one model instance: pooled ones, or private ones around given http clients.

    ``http_client`` / ``http_async_client`` (an ``httpx2.Client`` / ``AsyncClient`` for
    proxies, mTLS or tests) make this instance's clients private; they belong to the caller,
    who decides their lifetime. Otherwise the process's pools are used.

    Example::

        clients = Clients(ClientSettings.resolve(api_key="rc_live_..."))
        clients.client()        # the shared sync client
        await clients.aclient() # (inside a coroutine) the running loop's shared async client
    """

    __slots__ = ("_async", "_pools", "_sync", "http_async_client", "http_client", "settings")

    def __init__(
        self,
        settings: ClientSettings,
        *,
        http_client: Any = None,
        http_async_client: Any = None,
    ) -> None:
        self.settings = settings
        self.http_client = http_client
        self.http_async_client = http_async_client
        self._sync: RuncrateOpenAI | None = None
        self._async: AsyncRuncrateOpenAI | None = None
        self._pools: _Pools | None = None

    @classmethod
    def configure(
        cls,
        *,
        http_client: Any = None,
        http_async_client: Any = None,
        api_key: Any = None,
        base_url: str | None = None,
        timeout: Any = DEFAULT_TIMEOUT,
        max_retries: int | None = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        rate_limits: bool = True,
    ) -> Clients:
        """Settings resolved from an adapter's fields (and the environment), with its clients."""
        settings = ClientSettings.resolve(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            rate_limits=rate_limits,
        )
        return cls(settings, http_client=http_client, http_async_client=http_async_client)

    def client(self) -> RuncrateOpenAI:
        """The sync client (cached; looked up again in a forked child)."""
        client = self._sync
        if client is None or self._pools is not _pools:
            if self.http_client is not None:
                client = _new_sync(self.settings, self.http_client)
            else:
                client = sync_client(self.settings)
            self._sync, self._pools = client, _pools
        return client

    def aclient(self) -> AsyncRuncrateOpenAI:
        """The async client: the running loop's pooled one, or the private one."""
        if self.http_async_client is None:
            return async_client(self.settings)  # two dict lookups
        client = self._async
        if client is None:
            client = self._async = _new_async(self.settings, self.http_async_client)
        return client

    @property
    def secret(self) -> str | None:
        return self.settings.secret

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.settings, self.http_client, self.http_async_client))

    def __deepcopy__(self, memo: dict[int, Any]) -> Clients:
        # http clients are the caller's objects (sockets, locks): shared, never copied.
        return Clients(
            self.settings, http_client=self.http_client, http_async_client=self.http_async_client
        )

    def __copy__(self) -> Clients:
        return self.__deepcopy__({})

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Clients)
            and other.settings == self.settings
            and other.http_client is self.http_client
            and other.http_async_client is self.http_async_client
        )

    __hash__ = None  # type: ignore[assignment]  # equality is by configuration, which may change

    def __repr__(self) -> str:
        return f"Clients(base_url={self.settings.base_url!r})"


def _rebuild(settings: ClientSettings, http_client: Any, http_async_client: Any) -> Clients:
    return Clients(settings, http_client=http_client, http_async_client=http_async_client)
