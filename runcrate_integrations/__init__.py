"""Framework-free core shared by ``langchain_runcrate`` and ``llama_index_runcrate``: settings,
clients, errors, the model catalog, rate limits, tokens, the chat and embeddings engines, usage
and billing. It imports neither LangChain nor LlamaIndex, and ``openai`` only when needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .catalog import ModelInfo, alist_models, cached_model_info, list_models
from .config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, ClientSettings
from .net.ratelimit import RateLimitState, rate_limit_state
from .usage import ModelUsage, UsageTracker, track_usage

if TYPE_CHECKING:
    from .billing import Balance, BillingUsage, RuncrateBilling, Transaction
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
        StructuredOutputError,
        UnprocessableEntityError,
    )

_BILLING = frozenset({"Balance", "BillingUsage", "RuncrateBilling", "Transaction"})


def __getattr__(name: str) -> Any:
    # The names of __all__ not imported above load on first use: billing (most programs never
    # ask for it) and the error classes (they subclass openai's, so they load openai).
    if name in __all__:
        module = import_module(".billing" if name in _BILLING else ".errors", __name__)
        return getattr(module, name)
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
    "Balance",
    "BillingUsage",
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
    "ModelUsage",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitState",
    "ResponseFormatError",
    "RuncrateAPIError",
    "RuncrateBilling",
    "RuncrateError",
    "StreamErrorEvent",
    "StreamInterruptedError",
    "StructuredOutputError",
    "Transaction",
    "UnprocessableEntityError",
    "UsageTracker",
    "__version__",
    "alist_models",
    "cached_model_info",
    "list_models",
    "rate_limit_state",
    "track_usage",
]
