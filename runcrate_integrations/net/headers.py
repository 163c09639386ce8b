"""The one reading of the rate-limit headers (for pacing, retry waits and error objects alike)
into one JSON-friendly shape, :class:`RateLimitState`."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TypedDict

# Values of X-RateLimit-Reset below this are seconds from now, not a Unix time.
UNIX_TIME_FLOOR = 1e9


class RateLimitState(TypedDict):
    """What one answer's headers said about the rate limit, the same everywhere
    (``rate_limit_state()``, ``response_metadata["rate_limit"]``, ``error.rate_limit``, ...).

    ``limit``/``remaining``: ``X-RateLimit-Limit``/``-Remaining``; ``reset_at``:
    ``X-RateLimit-Reset`` as a Unix time (a small number is seconds from now); ``retry_after``:
    seconds to wait (``retry-after-ms`` or ``Retry-After``, seconds or an HTTP date);
    ``observed_at``: when the answer arrived. A header left out is ``None``.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None
    retry_after: float | None
    observed_at: float


def _number(value: str | None) -> float | None:
    try:
        number = float(value or "")  # no header: a ValueError too
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    value = headers.get("retry-after")
    seconds = _number(value)
    if seconds is not None or value is None:
        return seconds
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "retry-after-ms",
)


def carries_rate_limit(headers: Mapping[str, str]) -> bool:
    """Whether an answer carries any of the headers (a dict lookup each; no clock read)."""
    return any(name in headers for name in _HEADERS)


def read_rate_limit(headers: Mapping[str, str], now: float | None = None) -> RateLimitState | None:
    """The rate-limit state of one answer's headers; ``None`` when it carries none of them."""
    if not carries_rate_limit(headers):
        return None
    now = time.time() if now is None else now
    limit = _number(headers.get("x-ratelimit-limit"))
    remaining = _number(headers.get("x-ratelimit-remaining"))
    reset_at = _number(headers.get("x-ratelimit-reset"))
    if reset_at is not None and reset_at < UNIX_TIME_FLOOR:
        reset_at += now
    return RateLimitState(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_at=reset_at,
        retry_after=_retry_after(headers, now),
        observed_at=now,
    )


def server_wait(state: RateLimitState | None, status: int, now: float | None = None) -> float:
    """Seconds the server asked a retry to wait: the larger of its ``Retry-After`` and, on a
    429 or with no quota left, the time until ``Reset``; 0 when it said nothing."""
    if state is None:
        return 0.0
    wait = state["retry_after"] or 0.0
    reset_at = state["reset_at"]
    if reset_at is not None and (status == 429 or state["remaining"] == 0):
        wait = max(wait, reset_at - (time.time() if now is None else now))
    return max(wait, 0.0)
