"""Waiting for the rate limit only when the server's own headers say the quota is used up.

One :class:`RateLimiter` per base URL, key and process follows ``X-RateLimit-*``: while quota
remains a request goes at once; once used up, callers wait for ``Reset`` or ``Retry-After`` (a
window's quota comes back whole, a token bucket's a token at a time). While the key is being
exhausted other processes on it count: we take our past part of a window, spread over it, or
draw a bucket slower (429s double it, its level steers). A server without the headers never
engages it (after :data:`COLD_START` requests or :data:`COLD_WAIT` s). Waits hold no lock."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import NO_KEY, ClientSettings
from .headers import RateLimitState, carries_rate_limit, read_rate_limit

log = logging.getLogger(__name__)

#: Requests sent to a base URL and key before any answer has shown whether it sends the headers.
COLD_START = 4
#: The longest the others wait for that first answer (seconds).
COLD_WAIT = 0.5
#: The longest any reset or Retry-After is waited for (seconds).
RESET_CAP = 60.0
# How long after a reset the next request goes, so the server's clock has passed it too (s).
_GUARD = 0.005
# Times this close count as equal (a Unix time's float carries about 0.2 µs).
_EPSILON = 1e-6
# A Reset this close to "now" while requests remain is a token bucket's (seconds).
_BUCKET_TOLERANCE = 0.01
# Waits at least this long are logged at INFO, once per reset (seconds).
_LOG_WAIT = 1.0
# The most a bucket is drawn below the refill rate after 429s (a factor).
_MAX_SLOWDOWN = 16.0
# Consecutive answers without the headers after which an engaged limiter lets go.
_FORGET_AFTER = 50
# A waiter that is not first in line re-checks this often (it is normally woken sooner).
_NOT_HEAD_POLL = 1.0

_COLD, _IDLE, _ENGAGED = "cold", "idle", "engaged"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(eq=False, slots=True)
class _Waiter:
    """One caller in line: a thread (``event``) or an asyncio task (``loop``, ``future``)."""

    event: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    queued: bool = False  # in line (it joins when it first has to wait)
    seq: int | None = None  # its sequence number, once let through

    def arm(self) -> None:
        """Under the limiter's lock, before waiting: a wake-up from now on reaches the waiter
        (a thread's event is made only now: most callers never wait)."""
        if self.loop is not None:
            self.future = self.loop.create_future()
        elif self.event is None:
            self.event = threading.Event()
        else:
            self.event.clear()

    def wake(self) -> None:
        """Raises RuntimeError if the task's loop is closed."""
        if self.event is not None:
            self.event.set()
        elif self.future is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future)


