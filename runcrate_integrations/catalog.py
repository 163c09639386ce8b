"""Runcrate's model catalog (``GET /models``), cached per base URL.

Adapters read capabilities (context length, tools, structured output, image input) from the
cache without a network call; :func:`list_models` fills it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from . import transport
from .clients import ClientSettings, async_client, sync_client

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
        ctx = data.get("context_length")
        # OpenRouter-style catalogs (and llama.cpp) nest modalities under "architecture".
        arch = data.get("architecture")
        arch = arch if isinstance(arch, Mapping) else {}
        return cls(
            id=str(data["id"]),
            context_length=int(ctx) if isinstance(ctx, (int, float)) and ctx > 0 else None,
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


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    return ()


_lock = threading.Lock()
_cache: dict[str, dict[str, ModelInfo]] = {}


def _store(base_url: str, data: Mapping[str, Any]) -> list[ModelInfo]:
    entries = data.get("data")
    if not isinstance(entries, list):
        entries = []
    models = [ModelInfo.from_dict(e) for e in entries if isinstance(e, Mapping) and e.get("id")]
    with _lock:
        _cache[base_url.rstrip("/")] = {m.id: m for m in models}
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


def clear_cache() -> None:
    """Forget every cached catalog (tests use this)."""
    with _lock:
        _cache.clear()
