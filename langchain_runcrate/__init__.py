"""LangChain integration for Runcrate's OpenAI-compatible inference API.

    from langchain_runcrate import ChatRuncrate

    llm = ChatRuncrate(model="deepseek/deepseek-v3.2")
    llm.invoke("Hello!")

Names are imported on first use, so ``import langchain_runcrate`` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from runcrate_integrations import __version__

if TYPE_CHECKING:
    from runcrate_integrations.catalog import ModelInfo, alist_models, list_models

    from ._errors import (
        RuncrateAPIStatusError,
        RuncrateAuthenticationError,
        RuncrateBadRequestError,
        RuncrateConnectionError,
        RuncrateContextOverflowError,
        RuncrateInsufficientCreditsError,
        RuncrateInternalServerError,
        RuncrateInvalidRequestError,
        RuncrateNotFoundError,
        RuncratePermissionDeniedError,
        RuncrateRateLimitError,
        RuncrateResponseFormatError,
        RuncrateStreamInterruptedError,
        RuncrateTimeoutError,
    )
    from .chat_models import ChatRuncrate

_ERRORS = (
    "RuncrateAPIStatusError",
    "RuncrateAuthenticationError",
    "RuncrateBadRequestError",
    "RuncrateConnectionError",
    "RuncrateContextOverflowError",
    "RuncrateInsufficientCreditsError",
    "RuncrateInternalServerError",
    "RuncrateInvalidRequestError",
    "RuncrateNotFoundError",
    "RuncratePermissionDeniedError",
    "RuncrateRateLimitError",
    "RuncrateResponseFormatError",
    "RuncrateStreamInterruptedError",
    "RuncrateTimeoutError",
)
_LAZY: dict[str, str] = {
    "ChatRuncrate": f"{__name__}.chat_models",
    "ModelInfo": "runcrate_integrations.catalog",
    "list_models": "runcrate_integrations.catalog",
    "alist_models": "runcrate_integrations.catalog",
    **{name: f"{__name__}._errors" for name in _ERRORS},
}
# Embeddings live in their own module, which may be absent from a given build.
_EMBEDDINGS = f"{__name__}.embeddings"
_HAS_EMBEDDINGS = importlib.util.find_spec(_EMBEDDINGS) is not None

__all__ = [
    "ChatRuncrate",
    "ModelInfo",
    "RuncrateAPIStatusError",
    "RuncrateAuthenticationError",
    "RuncrateBadRequestError",
    "RuncrateConnectionError",
    "RuncrateContextOverflowError",
    "RuncrateInsufficientCreditsError",
    "RuncrateInternalServerError",
    "RuncrateInvalidRequestError",
    "RuncrateNotFoundError",
    "RuncratePermissionDeniedError",
    "RuncrateRateLimitError",
    "RuncrateResponseFormatError",
    "RuncrateStreamInterruptedError",
    "RuncrateTimeoutError",
    "__version__",
    "alist_models",
    "list_models",
]
if _HAS_EMBEDDINGS:
    __all__ += ["RuncrateEmbeddings"]


def __getattr__(name: str) -> Any:
    if name == "RuncrateEmbeddings":
        try:
            module = importlib.import_module(_EMBEDDINGS)
        except ModuleNotFoundError as exc:
            if exc.name != _EMBEDDINGS:
                raise
            raise AttributeError(f"{__name__} has no embeddings module in this build") from exc
        return module.RuncrateEmbeddings
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