class RateLimiter:
    """When requests to one base URL with one key may go out: :meth:`acquire` / :meth:`aacquire`
    before each attempt, :meth:`observe` each answer. ``clock`` (Unix time) is for tests."""

    def __init__(self, name: str = "", *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._mode = _COLD
        self._waiters: deque[_Waiter] = deque()
        self._cold_since: float | None = None
        self._headerless = 0
        # Requests let through so far; each gets the count as its sequence number.
        self.sent = 0
        self._applied = 0  # sequence number of the newest answer applied
        # The newest answer's rate-limit headers; ``None`` until an answer carried them.
        self.state: RateLimitState | None = None
        self._pending_log: str | None = None
        self._logged_reset = 0.0
        self._limit: int | None = None
        # The server's count (a window: its answers' lowest Remaining, counted last whatever
        # their order; a bucket: the newest), less our requests in flight is what may be sent.
        self._count_left: int | None = None
        self._inflight = 0  # requests let through and not answered yet
        self._reset_at: float | None = None
        self._bucket: bool | None = None  # None until an answer with quota left tells
        self._intervals: deque[float] = deque(maxlen=32)  # bucket: next-token waits seen
        self._window = 0.0  # window: its length (see _tally)
        self._ahead = 0.0  # window: the farthest Reset ahead of an answer seen (a lower bound)
        self._step: float | None = None  # window: the smallest step between two Resets seen
        self._gate = 0.0  # nothing goes out before this (Retry-After, no quota left)
        self._last = -math.inf  # when the last request went
        # Sharing with other processes, only while the key is being exhausted.
        self._contended_until = -math.inf
        self._share = 1.0  # window: our part of the last full window's requests
        self._tally_reset: float | None = None  # window being tallied: its Reset
        self._tally_ours = self._tally_used = 0
        self._slow = 1.0  # bucket: drawn this many times slower than the refill rate
        self._ready = -math.inf  # bucket: when the local copy of its next token is due
        self._slow_mark = 0  # 429s of requests sent before this count do not slow down more

    @property
    def engaged(self) -> bool:
        """Whether the server has sent rate-limit headers (its quota is then followed)."""
        return self._mode == _ENGAGED

    def acquire(self, deadline: float | None = None) -> int | None:
        """Block until a request may be sent; its sequence number (``None``: not tracked). A
        wait past ``deadline`` (``time.monotonic()``) raises the package's timeout error."""
        if self._mode == _IDLE:
            return None
        waiter = _Waiter()
        try:
            while (delay := self._turn(waiter, deadline)) > 0 and waiter.event is not None:
                waiter.event.wait(delay)
        except BaseException:
            self._leave(waiter)
            raise
        return waiter.seq

    async def aacquire(self, deadline: float | None = None) -> int | None:
        """Async twin of :meth:`acquire`: the task waits; the thread and loop do not block."""
        if self._mode == _IDLE:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async library (trio, through anyio): not paced
            return None
        waiter = _Waiter(loop=loop)
        try:
            while (delay := self._turn(waiter, deadline)) > 0 and waiter.future is not None:
                await asyncio.wait((waiter.future,), timeout=delay)
                waiter.future = None
        except BaseException:
            self._leave(waiter)
            raise
        return waiter.seq

    def poll(self) -> float:
        """Never blocks: 0.0 if a request may go now (it then counts as sent), else the wait
        before asking again (callers already waiting go first)."""
        if self._mode == _IDLE:
            return 0.0
        with self._lock:
            delay = self._admit(self._clock()) if not self._waiters else _NOT_HEAD_POLL
        self._flush_log()
        return max(delay, 0.0)

    def observe(self, headers: Mapping[str, str], status: int, seq: int | None = None) -> None:
        """Learn from one answer's headers (``seq``: what :meth:`acquire` returned for it)."""
        if self._mode == _IDLE and not carries_rate_limit(headers):
            return
        now = self._clock()
        state = read_rate_limit(headers, now)
        with self._lock:
            if seq is not None:
                self._inflight = max(0, self._inflight - 1)
            if state is not None:
                self._update(state, status, seq, now)
            else:
                self._headerless += 1
                # A cold limiter's server does not send the headers; an engaged one stopped.
                if self._mode == _COLD or self._headerless >= _FORGET_AFTER:
                    self._mode = _IDLE
            self._wake_head()  # an answer came: the first in line looks again
        self._flush_log()

    def failed(self, seq: int | None) -> None:
        """A request let through got no answer (connection error): no longer in flight."""
        if seq is None:
            return
        with self._lock:
            self._inflight = max(0, self._inflight - 1)
            self._wake_head()  # the first in line looks again

    def __repr__(self) -> str:
        kind = {None: "unknown", True: "bucket", False: "window"}[self._bucket]
        return f"RateLimiter({self.name!r}, {self._mode}, {kind}, latest={self.state})"

    # ------------------------------------------------------------------ waiting in line

    def _turn(self, waiter: _Waiter, deadline: float | None) -> float:
        """One look at the line: 0.0 if the caller may go now (``waiter.seq`` is its number),
        else the seconds to wait, ``waiter`` armed. A wait past ``deadline`` raises instead."""
        with self._lock:
            line = self._waiters
            if line and line[0] is not waiter:  # behind another caller
                delay = _NOT_HEAD_POLL
            elif (delay := self._admit(self._clock())) <= 0 and line:  # first in line: out
                line.popleft()
                self._wake_head()
            waiter.seq = None if self._mode == _IDLE else self.sent
            if delay > 0:
                if not waiter.queued:
                    waiter.queued = True
                    line.append(waiter)
                waiter.arm()
        self._flush_log()
        if delay > 0 and deadline is not None and time.monotonic() + delay >= deadline:
            from ..errors import past_deadline  # errors imports openai: loaded by now

            raise past_deadline(f"The call (waiting {delay:.2f} s for the rate limit)")
        return delay

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter gives up (cancelled, interrupted): out of line; the next one takes over."""
        with self._lock:
            line = self._waiters
            if line and line[0] is waiter:
                line.popleft()
                self._wake_head()
            elif waiter in line:
                line.remove(waiter)

    def _wake_head(self) -> None:
        while self._waiters:
            try:
                self._waiters[0].wake()
                return
            except RuntimeError:  # its loop is closed: it will never wait again
                self._waiters.popleft()

    def _flush_log(self) -> None:
        message = self._pending_log
        if message is not None:
            self._pending_log = None
            log.info(message)

    # ------------------------------------------------------------------ deciding

    def _admit(self, now: float) -> float:
        """Under the lock: let one request through now (0.0) or say how long to wait."""
        if self._mode == _COLD:
            if self._cold_since is None:
                self._cold_since = now
            if self._inflight < COLD_START:  # (all in flight are cold ones)
                return self._take(now)
            if (wait := self._cold_since + COLD_WAIT - now) > 0:
                return wait
            self._mode = _IDLE  # no answer in time: stop holding requests back
        if self._mode == _IDLE:
            return 0.0
        if now < self._gate:
            return self._wait(now, self._gate)
        return self._bucket_turn(now) if self._bucket else self._window_turn(now)

    def _take(self, now: float) -> float:
        self.sent += 1
        self._inflight += 1
        self._last = now
        if self._bucket:  # the local copy of the server's bucket loses a token
            interval = self._interval()
            self._ready = max(self._ready, now - ((self._limit or 1) - 1) * interval) + interval
        return 0.0

    def _window_turn(self, now: float) -> float:
        """Under the lock: a window's decision. While quota is left, at once; while the key is
        shared (it ran out lately), only our part of what is left, spread over the window."""
        left, reset_at = self._count_left, self._reset_at
        if left is None or reset_at is None:
            return self._take(now)  # nothing says when a used-up quota comes back: 429s will
        if now >= reset_at + _GUARD:  # past its reset: a fresh window
            if self._bucket is None:  # or a bucket's next token, until an answer with quota
                # left tells: paced like a bucket, slower after each 429
                due = self._last + self._interval() * self._slow
                return self._take(now) if due <= now + _EPSILON else due - now
            left = self._count_left = self._limit or 1
            self._reset_at = reset_at = reset_at + self._window if self._window > 0 else now
        quota = left - self._inflight
        # Close to all of the last window's requests were ours: alone (a request sent early in
        # a window may be counted in the one before), so not sharing.
        if quota >= 1 and (self._share > 0.9 or now >= self._contended_until):
            return self._take(now)
        if quota >= 1:
            claim = self._share * left - self._inflight
            if self._last < reset_at - self._window:
                return self._take(now)  # the window's first: at least one each, to measure by
            if claim >= 1:
                due = self._last + (reset_at - self._last) / (claim + 1)
                return self._take(now) if due <= now else due - now
        # Used up (or our part of it): wait for the reset, sharing the key from now on.
        self._contended_until = now + self._hold()
        return self._wait(now, reset_at + _GUARD)

    def _bucket_turn(self, now: float) -> float:
        """Under the lock: a token bucket's decision, by a local copy of it (while the key is
        shared, also one slowed interval after our last). An answer set its count."""
        due = self._ready
        if now < self._contended_until:
            due = max(due, self._last + self._interval() * self._slow)
        return due - now if due > now + _EPSILON else self._take(now)

    def _hold(self) -> float:
        """How long sharing lasts after the quota ran out or a 429 came (seconds)."""
        return min(max(2.0, 2 * self._window, 20 * self._interval()), 2 * RESET_CAP)

    def _interval(self) -> float:
        """A bucket's seconds per token: the longest next-token wait lately seen (each is at
        most one interval); before any, a guess of Limit per second."""
        return max(self._intervals) if self._intervals else 1.0 / max(1, self._limit or 1)

    def _wait(self, now: float, until: float) -> float:
        until = min(until, now + RESET_CAP)
        if until - now >= _LOG_WAIT and until > self._logged_reset:
            self._logged_reset = until
            latest = self.state
            said = f" (limit {latest['limit']}, remaining {latest['remaining']})" if latest else ""
            self._pending_log = (
                f"Rate limit of {self.name or 'the server'} reached{said}: "
                f"waiting {until - now:.2f} s for the reset"
            )
        return until - now

    # ------------------------------------------------------------------ learning

    def _update(self, state: RateLimitState, status: int, seq: int | None, now: float) -> None:
        """Under the lock: apply one answer's headers."""
        self._mode = _ENGAGED
        self._headerless = 0
        newer = seq is None or seq >= self._applied
        if newer:
            self._applied = seq or self._applied
            self.state = state
        limit, remaining, reset_at = state["limit"], state["remaining"], state["reset_at"]
        self._limit = limit or self._limit  # a missing or 0 Limit keeps the last one
        if reset_at is not None:
            reset_at = min(reset_at, now + RESET_CAP)
        hint = state["retry_after"]
        if hint is not None and status in (429, 503):
            self._gate = max(self._gate, now + min(hint, RESET_CAP))
        if status == 429:
            self._contended_until = now + self._hold()
            if seq is None or seq > self._slow_mark:  # once per burst of 429s
                self._slow = min(self._slow * 2, _MAX_SLOWDOWN)
                self._slow_mark = self.sent
        if remaining is not None and reset_at is not None:
            ahead = reset_at - now
            if remaining > 0:
                self._bucket = ahead <= _BUCKET_TOLERANCE
            elif self._bucket is None and self._reset_at is not None:
                # Two used-up answers name Resets closer together than a Reset was ever
                # ahead: a window's answers all name its one Reset, a bucket's its next token.
                step = abs(reset_at - self._reset_at)
                if 1e-3 < step < max(self._ahead, ahead) - 1e-3:
                    self._bucket = True
            if self._bucket:
                self._steer(remaining, ahead, status, newer, now)
            else:
                self._tally(remaining, reset_at, ahead, status)
            if remaining == 0:  # used up: from now on the key is shared
                self._contended_until = now + self._hold()
            self._count(remaining, reset_at, now)

    def _count(self, remaining: int, reset_at: float, now: float) -> None:
        """Under the lock: the server's count of what is left (see ``_count_left``)."""
        current = self._reset_at
        if not self._bucket and current is not None and self._count_left is not None:
            if reset_at < current - 1e-3:
                return  # an answer from an earlier window
            if reset_at < current + 1e-3 and remaining >= self._count_left:
                return  # the same window, counted before the lowest count already seen
        self._count_left, self._reset_at = remaining, reset_at
        if self._bucket:  # a local copy of the server's bucket, requests in flight taken out
            interval = self._interval()
            if remaining == 0:
                # Other processes were told the same time: go at a random point of our share
                # of the next intervals rather than all at once.
                spread = random.random() * (self._slow - 1.0) * interval
                self._ready = reset_at + self._inflight * interval + spread
            else:
                self._ready = now - (remaining - 1 - self._inflight) * interval

    def _tally(self, remaining: int, reset_at: float, ahead: float, status: int) -> None:
        """A window: its length (the smallest step between Resets, at least the farthest one
        was ahead) and our part of each window's requests (others use the same key)."""
        self._ahead = max(self._ahead, ahead)
        tallied = self._tally_reset
        if tallied is not None and reset_at - tallied > 1e-3:
            self._step = min(self._step or math.inf, reset_at - tallied)
        self._window = max(self._step or 0.0, self._ahead)
        if tallied is None or reset_at > tallied + 1e-3:  # a newer window: start counting it
            self._tally_reset, self._tally_ours, self._tally_used = reset_at, 0, 0
        elif reset_at < tallied - 1e-3:
            return  # an earlier window's answer
        if status < 400:
            self._tally_ours += 1
        self._tally_used = max(self._tally_used, (self._limit or remaining) - remaining)
        if self._tally_used > 0 and self._tally_ours > 0:  # every answer refines the estimate
            sample = min(1.0, self._tally_ours / self._tally_used)
            self._share = 0.8 * self._share + 0.2 * sample

    def _steer(self, remaining: int, ahead: float, status: int, newer: bool, now: float) -> None:
        """A bucket: learn the refill interval; while shared, steer by its level."""
        if remaining == 0 and ahead > 0:
            self._intervals.append(ahead)
        if not newer or status >= 400:
            return
        limit = self._limit or 1
        if now >= self._contended_until:
            self._slow = 1.0
            return
        if 4 * remaining < 3 * limit:  # not refilled: the key is still being drawn down
            self._contended_until = now + self._hold()
        if 4 * remaining < limit:  # under a quarter left: slower, before anything is refused
            self._slow = min(self._slow * 1.05, _MAX_SLOWDOWN)
        elif 2 * remaining > limit and self._slow > 1.0:  # over half: faster again
            self._slow = max(1.0, 1.0 / (1.0 / self._slow + 0.01))


