"""``get_runcrate_callback()``: the ``get_openai_callback`` idiom, as a view of the core's count.

The count is :func:`runcrate_integrations.track_usage`'s, fed by every answer the package
receives (chat, streams, embeddings, media), so this module registers nothing with
langchain-core, once or per ``with``: the tracker lives in a ``ContextVar``, which LangChain's
own executors (``batch``, tools run in threads, LangGraph nodes) copy into the threads and
tasks they start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from runcrate_integrations.usage import ModelUsage, Prices, UsageTracker, track_usage

__all__ = ["RuncrateCallback", "get_runcrate_callback"]


class RuncrateCallback:
    """What :func:`get_runcrate_callback` yields: the tracker's figures under the names
    LangChain's usage callbacks use. Example::

        with get_runcrate_callback(prices={"deepseek/deepseek-v3.2": {"input": 0.3,
                                                                      "output": 1.2}}) as cb:
            chain.invoke({"question": "..."})
        print(cb.total_tokens, cb.successful_requests, cb.total_cost)
    """

    __slots__ = ("tracker",)

    def __init__(self, tracker: UsageTracker) -> None:
        self.tracker = tracker

    @property
    def prompt_tokens(self) -> int:
        return self.tracker.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.tracker.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.tracker.total_tokens

    @property
    def successful_requests(self) -> int:
        """Answers received (a retried request counts once; a failed call not at all)."""
        return self.tracker.requests

    @property
    def total_cost(self) -> float | None:
        """USD; ``None`` (not 0) when a model had no price and its answer no ``usage.cost``."""
        return self.tracker.cost

    @property
    def by_model(self) -> dict[str, ModelUsage]:
        return self.tracker.by_model

    @property
    def estimated(self) -> bool:
        return self.tracker.estimated

    def __str__(self) -> str:
        return str(self.tracker)

    def __repr__(self) -> str:
        return f"RuncrateCallback({self.tracker!r})"


@contextmanager
def get_runcrate_callback(
    prices: Prices | None = None, budget: float | None = None
) -> Iterator[RuncrateCallback]:
    """Count what the block's Runcrate calls use and cost (``track_usage`` with LangChain's
    names); ``budget`` (USD) stops calls that could pass it, before they are sent."""
    with track_usage(prices=prices, budget=budget) as tracker:
        yield RuncrateCallback(tracker)
