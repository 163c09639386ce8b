"""Trackers, and the one lock under which every tracker around a call checks, holds and
counts it (see the package's docstring for the rules)."""

from __future__ import annotations

import logging
import os
import threading
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from typing_extensions import Self

from .prices import (
    ModelUsage,
    Prices,
    UsageRecord,
    check_budget,
    check_prices,
    describe,
    money,
    price_of,
)

log = logging.getLogger("runcrate_integrations.usage")


# The trackers around the current call, outermost first (None: nothing tracks it).
active_trackers: ContextVar[tuple[UsageTracker, ...] | None] = ContextVar(
    "runcrate_usage_trackers", default=None
)
# One lock for every tracker: a reservation is checked and taken in all trackers at once.
_lock = threading.Lock()


class UsageTracker:
    """The usage of the calls of a :func:`track_usage` block: ``requests``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``cost`` (USD, ``None`` when unknown), media units,
    ``estimated`` and ``by_model`` (the same per model id). Example::

        with track_usage(prices={"deepseek/deepseek-v3.2": {"input": 0.3, "output": 1.2}},
                         budget=0.50) as usage:
            llm.invoke("Hi")
        print(usage.total_tokens, usage.cost)
    """

    __slots__ = (
        "_blocked",
        "_budget",
        "_flight",
        "_models",
        "_prices",
        "_reserved",
        "_spent",
        "_state",
        "_token",
        "_totals",
        "_unbounded",
        "_warned",
    )

    def __init__(self, prices: Prices | None = None, budget: float | None = None) -> None:
        self._prices = check_prices(prices)
        self._budget = check_budget(budget)
        self._totals = ModelUsage()
        self._models: dict[str, ModelUsage] = {}
        self._spent = 0.0  # the known part of the cost
        self._reserved = 0.0  # worst cases of priced calls in flight
        self._flight = 0  # calls in flight
        self._unbounded = 0  # calls in flight whose worst case has no price
        self._blocked: str | None = None  # why a budgeted tracker refuses every call
        self._warned: set[str] = set()
        self._token: Any = None
        self._state = "new"

    # ------------------------------------------------------------------ the block

    def __enter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a usage tracker is entered once; make a new track_usage()")
        chain = active_trackers.get()
        self._token = active_trackers.set((*chain, self) if chain else (self,))
        self._state = "active"
        return self

    def __exit__(self, *exc: object) -> None:
        active_trackers.reset(self._token)
        self._state = "closed"

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    # ------------------------------------------------------------------ figures

    @property
    def requests(self) -> int:
        return self._totals.requests

    @property
    def prompt_tokens(self) -> int:
        return self._totals.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self._totals.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self._totals.total_tokens

    @property
    def cost(self) -> float | None:
        """USD; ``None`` once an answer's cost was unknown (no ``usage.cost``, no price)."""
        return self._totals.cost

    @property
    def images(self) -> int:
        return self._totals.images

    @property
    def video_seconds(self) -> float:
        return self._totals.video_seconds

    @property
    def speech_characters(self) -> int:
        return self._totals.speech_characters

    @property
    def audio_seconds(self) -> float:
        return self._totals.audio_seconds

    @property
    def estimated(self) -> bool:
        """True once a count came from an estimate (an answer without usage)."""
        return self._totals.estimated

    @property
    def by_model(self) -> dict[str, ModelUsage]:
        """The same figures per model id (a copy)."""
        with _lock:
            return {model: replace(counts) for model, counts in self._models.items()}

    @property
    def in_flight(self) -> int:
        """Calls sent (or about to be) whose answer is not counted yet."""
        return self._flight

    @property
    def budget(self) -> float | None:
        return self._budget

    @property
    def prices(self) -> dict[str, dict[str, float]]:
        return {model: dict(entry) for model, entry in self._prices.items()}

    def add(self, record: UsageRecord) -> None:
        """Count an answer recorded elsewhere, priced by this tracker alone (what a
        framework's handler does with the records it receives)."""
        cost, missing = _cost(record, (self,))
        with _lock:
            self._count(record, cost, missing)
        if cost is None:
            _warn_once((self,), record.model, missing)

    def __str__(self) -> str:
        """``Runcrate usage: 3 requests, 120 tokens (100 prompt, 20 completion), $0.000123``,
        then one such line per model when there are several."""
        models = self.by_model
        lines = [f"Runcrate usage: {describe(self._totals)}"]
        if len(models) > 1:
            lines += [f"  {model}: {describe(counts)}" for model, counts in models.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        cost = "unknown" if self.cost is None else money(self.cost)
        budget = "" if self._budget is None else f", budget={money(self._budget)}"
        return (
            f"UsageTracker(requests={self.requests}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, cost={cost}{budget})"
        )

    # ------------------------------------------------------------------ under the lock

    def _count(self, record: UsageRecord, cost: float | None, missing: str) -> None:
        self._totals._add(record, cost)
        self._models.setdefault(record.model, ModelUsage())._add(record, cost)
        if cost is not None:
            self._spent += cost
        elif self._budget is not None and self._blocked is None:
            self._blocked = (
                f"an answer from {record.model!r} has an unknown cost ({missing} for it in "
                "prices=..., and no usage.cost in the answer), so the budget can no longer be "
                f"checked: give track_usage(prices={{{record.model!r}: {{...}}}})"
            )

    def _admit(self, model: str, worst: float | None, why: str) -> None:
        """Raise if a call to ``model`` with this worst case may not be sent."""
        budget = self._budget
        assert budget is not None
        if self._blocked is not None:
            raise _refused(self, model, f"Budget stop: {self._blocked}.")
        if self._spent >= budget:
            raise _refused(
                self, model, f"Budget reached: {money(self._spent)} spent of {money(budget)}."
            )
        if self._unbounded:
            raise _refused(
                self,
                model,
                "A call whose cost cannot be bounded is in flight; "
                f"until it settles, nothing else is sent under the {money(budget)} "
                "budget.",
            )
        if worst is None:
            if self._flight:
                raise _refused(
                    self,
                    model,
                    f"The cost of a call to {model!r} cannot be bounded "
                    f"({why}), so it is sent only when no other call is in flight "
                    f"under the {money(budget)} budget ({self._flight} are).",
                )
            return
        if self._spent + self._reserved + worst > budget:
            raise _refused(
                self,
                model,
                (
                    f"A call to {model!r} may cost up to {money(worst)}, and with "
                    f"{money(self._spent)} spent and {money(self._reserved)} held by calls in "
                    f"flight that would pass the budget of {money(budget)}{why}."
                ),
            )

    def _hold(self, worst: float | None) -> None:
        self._flight += 1
        if worst is None:
            self._unbounded += 1
        else:
            self._reserved += worst

    def _unhold(self, worst: float | None) -> None:
        self._flight -= 1
        if worst is None:
            self._unbounded -= 1
        else:
            self._reserved -= worst
        if not self._flight:
            self._reserved = 0.0  # no rounding residue once nothing is in flight


def track_usage(prices: Prices | None = None, budget: float | None = None) -> UsageTracker:
    """A tracker for ``with`` (or ``async with``): counts every answer of the block.

    ``prices``: ``{"model-id": {"input": usd_per_million, "output": usd_per_million}}``
    (embeddings: ``input``; media: ``per_image``, ``per_video_second``,
    ``per_million_characters``, ``per_audio_minute``). ``budget``: USD; calls that could pass
    it raise :class:`~runcrate_integrations.errors.BudgetExceededError` before sending.
    """
    return UsageTracker(prices, budget)


def _refused(tracker: UsageTracker, model: str, message: str) -> Exception:
    from ..errors import BudgetExceededError  # errors imports openai: only when raising

    err = BudgetExceededError(f"{message} Nothing was sent.")
    err.model, err.spent, err.budget = model, tracker._spent, tracker._budget  # plain data
    return err


def _cost(record: UsageRecord, chain: tuple[UsageTracker, ...]) -> tuple[float | None, str]:
    """The answer's own cost, else its model's price from the innermost tracker that has one."""
    if record.cost is not None:
        return record.cost, ""
    for tracker in reversed(chain):
        price = tracker._prices.get(record.model)
        if price is not None:
            return price_of(record, price)
    return None, "no price"


def _warn_once(chain: tuple[UsageTracker, ...], model: str, missing: str) -> None:
    with _lock:
        fresh = [t for t in chain if model not in t._warned]
        for tracker in fresh:
            tracker._warned.add(model)
    if fresh:
        log.warning(
            "Usage: the cost of %r is unknown (%s for it in track_usage(prices=...) and "
            "no usage.cost in its answer); the tracked cost is None",
            model,
            missing,
        )


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------- chains


def current() -> tuple[UsageTracker, ...]:
    """The trackers around the current call, outermost first."""
    return active_trackers.get() or ()


def hold(
    model: str, worst: UsageRecord | None, why: str
) -> tuple[tuple[UsageTracker, ...], float | None]:
    """Check a call's worst case against every budget around it and hold it in every tracker;
    ``(the trackers, the amount held)`` (``None``: unbounded). Raises
    :class:`~runcrate_integrations.errors.BudgetExceededError` when a budget refuses it."""
    chain = current()
    held: float | None = 0.0
    if any(t._budget is not None for t in chain):
        held, advice = None, why
        if worst is not None:
            held, missing = _cost(worst, chain)
            advice = f"{missing} for {model!r} in prices=..." if held is None else _advice(worst)
        with _lock:
            for tracker in chain:
                if tracker._budget is not None:
                    tracker._admit(model, held, advice)
            for tracker in chain:
                tracker._hold(held)
        return chain, held
    with _lock:
        for tracker in chain:
            tracker._hold(held)
    return chain, held


def settle(
    chain: tuple[UsageTracker, ...],
    record: UsageRecord,
    held: float | None,
    *,
    holding: bool = True,
) -> None:
    """Count ``record`` in ``chain`` and drop its hold in the same step (``holding``), so no
    call is ever admitted against a spend that misses it; warn once about an unknown cost."""
    cost, missing = _cost(record, chain)
    with _lock:
        for tracker in chain:
            if holding:
                tracker._unhold(held)
            tracker._count(record, cost, missing)
    if cost is None and chain:
        _warn_once(chain, record.model, missing)


def release(chain: tuple[UsageTracker, ...], held: float | None) -> None:
    """Drop a hold that no answer settled."""
    with _lock:
        for tracker in chain:
            tracker._unhold(held)


def _advice(worst: UsageRecord) -> str:
    if not worst.completion_tokens:
        return ""
    return f" (it holds {worst.completion_tokens} output tokens: set max_tokens to hold less)"
