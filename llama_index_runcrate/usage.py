"""``RuncrateUsageHandler``: the core's count of every Runcrate answer, the LlamaIndex way.

The core (:mod:`runcrate_integrations.usage`) counts each answer once, where it arrives, and
tells its observers; this module's one observer, registered at import, dispatches each record
as a :class:`RuncrateUsageEvent` through LlamaIndex's instrumentation while a handler exists.
A :class:`RuncrateUsageHandler` attached to a dispatcher adds them up with the core's own
tracker, so it reports what ``track_usage`` reports for the same answers. Nothing is built for
an answer while no handler is attached where the events go.
"""

from __future__ import annotations

import weakref
from typing import Any

from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.base import BaseEvent
from llama_index_instrumentation.dispatcher import Dispatcher
from llama_index_instrumentation.event_handlers.base import BaseEventHandler
from pydantic import ConfigDict, Field, PrivateAttr

from runcrate_integrations import usage
from runcrate_integrations.usage import ModelUsage, UsageRecord, UsageTracker

__all__ = ["RuncrateUsageEvent", "RuncrateUsageHandler"]

dispatcher = get_dispatcher(__name__)
# The handlers alive: records are dispatched only while one exists.
_handlers: weakref.WeakValueDictionary[int, RuncrateUsageHandler] = weakref.WeakValueDictionary()


class RuncrateUsageEvent(BaseEvent):
    """One answer as the core counted it (model, tokens, media units, the server's cost)."""

    record: UsageRecord

    @classmethod
    def class_name(cls) -> str:
        return "RuncrateUsageEvent"


class RuncrateUsageHandler(BaseEventHandler):
    """Adds up the Runcrate answers of the process (any thread) from the events it receives;
    the same figures as ``track_usage``. Example::

        from llama_index.core.instrumentation import get_dispatcher

        usage = RuncrateUsageHandler(prices={"BAAI/bge-m3": {"input": 0.01}})
        get_dispatcher().add_event_handler(usage)
        VectorStoreIndex.from_documents(documents)
        print(usage.total_tokens, usage.cost)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prices: dict[str, dict[str, float]] | None = Field(
        default=None, description="USD per million tokens (and media units) per model id."
    )
    _tracker: UsageTracker = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._tracker = UsageTracker(self.prices)  # checks the prices
        _handlers[id(self)] = self

    @classmethod
    def class_name(cls) -> str:
        return "RuncrateUsageHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RuncrateUsageEvent):
            self._tracker.add(event.record)

    def reset(self) -> None:
        """Start counting from zero."""
        self._tracker = UsageTracker(self.prices)

    @property
    def tracker(self) -> UsageTracker:
        """The core tracker holding the figures."""
        return self._tracker

    @property
    def requests(self) -> int:
        return self._tracker.requests

    @property
    def prompt_tokens(self) -> int:
        return self._tracker.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self._tracker.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self._tracker.total_tokens

    @property
    def cost(self) -> float | None:
        """USD; ``None`` when a model had no price and its answer no ``usage.cost``."""
        return self._tracker.cost

    @property
    def by_model(self) -> dict[str, ModelUsage]:
        return self._tracker.by_model

    @property
    def estimated(self) -> bool:
        return self._tracker.estimated

    def __str__(self) -> str:
        return str(self._tracker)


class _Dispatch:
    """The core's observer: each counted answer becomes a :class:`RuncrateUsageEvent`
    (registered once, at import)."""

    def wanted(self) -> bool:
        """True while a handler is attached where these events go (this dispatcher or one it
        propagates to): only then do calls build records, and streams ask for usage."""
        if not _handlers:
            return False
        chain: Dispatcher | None = dispatcher
        while chain is not None:
            if any(isinstance(h, RuncrateUsageHandler) for h in chain.event_handlers):
                return True
            chain = chain.parent if chain.propagate else None
        return False

    def __call__(self, record: UsageRecord) -> None:
        if _handlers:
            dispatcher.event(RuncrateUsageEvent(record=record))


usage.add_observer(_Dispatch())
