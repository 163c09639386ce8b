"""Construction of the ``openai`` clients that every request goes through.

Instances with equal settings share one client, hence one connection pool: creating a
thousand ``ChatRuncrate`` objects opens one pool, not a thousand. Async clients are also keyed
by the running event loop, because a pooled connection cannot move between loops.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

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

USER_AGENT = f"runcrate-integrations/{__version__} openai-python/{version('openai')}"
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

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        """Settings from explicit arguments, falling back to the environment."""
        url = resolve_base_url(base_url)
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        return cls(
            base_url=url,
            api_key=resolve_api_key(api_key, url),
            timeout=timeout,
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            default_headers=tuple(sorted((default_headers or {}).items())),
        )

    @cached_property
    def pool_key(self) -> tuple[Any, ...]:
        """Equal settings, equal key: the key of the shared client in the pool."""
        secret = self.api_key.get_secret_value() if self.api_key else None
        return (
            self.base_url,
            secret,
            _timeout_key(self.timeout),
            self.max_retries,
            self.default_headers,
        )

    def _client_kwargs(self) -> dict[str, Any]:
        headers = {"User-Agent": USER_AGENT, **dict(self.default_headers)}
        return {
            "api_key": self.api_key.get_secret_value() if self.api_key else _NO_KEY,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "default_headers": headers,
        }


def _timeout_key(timeout: Timeout) -> Any:
    if timeout is None or isinstance(timeout, (int, float)):
        return timeout
    # An httpx2.Timeout (not imported here: httpx2 loads with the client).
    return tuple(sorted(timeout.as_dict().items()))


_lock = threading.Lock()
_sync_clients: dict[tuple[Any, ...], RuncrateOpenAI] = {}
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], AsyncRuncrateOpenAI]
] = weakref.WeakKeyDictionary()


def _new_sync(settings: ClientSettings, http_client: Any = None) -> RuncrateOpenAI:
    from ._openai import RuncrateOpenAI  # lazily: openai is slow to import

    return RuncrateOpenAI(**settings._client_kwargs(), http_client=http_client)


def _new_async(settings: ClientSettings, http_client: Any = None) -> AsyncRuncrateOpenAI:
    from ._openai import AsyncRuncrateOpenAI  # lazily: openai is slow to import

    return AsyncRuncrateOpenAI(**settings._client_kwargs(), http_client=http_client)


def sync_client(settings: ClientSettings, http_client: Any = None) -> RuncrateOpenAI:
    """The shared sync client for these settings (or a private one around ``http_client``)."""
    if http_client is not None:
        return _new_sync(settings, http_client)
    key = settings.pool_key
    client = _sync_clients.get(key)
    if client is None:
        with _lock:
            client = _sync_clients.get(key)
            if client is None:
                client = _sync_clients[key] = _new_sync(settings)
    return client


def async_client(settings: ClientSettings, http_client: Any = None) -> AsyncRuncrateOpenAI:
    """The shared async client for these settings on the running loop.

    With ``http_client`` given, a private client around it instead. Called per request, so the
    common case is two dict lookups.
    """
    if http_client is not None:
        return _new_async(settings, http_client)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # Outside a loop (e.g. building a client eagerly): a private client, not pooled.
        return _new_async(settings)
    key = settings.pool_key
    per_loop = _async_clients.get(loop)
    if per_loop is not None:
        client = per_loop.get(key)
        if client is not None:
            return client
    with _lock:
        per_loop = _async_clients.get(loop)
        if per_loop is None:
            per_loop = _async_clients[loop] = {}
        client = per_loop.get(key)
        if client is None:
            client = per_loop[key] = _new_async(settings)
    return client


def pooled_client_count() -> int:
    """How many shared clients (connection pools) exist; for tests and benchmarks."""
    return len(_sync_clients) + sum(len(v) for v in _async_clients.values())
