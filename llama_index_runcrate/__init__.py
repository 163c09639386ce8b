"""LlamaIndex integration for Runcrate: ``RuncrateLLM``, ``RuncrateEmbedding``, the media
tools (``RuncrateToolSpec``), the transcription reader (``RuncrateTranscriptionReader``) and
``RuncrateUsageHandler`` (usage and cost, the LlamaIndex way).

Every name loads on first use, so importing this package stays cheap::

    from llama_index_runcrate import RuncrateLLM

    llm = RuncrateLLM(model="deepseek/deepseek-v3.2")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runcrate_integrations._extras import require_extra

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)
require_extra(
    "llama_index.core",
    distribution="llama-index-core",
    extra="llama-index",
    package=__name__,
)

if TYPE_CHECKING:
    from runcrate_integrations.billing import RuncrateBilling
    from runcrate_integrations.errors import BudgetExceededError
    from runcrate_integrations.usage import track_usage

    from .embeddings import RuncrateEmbedding
    from .llms import RuncrateLLM
    from .readers import RuncrateTranscriptionReader
    from .tools import RuncrateToolSpec
    from .usage import RuncrateUsageEvent, RuncrateUsageHandler

__all__ = [
    "BudgetExceededError",
    "RuncrateBilling",
    "RuncrateEmbedding",
    "RuncrateLLM",
    "RuncrateToolSpec",
    "RuncrateTranscriptionReader",
    "RuncrateUsageEvent",
    "RuncrateUsageHandler",
    "track_usage",
]

_LAZY = {
    "RuncrateLLM": ".llms",
    "RuncrateEmbedding": ".embeddings",
    "RuncrateUsageHandler": ".usage",
    "RuncrateUsageEvent": ".usage",
    "track_usage": "runcrate_integrations.usage",
    "RuncrateBilling": "runcrate_integrations.billing",
    "BudgetExceededError": "runcrate_integrations.errors",
    "RuncrateToolSpec": ".tools",
    "RuncrateTranscriptionReader": ".readers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__ if module.startswith(".") else None), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
