"""LangChain integration for Runcrate's OpenAI-compatible inference API.

    from langchain_runcrate import ChatRuncrate

    llm = ChatRuncrate(model="deepseek/deepseek-v3.2")
    llm.invoke("Hello!")

Names are imported on first use, so ``import langchain_runcrate`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runcrate_integrations import __version__
from runcrate_integrations._extras import require_extra

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)
require_extra(
    "langchain_core",
    distribution="langchain-core",
    extra="langchain",
    package=__name__,
)

if TYPE_CHECKING:
    from runcrate_integrations.billing import RuncrateBilling
    from runcrate_integrations.catalog import ModelInfo, alist_models, list_models
    from runcrate_integrations.errors import BudgetExceededError
    from runcrate_integrations.usage import track_usage

    from .chat_models import ChatRuncrate
    from .embeddings import RuncrateEmbeddings
    from .errors import (
        RuncrateAPIStatusError,
        RuncrateAuthenticationError,
        RuncrateBadRequestError,
        RuncrateConflictError,
        RuncrateConnectionError,
        RuncrateContextOverflowError,
        RuncrateInsufficientCreditsError,
        RuncrateInternalServerError,
        RuncrateInvalidRequestError,
        RuncrateJobTimeoutError,
        RuncrateNotFoundError,
        RuncratePermissionDeniedError,
        RuncrateRateLimitError,
        RuncrateResponseFormatError,
        RuncrateStreamErrorEvent,
        RuncrateStreamInterruptedError,
        RuncrateStructuredOutputError,
        RuncrateTimeoutError,
        RuncrateUnprocessableEntityError,
    )
    from .parsers import RuncrateTranscriptionParser
    from .tools import (
        RuncrateImageGenerationTool,
        RuncrateSpeechToTextTool,
        RuncrateTextToSpeechTool,
        RuncrateToolkit,
        RuncrateVideoGenerationTool,
    )
    from .usage import RuncrateCallback, get_runcrate_callback

# The error classes, all from .errors. __all__ below is written out (type checkers and linters
# read it literally); tests/unit/test_exports.py checks it equals _LAZY and errors.__all__.
_ERRORS = (
    "RuncrateAPIStatusError",
    "RuncrateAuthenticationError",
    "RuncrateBadRequestError",
    "RuncrateConflictError",
    "RuncrateConnectionError",
    "RuncrateContextOverflowError",
    "RuncrateInsufficientCreditsError",
    "RuncrateInternalServerError",
    "RuncrateInvalidRequestError",
    "RuncrateJobTimeoutError",
    "RuncrateNotFoundError",
    "RuncratePermissionDeniedError",
    "RuncrateRateLimitError",
    "RuncrateResponseFormatError",
    "RuncrateStreamErrorEvent",
    "RuncrateStreamInterruptedError",
    "RuncrateStructuredOutputError",
    "RuncrateTimeoutError",
    "RuncrateUnprocessableEntityError",
)
_LAZY: dict[str, str] = {
    "ChatRuncrate": f"{__name__}.chat_models",
    "RuncrateEmbeddings": f"{__name__}.embeddings",
    "RuncrateImageGenerationTool": f"{__name__}.tools",
    "RuncrateTextToSpeechTool": f"{__name__}.tools",
    "RuncrateVideoGenerationTool": f"{__name__}.tools",
    "RuncrateSpeechToTextTool": f"{__name__}.tools",
    "RuncrateToolkit": f"{__name__}.tools",
    "RuncrateTranscriptionParser": f"{__name__}.parsers",
    "ModelInfo": "runcrate_integrations.catalog",
    "list_models": "runcrate_integrations.catalog",
    "alist_models": "runcrate_integrations.catalog",
    "track_usage": "runcrate_integrations.usage",
    "RuncrateBilling": "runcrate_integrations.billing",
    "BudgetExceededError": "runcrate_integrations.errors",
    "get_runcrate_callback": f"{__name__}.usage",
    "RuncrateCallback": f"{__name__}.usage",
    **{name: f"{__name__}.errors" for name in _ERRORS},
}

__all__ = [
    "BudgetExceededError",
    "ChatRuncrate",
    "ModelInfo",
    "RuncrateAPIStatusError",
    "RuncrateAuthenticationError",
    "RuncrateBadRequestError",
    "RuncrateBilling",
    "RuncrateCallback",
    "RuncrateConflictError",
    "RuncrateConnectionError",
    "RuncrateContextOverflowError",
    "RuncrateEmbeddings",
    "RuncrateImageGenerationTool",
    "RuncrateInsufficientCreditsError",
    "RuncrateInternalServerError",
    "RuncrateInvalidRequestError",
    "RuncrateJobTimeoutError",
    "RuncrateNotFoundError",
    "RuncratePermissionDeniedError",
    "RuncrateRateLimitError",
    "RuncrateResponseFormatError",
    "RuncrateSpeechToTextTool",
    "RuncrateStreamErrorEvent",
    "RuncrateStreamInterruptedError",
    "RuncrateStructuredOutputError",
    "RuncrateTextToSpeechTool",
    "RuncrateTimeoutError",
    "RuncrateToolkit",
    "RuncrateTranscriptionParser",
    "RuncrateUnprocessableEntityError",
    "RuncrateVideoGenerationTool",
    "__version__",
    "alist_models",
    "get_runcrate_callback",
    "list_models",
    "track_usage",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