# ---------------------------------------------------------------------------- the registry

# One limiter per base URL and key in this process (``setdefault`` keeps it one without a lock).
_limiters: dict[tuple[str, str], RateLimiter] = {}


def reset_limiters() -> None:
    """Forget every limiter of this process (for tests; clients find new ones on next use)."""
    _limiters.clear()


if hasattr(os, "register_at_fork"):  # a forked child starts with none (not on Windows)
    os.register_at_fork(after_in_child=reset_limiters)


@functools.lru_cache(maxsize=64)
def limiter_key(base_url: str, api_key: str | None) -> tuple[str, str]:
    """The registry key for a base URL and key (the key itself is kept only as a digest)."""
    secret = "" if api_key in (None, "", NO_KEY) else str(api_key)
    digest = hashlib.sha256(secret.encode()).hexdigest()[:32]
    return (str(base_url).rstrip("/"), digest)


def limiter_for(settings: ClientSettings) -> RateLimiter:
    """This process's limiter for the settings' base URL and key, made on first use."""
    key = limiter_key(settings.base_url, settings.secret)
    return _limiters.get(key) or _limiters.setdefault(key, RateLimiter(key[0]))


def rate_limit_state(settings: ClientSettings) -> RateLimitState | None:
    """What the server last said about the rate limit for these settings' base URL and key;
    ``None`` until an answer in this process carried ``X-RateLimit-*`` headers."""
    found = _limiters.get(limiter_key(settings.base_url, settings.secret))
    return found.state if found is not None else None


__all__ = ["RateLimitState", "RateLimiter", "limiter_for", "rate_limit_state", "reset_limiters"]
