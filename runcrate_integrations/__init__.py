"""Framework-free core shared by ``langchain_runcrate`` and ``llama_index_runcrate``.

Settings, pooled ``openai`` clients, typed errors, the model catalog and OpenAI wire helpers.
It imports neither LangChain nor LlamaIndex.
"""

from ._version import __version__
from .catalog import ModelInfo, alist_models, cached_model_info, list_models
from .client import ClientSettings
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    InsufficientCreditsError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    RuncrateAPIError,
    RuncrateError,
    StreamInterruptedError,
)
from .settings import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ClientSettings",
    "ContextLengthExceededError",
    "InsufficientCreditsError",
    "InternalServerError",
    "MissingAPIKeyError",
    "ModelInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "RuncrateAPIError",
    "RuncrateError",
    "StreamInterruptedError",
    "__version__",
    "alist_models",
    "cached_model_info",
    "list_models",
]
