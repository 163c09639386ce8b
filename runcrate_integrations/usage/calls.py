"""A call's part: the one check every call makes (:func:`watching`), its hold on the trackers
around it (:class:`Meter`), the observers told of every counted answer, and the media hooks."""

from __future__ import annotations

import logging
from typing import Protocol

from typing_extensions import Self

from . import tracker
from .prices import UsageRecord
from .tracker import UsageTracker

log = logging.getLogger("runcrate_integrations.usage")


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
    return tracker.active_trackers.get() is not None or (bool(_observers) and _observed())


def budgeted() -> bool:
    """True when a tracker around the current call has a budget (worst cases are needed)."""
    return any(t._budget is not None for t in tracker.current())


def has_price(model: str) -> bool:
    """True when a tracker around the current call prices ``model``."""
    return any(model in t._prices for t in tracker.current())


class Meter:
    """One call's hold on the trackers around it: taken before the request is sent
    (:func:`open_meter`), settled by its answer (:meth:`settle`), released otherwise. Used as
    ``with meter:``, whose exit releases whatever was not settled, so a hold never outlives its
    call. A meter belongs to its call: settled or released once, from one thread at a time."""

    __slots__ = ("_chain", "_held", "_open")

    def __init__(self, chain: tuple[UsageTracker, ...], held: float | None) -> None:
        self._chain = chain
        self._held = held
        self._open = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def settle(self, record: UsageRecord) -> None:
        """Count the answer in every tracker around the call and drop the hold (once: a
        second settle, or a release after it, does nothing); then tell the observers."""
        if not self._open:
            return
        self._open = False
        tracker.settle(self._chain, record, self._held)
        if _observers:
            _notify(record)

    def release(self) -> None:
        """Drop the hold without counting anything (no answer came); idempotent."""
        if self._open:
            self._open = False
            tracker.release(self._chain, self._held)


def open_meter(model: str, worst: UsageRecord | None, why: str = "") -> Meter:
    """Check and hold a call's worst case in every tracker around the current call, or raise
    :class:`~runcrate_integrations.errors.BudgetExceededError` if a budget refuses it.

    ``worst``: what the call may use at most; ``None`` when it cannot be bounded (``why`` says
    why). Only budgeted trackers look at it; a worst case without a price cannot be bounded.
    """
    return Meter(*tracker.hold(model, worst, why))


# ---------------------------------------------------------------------------- media


def reserve_media(
    model: str,
    *,
    images: int = 0,
    video_seconds: float | None = 0.0,
    speech_characters: int = 0,
    audio_seconds: float | None = 0.0,
) -> Meter | None:
    """Hold a media call's worst case before it is sent (``video_seconds`` or
    ``audio_seconds`` ``None``: not known before the answer, so the call cannot be bounded);
    ``None`` when no tracker is active.

    Use as ``with reserve_media(...) or contextlib.nullcontext():`` around the request, and
    count its answer with :func:`record_media`; the hold is dropped when the block ends.
    """
    if not tracker.current():
        return None
    if audio_seconds is None:
        return open_meter(model, None, "the audio's length is not known before the answer")
    if video_seconds is None:
        return open_meter(model, None, "the video's length is not known before the answer")
    worst = UsageRecord(
        model,
        0,
        images=images,
        video_seconds=video_seconds,
        speech_characters=speech_characters,
        audio_seconds=audio_seconds,
    )
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
    record = UsageRecord(
        model,
        1,
        images=images,
        video_seconds=video_seconds,
        speech_characters=speech_characters,
        audio_seconds=audio_seconds,
        cost=cost,
    )
    tracker.settle(tracker.current(), record, None, holding=False)
    if _observers:
        _notify(record)
