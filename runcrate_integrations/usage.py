"""What a block of calls used and cost, and a hard stop at a budget: :func:`track_usage`.

Every answer the package receives is counted here, once, from the one place each kind of
answer passes: the chat engine (calls and streams, :mod:`.chat.metering`), the embeddings
sender (:mod:`.embeddings`) and media (:func:`record_media`). LangChain's
``get_runcrate_callback`` and LlamaIndex's ``RuncrateUsageHandler`` are views of these counts,
so both frameworks count the same way.

**Scope.** A tracker is held in a ``ContextVar``: it sees the calls of its ``with`` block, of
asyncio tasks started inside it and of worker threads that copy the context (this package's
own, LangChain's ``batch``); a thread started elsewhere never sees it. Trackers nest: a call
counts in every tracker around it.

**Counts** come from the server's ``usage``; a stream always asks for it while anything
watches. An answer without usage (a stream closed before its usage chunk, a server that sends
none) is counted from an estimate of what was sent and received (:mod:`.tokens`) and flagged
``estimated``. A call counts as one request when its answer arrives, however many attempts
(429s, 5xx, dropped connections) it took; a call that ends in an error counts nothing.

**Cost**: the answer's ``usage.cost`` when it carries one, else the price of its model from the
innermost tracker that has one (USD per million tokens, per image, ...). No price and no
``usage.cost``: the cost is ``None`` (never a silent 0) and one warning names the model.

**Budget**: before a call is sent its worst case is reserved in every budgeted tracker around
it (estimated prompt tokens plus ``max_tokens``, or the context length when ``max_tokens`` is
unset), and the answer settles it; a call whose reservation would pass a budget raises
:class:`~runcrate_integrations.errors.BudgetExceededError` and sends nothing. A call whose worst
case has no price is sent only while nothing else is in flight; an answer whose cost is unknown
stops every later call of a budgeted tracker (a budget that cannot be checked is no guard).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

from typing_extensions import Self

__all__ = [
    "PRICE_KEYS",
    "Meter",
    "ModelUsage",
    "UsageRecord",
    "UsageTracker",
    "record_media",
    "reserve_media",
    "track_usage",
]

log = logging.getLogger(__name__)

#: What a model's entry in ``prices`` may hold (USD): per million prompt (``input``) and
#: completion (``output``) tokens, per image, per second of video, per million characters of
#: speech, per minute of transcribed audio.
PRICE_KEYS = (
    "input", "output", "per_image", "per_video_second", "per_million_characters",
    "per_audio_minute",
)
Prices = Mapping[str, Mapping[str, float]]
#: An estimated input is held this much larger than estimated: the token counter's error on
#: short or unusual text (docs/benchmarks.md), so holds cover what the answers then report.
ESTIMATE_MARGIN = 1.25
# (record field, price key, record units per priced unit): divided, since 1e6 and 60 are exact
# floats and 1e-6 is not (10 tokens at $1 per million cost 1e-05, not 9.999999999999999e-06).
_RATES = (
    ("prompt_tokens", "input", 1e6),
    ("completion_tokens", "output", 1e6),
    ("images", "per_image", 1.0),
    ("video_seconds", "per_video_second", 1.0),
    ("speech_characters", "per_million_characters", 1e6),
    ("audio_seconds", "per_audio_minute", 60.0),
)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one answer used (``requests=0``: a call's worst case, reserved before sending).

    ``cost`` is the server's ``usage.cost`` when the answer carried one; ``estimated`` marks
    counts estimated because the answer carried no usage.
    """

    model: str
    requests: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    speech_characters: int = 0
    audio_seconds: float = 0.0
    cost: float | None = None
    estimated: bool = False


def price_of(record: UsageRecord, price: Mapping[str, float] | None) -> tuple[float | None, str]:
    """The cost of ``record`` at ``price`` (its model's entry), or ``(None, what is missing)``."""
    if price is None:
        return None, "no price"
    total = 0.0
    for name, key, per in _RATES:
        amount = getattr(record, name)
        if amount:
            rate = price.get(key)
            if rate is None:
                return None, f"no {key!r} price"
            total += amount * rate / per
    return total, ""


