"""``ChatRuncrate.profile`` from Runcrate's model catalog, never from a hard-coded table.

The profile is a :class:`CatalogProfile`: a dict that fills itself from the core's catalog the
first time it is read (one ``GET /models`` per base URL and process), so middleware reading
``model.profile["max_input_tokens"]`` needs no ``list_models()`` beforehand, and building a
model sends nothing. A capability the catalog does not state is left out rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import ModelProfile

from runcrate_integrations.catalog import ModelInfo, model_info
from runcrate_integrations.net.clients import Clients

_REASONING_FEATURES = frozenset({"reasoning", "reasoning_content", "thinking"})


def profile_from_info(info: ModelInfo) -> ModelProfile:
    """The LangChain profile keys that a catalog entry determines."""
    profile = ModelProfile()
    if info.context_length is not None:
        profile["max_input_tokens"] = info.context_length
    if info.input_modalities:
        inputs = set(info.input_modalities)
        profile["text_inputs"] = "text" in inputs
        profile["image_inputs"] = "image" in inputs
        profile["image_url_inputs"] = "image" in inputs
        profile["audio_inputs"] = "audio" in inputs
        profile["video_inputs"] = "video" in inputs
    if info.output_modalities:
        outputs = set(info.output_modalities)
        profile["text_outputs"] = "text" in outputs
        profile["image_outputs"] = "image" in outputs
    tools = info.supports_tools
    if tools is not None:
        profile["tool_calling"] = tools
        profile["tool_choice"] = tools
        profile["tool_call_streaming"] = tools
    structured = info.supports_structured_output
    if structured is not None:
        profile["structured_output"] = structured
    if _REASONING_FEATURES & info.supported_features:
        # Only a positive statement counts: catalogs often omit reasoning from the features.
        profile["reasoning_output"] = True
    return profile


class CatalogProfile(dict):  # type: ignore[type-arg]  # a ModelProfile (a TypedDict) at runtime
    """A model's profile, loaded from the catalog on the first read.

    Empty when the catalog does not list the model or cannot be reached (read again later, it
    retries after the catalog's back-off). Built unarmed: langchain-core's own validators look
    at the profile while the model is being constructed, and that must not send a request.
    Truthy until first read, since only a read can tell.
    """

    __slots__ = ("_armed", "_clients", "_deadline", "_loaded", "_model", "_tried")

    def __init__(self, clients: Clients, model: str, deadline: float | None = None) -> None:
        super().__init__()
        self._clients = clients
        self._model = model
        self._deadline = deadline
        self._armed = False
        self._loaded = False
        self._tried = False

    def arm(self) -> CatalogProfile:
        """Allow loading (once the model that owns the profile is built)."""
        self._armed = True
        return self

    def _load(self) -> None:
        if self._loaded or not self._armed:
            return
        self._tried = True
        info = model_info(self._clients, self._model, self._deadline)
        if info is not None:
            super().update(profile_from_info(info))
            self._loaded = True

    def __getitem__(self, key: str) -> Any:
        self._load()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._load()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __bool__(self) -> bool:
        # Truthy until read: langchain-core tests every field's truthiness while serialising
        # the model for callbacks, on every call, and that must not fetch the catalog.
        if self._armed and not self._loaded and not self._tried:
            return True
        return super().__len__() > 0

    def keys(self) -> Any:
        self._load()
        return super().keys()

    def values(self) -> Any:
        self._load()
        return super().values()

    def items(self) -> Any:
        self._load()
        return super().items()

    def copy(self) -> dict[str, Any]:
        self._load()
        return dict(super().items())

    def __eq__(self, other: object) -> bool:
        self._load()
        return super().__eq__(other)

    __hash__ = None  # a dict: unhashable

    def __repr__(self) -> str:
        self._load()
        return super().__repr__()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._clients, self._model, self._deadline, self._armed))


def _rebuild(clients: Clients, model: str, deadline: float | None, armed: bool) -> CatalogProfile:
    profile = CatalogProfile(clients, model, deadline)
    return profile.arm() if armed else profile
