"""The chat model settings of the spec, shared by ``ChatRuncrate`` and ``RuncrateLLM``: a model
and its request defaults on the connection settings, and the engine built from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import AliasChoices, Field

from .. import catalog
from ..catalog import ModelInfo
from ..config import Connection
from ..net.clients import Clients
from ..net.transport import ErrorHook, translating
from .engine import ChatEngine
from .params import RANGES, TOP_LOGPROBS, check_not_secret
from .request import ChatOptions

if TYPE_CHECKING:
    import openai


def _ranged(bounds: tuple[float, float], description: str | None = None) -> Any:
    """An optional field within Runcrate's range (``bounds``: low, high)."""
    low, high = bounds
    return Field(default=None, ge=low, le=high, description=description)


#: The request defaults of the spec, sent as top-level body fields when set.
REQUEST_DEFAULTS = (
    *("temperature", "top_p", "max_tokens", "stop", "frequency_penalty", "presence_penalty"),
    *("seed", "logprobs", "top_logprobs", "response_format"),
)


class ChatSettings(Connection):
    """Connection settings plus a chat model and its request defaults (``None``: unset)."""

    #: The adapter's field of extra request parameters (``model_kwargs``/``additional_kwargs``).
    extra_params_field: ClassVar[str] = ""
    #: Extra request fields of this class's own (``n`` in LangChain).
    own_request_fields: ClassVar[tuple[str, ...]] = ()

    model: str = Field(
        validation_alias=AliasChoices("model", "model_name"),
        description="Model id, e.g. 'deepseek/deepseek-v3.2' (list_models() shows them).",
    )
    temperature: float | None = _ranged(RANGES["temperature"], "Sampling, 0 to 2.")
    top_p: float | None = _ranged(RANGES["top_p"], "Nucleus sampling, 0 to 1.")
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        validation_alias=AliasChoices("max_tokens", "max_completion_tokens"),
        description="Most tokens to generate.",
    )
    stop: str | list[str] | None = Field(
        default=None,
        validation_alias=AliasChoices("stop", "stop_sequences"),
        description="Stop sequence(s); an empty list sends none.",
    )
    frequency_penalty: float | None = _ranged(RANGES["frequency_penalty"])
    presence_penalty: float | None = _ranged(RANGES["presence_penalty"])
    seed: int | None = Field(default=None, description="Best-effort deterministic sampling.")
    logprobs: bool | None = Field(default=None, description="Return token log-probabilities.")
    top_logprobs: int | None = _ranged(TOP_LOGPROBS, "Alternatives per token; implies logprobs.")
    response_format: dict[str, Any] | None = Field(
        default=None, description="Sent as is, e.g. {'type': 'json_object'}."
    )
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Merged into the request body last, unchecked."
    )
    stream_usage: bool = Field(True, description="Ask for token usage at the end of streams.")

    def _error_hook(self) -> ErrorHook | None:
        """Turns the core's errors into the adapter's own classes (LangChain's dual ones)."""
        return None

    def _derive(self) -> ChatEngine:
        # The named fields, then model_kwargs / additional_kwargs over them; None means unset.
        extra = getattr(self, self.extra_params_field) if self.extra_params_field else None
        check_not_secret(extra or (), "a parameter given as an extra request field")
        names = (*REQUEST_DEFAULTS, *self.own_request_fields)
        params = {**{name: getattr(self, name) for name in names}, **(extra or {})}
        params = {key: value for key, value in params.items() if value is not None}
        extra_body = dict(self.extra_body) if self.extra_body else None
        options = ChatOptions(self.model, params, extra_body, self.stream_usage, self.deadline)
        clients = Clients.of(self)
        return ChatEngine(clients, options, errors=self._error_hook())

    @property
    def engine(self) -> ChatEngine:
        """The core engine every request of this instance goes through."""
        return cast(ChatEngine, self._state)

    @property
    def client(self) -> openai.OpenAI:
        """The ``openai`` client requests go through (shared by instances with equal settings)."""
        return self.engine.clients.sync().api

    @property
    def async_client(self) -> openai.AsyncOpenAI:
        """The async ``openai`` client for the running event loop."""
        return self.engine.clients.async_().api

    @property
    def model_info(self) -> ModelInfo | None:
        """This model's catalog entry, read on first use (one short ``GET /models`` per base
        URL and process); ``None`` if the catalog does not list it or cannot be read in time."""
        return catalog.model_info(self.engine.clients, self.model, self.deadline)

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load the catalog now (``GET /models``); this model's entry, or ``None`` if unlisted."""
        with translating(self.engine.errors):
            catalog.fetch(self.engine.clients, refresh=refresh)
        return catalog.cached_model_info(self.engine.clients.settings.base_url, self.model)

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        with translating(self.engine.errors):
            await catalog.afetch(self.engine.clients, refresh=refresh)
        return catalog.cached_model_info(self.engine.clients.settings.base_url, self.model)