@dataclass(slots=True)
class ModelUsage:
    """Counts of one model (or of a whole tracker); ``cost`` is ``None`` once any of its
    answers had no known cost, ``estimated`` once any count was estimated."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = 0.0
    images: int = 0
    video_seconds: float = 0.0
    speech_characters: int = 0
    audio_seconds: float = 0.0
    estimated: bool = False

    def _add(self, record: UsageRecord, cost: float | None) -> None:
        self.requests += record.requests
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.total_tokens += record.total_tokens
        self.images += record.images
        self.video_seconds += record.video_seconds
        self.speech_characters += record.speech_characters
        self.audio_seconds += record.audio_seconds
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        self.estimated = self.estimated or record.estimated


# ---------------------------------------------------------------------------- checks


def check_prices(prices: Prices | None) -> dict[str, dict[str, float]]:
    """``prices`` as plain dicts; a key other than :data:`PRICE_KEYS` or a value that is not a
    number >= 0 is a ``ValueError`` naming the model (a typo must not turn into "unknown")."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ValueError(
            f"prices must be a dict of model id -> prices, got {type(prices).__name__}"
        )
    out: dict[str, dict[str, float]] = {}
    for model, entry in prices.items():
        if not isinstance(model, str) or not isinstance(entry, Mapping):
            raise ValueError(f"prices[{model!r}] must be a dict such as {{'input': 0.5, "
                             "'output': 1.5}} (USD per million tokens)")
        for key, value in entry.items():
            if key not in PRICE_KEYS:
                close = difflib.get_close_matches(str(key), PRICE_KEYS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"prices[{model!r}] has unknown key {key!r}; {hint}"
                                 f"known: {', '.join(PRICE_KEYS)}")
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f"prices[{model!r}][{key!r}] must be a number >= 0 (USD), "
                                 f"got {value!r}")
        out[model] = {k: float(v) for k, v in entry.items()}
    return out


def check_budget(budget: object) -> float | None:
    """``budget`` (USD) if it is ``None`` or a finite number >= 0."""
    if budget is None:
        return None
    if (not isinstance(budget, (int, float)) or isinstance(budget, bool)
            or not math.isfinite(budget) or budget < 0):
        raise ValueError(f"budget must be a number of USD >= 0, got {budget!r}")
    return float(budget)


# ---------------------------------------------------------------------------- trackers

