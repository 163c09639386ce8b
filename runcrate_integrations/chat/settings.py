"""The chat model settings of the spec, shared by ``ChatRuncrate`` and ``RuncrateLLM``: the
model and its request defaults (ranges from :mod:`.params`) on top of the connection settings,
and the :class:`~.engine.ChatEngine` built from them (rebuilt when one changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AliasChoices, Field

from ..catalog import ModelInfo
from ..config import Connection
from ..net.clients import Clients
from ..net.transport import ErrorHook
from .engine import ChatEngine
from .params import RANGES, TOP_LOGPROBS
from .request import ChatOptions

if TYPE_CHECKING:
    import openai


def _ranged(name: str, description: str | None = None) -> Any:
    """An optional field within Runcrate's range for ``name``."""
    low, high = RANGES[name]
    return Field(default=None, ge=low, le=high, description=description)


#: The request defaults of the spec, sent as top-level body fields when set.
REQUEST_DEFAULTS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "response_format",
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
    temperature: float | None = _ranged("temperature", "Sampling, 0 to 2.")
    top_p: float | None = _ranged("top_p", "Nucleus sampling, 0 to 1.")
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
    frequency_penalty: float | None = _ranged("frequency_penalty")
    presence_penalty: float | None = _ranged("presence_penalty")
    seed: int | None = Field(default=None, description="Best-effort deterministic sampling.")
    logprobs: bool | None = Field(default=None, description="Return token log-probabilities.")
    top_logprobs: int | None = Field(
        default=None,
        ge=TOP_LOGPROBS[0],
        le=TOP_LOGPROBS[1],
        description="Alternatives per token; implies logprobs.",
    )
    response_format: dict[str, Any] | None = Field(
        default=None, description="Sent as is, e.g. {'type': 'json_object'}."
    )
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Merged into the request body last, unchecked."
    )
    stream_usage: bool = Field(
        default=True, description="Ask for token usage at the end of streams."
    )

    def _error_hook(self) -> ErrorHook | None:
        """Turns the core's errors into the adapter's own classes (LangChain's dual ones)."""
        return None

    def _derive(self) -> ChatEngine:
        extra = self.extra_params_field
        options = ChatOptions.build(
            self.model,
            {name: getattr(self, name) for name in (*REQUEST_DEFAULTS, *self.own_request_fields)},
            extra_params=getattr(self, extra) if extra else None,
            extra_body=self.extra_body,
            stream_usage=self.stream_usage,
            deadline=self.deadline,
        )
        clients = Clients(
            self.client_settings(),
            http_client=self.http_client,
            http_async_client=self.http_async_client,
        )
        return ChatEngine(clients, options, errors=self._error_hook())

    @property
    def engine(self) -> ChatEngine:
        """The core engine every request of this instance goes through."""
        engine: ChatEngine = self._state
        return engine

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
        """This model's catalog entry, read on first use (briefly); ``None`` if not listed."""
        return self.engine.model_info()

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load the catalog now (``GET /models``); this model's entry, or ``None`` if unlisted."""
        return self.engine.fetch_model_info(refresh=refresh)

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        return await self.engine.afetch_model_info(refresh=refresh)
