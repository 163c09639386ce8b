"""Runcrate's model catalog (``GET /models``), cached per base URL and process.

Adapters read capabilities (context length, tools, structured output, image input) through
:func:`model_info` / :func:`amodel_info`: the first read for a base URL fetches the catalog
(one request, however many threads or tasks ask at once), later reads are dict lookups. A
failed fetch is not an error: the caller falls back to its defaults, and the fetch is tried
again after :data:`RETRY_AFTER` seconds, not on every read. :func:`list_models` lists it all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from . import transport
from .clients import Clients, ClientSettings, async_client, sync_client

if TYPE_CHECKING:
    import openai


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalog entry; fields the server leaves out are ``None`` or empty."""

    id: str
    context_length: int | None = None
    input_modalities: tuple[str, ...] = ()
    output_modalities: tuple[str, ...] = ()
    supported_features: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        # OpenRouter-style catalogs (and llama.cpp) nest modalities under "architecture".
        arch = data.get("architecture")
        arch = arch if isinstance(arch, Mapping) else {}
        return cls(
            id=str(data["id"]),
            context_length=_context_length(data),
            input_modalities=_strings(data.get("input_modalities", arch.get("input_modalities"))),
            output_modalities=_strings(
                data.get("output_modalities", arch.get("output_modalities"))
            ),
            supported_features=frozenset(_strings(data.get("supported_features"))),
        )

    @property
    def supports_tools(self) -> bool | None:
        return "tools" in self.supported_features if self.supported_features else None

    @property
    def supports_structured_output(self) -> bool | None:
        if not self.supported_features:
            return None
        return bool(
            {"structured_outputs", "response_format", "json_schema"} & self.supported_features
        )

    @property
    def supports_image_input(self) -> bool | None:
        return "image" in self.input_modalities if self.input_modalities else None


def _context_length(data: Mapping[str, Any]) -> int | None:
    """The serving window: Runcrate's ``context_length``, vLLM's ``max_model_len``, or
    llama.cpp's ``meta.n_ctx`` (the window it serves, not ``n_ctx_train``)."""
    meta = data.get("meta")
    candidates = (
        data.get("context_length"),
        data.get("max_model_len"),
        data.get("context_window"),
        meta.get("n_ctx") if isinstance(meta, Mapping) else None,
    )
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    return ()


log = logging.getLogger(__name__)
#: Seconds before a failed catalog fetch is tried again.
RETRY_AFTER = 60.0

_lock = threading.Lock()
_cache: dict[str, dict[str, ModelInfo]] = {}
_failed_at: dict[str, float] = {}
_fetch_locks: dict[str, threading.Lock] = {}
_async_locks: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Lock] = {}


def _store(base_url: str, data: Mapping[str, Any]) -> list[ModelInfo]:
    entries = data.get("data")
    if not isinstance(entries, list):
        entries = []
    models = [ModelInfo.from_dict(e) for e in entries if isinstance(e, Mapping) and e.get("id")]
    url = base_url.rstrip("/")
    with _lock:
        _cache[url] = {m.id: m for m in models}
        _failed_at.pop(url, None)
    return models


def _base_url(client: openai.OpenAI | openai.AsyncOpenAI) -> str:
    return str(client.base_url).rstrip("/")


def list_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    client: openai.OpenAI | None = None,
    refresh: bool = False,
) -> list[ModelInfo]:
    """The models the server offers; cached per base URL unless ``refresh``."""
    if client is None:
        client = sync_client(ClientSettings.resolve(api_key=api_key, base_url=base_url))
    url = _base_url(client)
    if not refresh and url in _cache:
        return list(_cache[url].values())
    return _store(url, transport.get_json(client, "/models"))


async def alist_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    client: openai.AsyncOpenAI | None = None,
    refresh: bool = False,
) -> list[ModelInfo]:
    """Async twin of :func:`list_models`."""
    if client is None:
        client = async_client(ClientSettings.resolve(api_key=api_key, base_url=base_url))
    url = _base_url(client)
    if not refresh and url in _cache:
        return list(_cache[url].values())
    return _store(url, await transport.aget_json(client, "/models"))


def cached_model_info(base_url: str, model: str) -> ModelInfo | None:
    """The cached entry for ``model`` at ``base_url``, or ``None``; never touches the network."""
    entries = _cache.get(base_url.rstrip("/"))
    return entries.get(model) if entries else None


def _should_fetch(url: str) -> bool:
    if url in _cache:
        return False
    failed = _failed_at.get(url)
    return failed is None or time.monotonic() - failed >= RETRY_AFTER


def _failed(url: str, exc: Exception) -> None:
    _failed_at[url] = time.monotonic()
    log.info("Could not load the model catalog from %s (%s); using defaults, retrying in %gs",
             url, exc, RETRY_AFTER)


def model_info(clients: Clients, model: str) -> ModelInfo | None:
    """``model``'s catalog entry, fetching the catalog on the first read for this base URL.

    ``None`` when the catalog does not list ``model`` or could not be loaded.
    """
    url = clients.settings.base_url
    if _should_fetch(url):
        with _lock:
            fetch_lock = _fetch_locks.setdefault(url, threading.Lock())
        with fetch_lock:  # one request, however many threads ask at once
            if _should_fetch(url):
                try:
                    list_models(client=clients.client())
                except Exception as exc:  # any failure: fall back, try again later
                    _failed(url, exc)
    return cached_model_info(url, model)


async def amodel_info(clients: Clients, model: str) -> ModelInfo | None:
    """Async twin of :func:`model_info` (one request per base URL, however many tasks ask)."""
    url = clients.settings.base_url
    if _should_fetch(url):
        key = (asyncio.get_running_loop(), url)
        with _lock:
            for stale in [k for k in _async_locks if k[0].is_closed()]:
                del _async_locks[stale]
            fetch_lock = _async_locks.setdefault(key, asyncio.Lock())
        async with fetch_lock:
            if _should_fetch(url):
                try:
                    await alist_models(client=clients.aclient())
                except Exception as exc:  # any failure: fall back, try again later
                    _failed(url, exc)
    return cached_model_info(url, model)


def clear_cache() -> None:
    """Forget every cached catalog and failure (tests use this)."""
    with _lock:
        _cache.clear()
        _failed_at.clear()
