"""Framework-free core shared by ``langchain_runcrate`` and ``llama_index_runcrate``.

Settings, pooled ``openai`` clients, typed errors, the model catalog, rate-limit state, token
counts and the chat and embeddings engines both adapters use.
It imports neither LangChain nor LlamaIndex, and imports ``openai`` only when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .catalog import ModelInfo, alist_models, cached_model_info, list_models
from .config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, ClientSettings
from .net.ratelimit import RateLimitState, rate_limit_state

if TYPE_CHECKING:
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        ConflictError,
        ContextLengthExceededError,
        InsufficientCreditsError,
        InternalServerError,
        JobCancelledError,
        JobFailedError,
        JobTimeoutError,
        MissingAPIKeyError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseFormatError,
        RuncrateAPIError,
        RuncrateError,
        StreamErrorEvent,
        StreamInterruptedError,
        UnprocessableEntityError,
    )

_ERRORS = frozenset({
    "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
    "BadRequestError", "BudgetExceededError", "ConflictError", "ContextLengthExceededError",
    "InsufficientCreditsError", "InternalServerError", "JobCancelledError", "JobFailedError",
    "JobTimeoutError",
    "MissingAPIKeyError", "NotFoundError", "PermissionDeniedError", "RateLimitError",
    "ResponseFormatError", "RuncrateAPIError", "RuncrateError", "StreamErrorEvent",
    "StreamInterruptedError", "UnprocessableEntityError",
})


def __getattr__(name: str) -> Any:
    # The error classes subclass openai's, so they load openai: only on first use.
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ClientSettings",
    "ConflictError",
    "ContextLengthExceededError",
    "InsufficientCreditsError",
    "InternalServerError",
    "JobCancelledError",
    "JobFailedError",
    "JobTimeoutError",
    "MissingAPIKeyError",
    "ModelInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitState",
    "ResponseFormatError",
    "RuncrateAPIError",
    "RuncrateError",
    "StreamErrorEvent",
    "StreamInterruptedError",
    "UnprocessableEntityError",
    "__version__",
    "alist_models",
    "cached_model_info",
    "list_models",
    "rate_limit_state",
]
