"""Runcrate's model catalog (``GET /models``), cached per base URL and process.

Adapters read capabilities through :func:`model_info`, a hint: one short read per base URL
(:data:`HINT_TIMEOUT`, no retries, within the caller's deadline), then dict lookups. A failed
read falls back to defaults with one WARNING and is tried again after :data:`RETRY_AFTER`
seconds. :func:`list_models` lists it all (usual timeout and retries; errors raise).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from .config import ClientSettings
from .net import transport
from .net.clients import Clients

_STRUCTURED_OUTPUT_FEATURES = frozenset({"structured_outputs", "response_format", "json_schema"})


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
        features = self.supported_features
        return bool(features & _STRUCTURED_OUTPUT_FEATURES) if features else None

    @property
    def supports_image_input(self) -> bool | None:
        return "image" in self.input_modalities if self.input_modalities else None


def _context_length(data: Mapping[str, Any]) -> int | None:
    """The serving window: Runcrate's ``context_length``, vLLM's ``max_model_len``, or
    llama.cpp's ``meta.n_ctx`` (the window it serves, not ``n_ctx_train``)."""
    meta = data.get("meta")
    n_ctx = meta.get("n_ctx") if isinstance(meta, Mapping) else None
    for value in (*map(data.get, ("context_length", "max_model_len", "context_window")), n_ctx):
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
#: Seconds before a failed catalog read is tried again.
RETRY_AFTER = 60.0
#: The longest the catalog read behind a model's metadata may take (seconds).
HINT_TIMEOUT = 3.0
MODELS_PATH = "/models"
_LIST_MODELS = transport.Request("GET", MODELS_PATH)

_lock = threading.Lock()
_cache: dict[str, dict[str, ModelInfo]] = {}
_failed_at: dict[str, float] = {}
_fetch_locks: dict[str, threading.Lock] = {}


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


def fetch(clients: Clients, *, refresh: bool = False) -> list[ModelInfo]:
    """The catalog of ``clients``' base URL (cached unless ``refresh``; errors raise)."""
    url = clients.settings.base_url
    if not refresh and (entries := _cache.get(url)) is not None:
        return list(entries.values())
    return _store(url, transport.send_json(clients, _LIST_MODELS))


async def afetch(clients: Clients, *, refresh: bool = False) -> list[ModelInfo]:
    """Async twin of :func:`fetch`."""
    url = clients.settings.base_url
    if not refresh and (entries := _cache.get(url)) is not None:
        return list(entries.values())
    return _store(url, await transport.asend_json(clients, _LIST_MODELS))


def _modality_filter(
    modality: str | None, input_modality: str | None, output_modality: str | None
) -> Callable[[ModelInfo], bool]:
    """Whether a model takes ``input_modality`` in, gives ``output_modality`` out and has
    ``modality`` on either side (each ``None``: no condition); bad values raise at once."""
    names = ("modality", "input_modality", "output_modality")
    for name, value in zip(names, (modality, input_modality, output_modality), strict=True):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a modality such as 'image', got {value!r}")

    def keep(m: ModelInfo) -> bool:
        return (
            (input_modality is None or input_modality in m.input_modalities)
            and (output_modality is None or output_modality in m.output_modalities)
            and (modality is None or modality in (*m.input_modalities, *m.output_modalities))
        )

    return keep


def list_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    refresh: bool = False,
    modality: str | None = None,
    input_modality: str | None = None,
    output_modality: str | None = None,
) -> list[ModelInfo]:
    """The models the server offers (cached per base URL unless ``refresh``), optionally only
    those with a modality: ``output_modality="image"`` (image generators), ``"audio"`` (speech);
    ``input_modality="audio"`` (transcription), ``"image"`` (vision); ``modality``: either."""
    keep = _modality_filter(modality, input_modality, output_modality)
    clients = Clients(ClientSettings.resolve(api_key=api_key, base_url=base_url))
    return [m for m in fetch(clients, refresh=refresh) if keep(m)]


async def alist_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    refresh: bool = False,
    modality: str | None = None,
    input_modality: str | None = None,
    output_modality: str | None = None,
) -> list[ModelInfo]:
    """Async twin of :func:`list_models`."""
    keep = _modality_filter(modality, input_modality, output_modality)
    clients = Clients(ClientSettings.resolve(api_key=api_key, base_url=base_url))
    return [m for m in await afetch(clients, refresh=refresh) if keep(m)]


def cached_model_info(base_url: str, model: str) -> ModelInfo | None:
    """The cached entry for ``model`` at ``base_url``, or ``None``; never touches the network."""
    return _cache.get(base_url.rstrip("/"), {}).get(model)


def _should_fetch(url: str) -> bool:
    """Not read yet, and no failed read in the last :data:`RETRY_AFTER` seconds."""
    failed = _failed_at.get(url)
    return url not in _cache and (failed is None or time.monotonic() - failed >= RETRY_AFTER)


def model_info(clients: Clients, model: str, deadline: float | None = None) -> ModelInfo | None:
    """``model``'s catalog entry, or ``None``; the first call for a base URL reads the catalog
    (one request at a time, :data:`HINT_TIMEOUT` or ``deadline`` if less, no retries)."""
    url = clients.settings.base_url
    if _should_fetch(url):
        with _lock:
            fetch_lock = _fetch_locks.setdefault(url, threading.Lock())
        with fetch_lock:  # one request, however many threads ask at once
            if _should_fetch(url):
                try:
                    _store(url, transport.send_json(clients, _hint_request(deadline)))
                except Exception as exc:  # any failure: fall back, try again later
                    _hint_failed(url, exc)
    return cached_model_info(url, model)


async def amodel_info(
    clients: Clients, model: str, deadline: float | None = None
) -> ModelInfo | None:
    """Async twin of :func:`model_info` (tasks of one loop asking at once may each read it)."""
    url = clients.settings.base_url
    if _should_fetch(url):
        try:
            _store(url, await transport.asend_json(clients, _hint_request(deadline)))
        except Exception as exc:  # any failure: fall back, try again later
            _hint_failed(url, exc)
    return cached_model_info(url, model)


def _hint_request(deadline: float | None) -> transport.Request:
    seconds = HINT_TIMEOUT if deadline is None else min(HINT_TIMEOUT, deadline)
    return transport.Request(
        "GET", MODELS_PATH, timeout=seconds, retries=0, deadline=transport.deadline_in(seconds)
    )


def _hint_failed(url: str, exc: Exception) -> None:
    _failed_at[url] = time.monotonic()
    log.warning(
        "Could not read the model catalog at %s%s (%s); using default model limits, trying "
        "again in %gs",
        url,
        MODELS_PATH,
        exc,
        RETRY_AFTER,
    )


def clear_cache() -> None:
    """Forget every cached catalog and failure (tests use this)."""
    with _lock:
        _cache.clear()
        _failed_at.clear()