# The trackers around the current call, outermost first (None: nothing tracks it).
_active: ContextVar[tuple[UsageTracker, ...] | None] = ContextVar(
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
        "_blocked", "_budget", "_flight", "_models", "_prices", "_reserved", "_spent", "_state",
        "_token", "_totals", "_unbounded", "_warned",
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
        chain = _active.get()
        self._token = _active.set((*chain, self) if chain else (self,))
        self._state = "active"
        return self

    def __exit__(self, *exc: object) -> None:
        _active.reset(self._token)
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
        lines = [f"Runcrate usage: {_describe(self._totals)}"]
        if len(models) > 1:
            lines += [f"  {model}: {_describe(counts)}" for model, counts in models.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        cost = "unknown" if self.cost is None else money(self.cost)
        budget = "" if self._budget is None else f", budget={money(self._budget)}"
        return (f"UsageTracker(requests={self.requests}, prompt_tokens={self.prompt_tokens}, "
                f"completion_tokens={self.completion_tokens}, cost={cost}{budget})")

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
            raise _refused(self, model, f"Budget reached: {money(self._spent)} spent of "
                                        f"{money(budget)}.")
        if self._unbounded:
            raise _refused(self, model, "A call whose cost cannot be bounded is in flight; "
                           f"until it settles, nothing else is sent under the {money(budget)} "
                           "budget.")
        if worst is None:
            if self._flight:
                raise _refused(self, model, f"The cost of a call to {model!r} cannot be bounded "
                               f"({why}), so it is sent only when no other call is in flight "
                               f"under the {money(budget)} budget ({self._flight} are).")
            return
        if self._spent + self._reserved + worst > budget:
            raise _refused(self, model, (
                f"A call to {model!r} may cost up to {money(worst)}, and with "
                f"{money(self._spent)} spent and {money(self._reserved)} held by calls in "
                f"flight that would pass the budget of {money(budget)}{why}."
            ))

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


def money(usd: float) -> str:
    """``$0.000037``, ``$0.00000022``, ``$1.50``: to the 10th decimal, no trailing zeros (a
    fraction of a cent per call is what most calls cost)."""
    whole, _, cents = f"{usd:.10f}".partition(".")
    return f"${whole}.{cents.rstrip('0').ljust(2, '0')}"


def _describe(counts: ModelUsage) -> str:
    plural = "" if counts.requests == 1 else "s"
    parts = [f"{counts.requests} request{plural}",
             f"{counts.total_tokens} tokens ({counts.prompt_tokens} prompt, "
             f"{counts.completion_tokens} completion)"]
    for amount, unit in ((counts.images, "images"), (counts.video_seconds, "s of video"),
                         (counts.speech_characters, "characters of speech"),
                         (counts.audio_seconds, "s of audio")):
        if amount:
            parts.append(f"{amount:g} {unit}")
    parts.append("cost unknown" if counts.cost is None else money(counts.cost))
    text = ", ".join(parts)
    return f"{text} (partly estimated)" if counts.estimated else text


def track_usage(prices: Prices | None = None, budget: float | None = None) -> UsageTracker:
    """A tracker for ``with`` (or ``async with``): counts every answer of the block.

    ``prices``: ``{"model-id": {"input": usd_per_million, "output": usd_per_million}}``
    (embeddings: ``input``; media: ``per_image``, ``per_video_second``,
    ``per_million_characters``, ``per_audio_minute``). ``budget``: USD; calls that could pass
    it raise :class:`~runcrate_integrations.errors.BudgetExceededError` before sending.
    """
    return UsageTracker(prices, budget)


def _refused(tracker: UsageTracker, model: str, message: str) -> Exception:
    from .errors import BudgetExceededError  # errors imports openai: only when raising

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
        log.warning("Usage: the cost of %r is unknown (%s for it in track_usage(prices=...) and "
                    "no usage.cost in its answer); the tracked cost is None", model, missing)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------- observers


class UsageObserver(Protocol):
    """Told every counted answer of the process (a framework's usage handler)."""

    def wanted(self) -> bool:
        """Whether records are wanted now (so nothing is built for nobody)."""
        ...

    def __call__(self, record: UsageRecord) -> object: ...


_observers: list[UsageObserver] = []


def add_observer(observer: UsageObserver) -> None:
    """Tell ``observer`` every answer counted in this process, from any thread (once)."""
    if observer not in _observers:
        _observers.append(observer)


def _observed() -> bool:
    return any(o.wanted() for o in _observers)


def _notify(record: UsageRecord) -> None:
    for observer in _observers:
        try:
            observer(record)
        except Exception:  # an observer never fails a call that was answered
            log.exception("usage observer %r failed", observer)


# ---------------------------------------------------------------------------- calls


def watching() -> bool:
    """True when a tracker or an observer counts the calls made now (the one check on every
    call: a ContextVar read, and a look at an empty list)."""
    return _active.get() is not None or (bool(_observers) and _observed())


def budgeted() -> bool:
    """True when a tracker around the current call has a budget (worst cases are needed)."""
    chain = _active.get()
    return chain is not None and any(t._budget is not None for t in chain)


def has_price(model: str) -> bool:
    """True when a tracker around the current call prices ``model``."""
    chain = _active.get() or ()
    return any(model in t._prices for t in chain)


class Meter:
    """One call's hold on the trackers around it: reserved before the request is sent,
    settled by its answer (:meth:`settle`), released otherwise; used as ``with meter:``, whose
    exit releases whatever was not settled, so a hold never outlives its call."""

    __slots__ = ("_chain", "_open", "_worst")

    def __init__(self, chain: tuple[UsageTracker, ...], worst: float | None) -> None:
        self._chain = chain
        self._worst = worst
        self._open = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def settle(self, record: UsageRecord) -> None:
        """Count the answer in every tracker around the call and drop the hold, at once and
        once (a second settle or a release after it does nothing)."""
        _account(self._chain, record, self)

    def release(self) -> None:
        """Drop the hold without counting anything (no answer came); idempotent."""
        with _lock:
            if not self._open:
                return
            self._open = False
            for tracker in self._chain:
                tracker._unhold(self._worst)


def _account(chain: tuple[UsageTracker, ...], record: UsageRecord, meter: Meter | None) -> None:
    """Count ``record`` in ``chain`` (dropping ``meter``'s hold in the same step, so no other
    call is ever admitted against a spend that misses it), then warn and tell the observers."""
    cost, missing = _cost(record, chain)
    with _lock:
        if meter is not None:
            if not meter._open:
                return
            meter._open = False
            for tracker in chain:
                tracker._unhold(meter._worst)
        for tracker in chain:
            tracker._count(record, cost, missing)
    if cost is None and chain:
        _warn_once(chain, record.model, missing)
    if _observers:
        _notify(record)


def open_meter(model: str, worst: UsageRecord | None, why: str = "") -> Meter:
    """Check and hold a call's worst case in every tracker around the current call, or raise
    :class:`~runcrate_integrations.errors.BudgetExceededError` if a budget refuses it.

    ``worst``: what the call may use at most; ``None`` when it cannot be bounded (``why`` says
    why). Only budgeted trackers look at it; a worst case without a price cannot be bounded.
    """
    chain = _active.get() or ()
    cost: float | None = 0.0
    if any(t._budget is not None for t in chain):
        cost, advice = None, why
        if worst is not None:
            cost, missing = _cost(worst, chain)
            advice = f"{missing} for {model!r} in prices=..." if cost is None else _advice(worst)
        with _lock:
            for tracker in chain:
                if tracker._budget is not None:
                    tracker._admit(model, cost, advice)
            for tracker in chain:
                tracker._hold(cost)
        return Meter(chain, cost)
    with _lock:
        for tracker in chain:
            tracker._hold(cost)
    return Meter(chain, cost)


def _advice(worst: UsageRecord) -> str:
    if not worst.completion_tokens:
        return ""
    return (f" (it holds {worst.completion_tokens} output tokens: set max_tokens to hold "
            "less)")


# ---------------------------------------------------------------------------- media


def reserve_media(
    model: str,
    *,
    images: int = 0,
    video_seconds: float = 0.0,
    speech_characters: int = 0,
    audio_seconds: float | None = 0.0,
) -> Meter | None:
    """Hold a media call's worst case before it is sent (``audio_seconds=None``: not known
    before the answer, so the call cannot be bounded); ``None`` when no tracker is active.

    Use as ``with reserve_media(...) or contextlib.nullcontext():`` around the request, and
    count its answer with :func:`record_media`; the hold is dropped when the block ends.
    """
    if _active.get() is None:
        return None
    if audio_seconds is None:
        return open_meter(model, None, "the audio's length is not known before the answer")
    worst = UsageRecord(model, 0, images=images, video_seconds=video_seconds,
                        speech_characters=speech_characters, audio_seconds=audio_seconds)
    return open_meter(model, worst)


def record_media(
    model: str,
    *,
    images: int = 0,
    video_seconds: float = 0.0,
    speech_characters: int = 0,
    audio_seconds: float = 0.0,
    cost: float | None = None,
) -> None:
    """Count one media answer (``cost``: the server's, if it reported one) in every tracker
    around the current call, and tell the observers."""
    if not watching():
        return
    record = UsageRecord(model, 1, images=images, video_seconds=video_seconds,
                         speech_characters=speech_characters, audio_seconds=audio_seconds,
                         cost=cost)
    _account(_active.get() or (), record, None)
