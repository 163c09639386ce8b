"""Pacing requests by the server's own ``X-RateLimit-*`` headers, per base URL and key.

Runcrate answers every request with ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (a Unix time). Every client of this package reads them on every answer
(success, error or stream) and, before each attempt (retries included), asks the process's
:class:`RateLimiter` for that base URL and key when it may send. One limiter serves every sync
and async client, every thread and every event loop of the process; a forked child starts with
none. Processes do not talk to each other: each follows what the server says.

Runcrate does not document which limiter it runs, so the limiter tells the two usual kinds apart
from the headers themselves:

* **fixed windows**: ``Reset`` stays put while ``Remaining`` counts down (the window's end).
  The limiter keeps the window's budget (``Remaining`` minus what it sent since) and spreads its
  part of it over the time left; once it is spent, callers wait for ``Reset`` and are let
  through one at a time, spread over the next window. Its part: the share of each window's
  requests that were its own (other processes using the same key take the rest).
* **token bucket**: ``Reset`` is "now" while tokens remain and, once ``Remaining`` is 0, the
  time of the next token. The limiter never sends before the next token is due, paces at the
  refill interval it learns from those resets, and steers by the level the server reports:
  slower while under a quarter of the limit is left, faster again while over half is. Every
  process sees the same level, so together they settle at the server's rate without emptying
  the bucket.

A 429 halves a bucket's pace (once per burst of 429s); in a window it ends the budget. Waits
hold no lock (threads wait on an event, tasks on a future; only the first in line watches the
clock); a cancelled waiter takes nothing with it. When a server sends none of the headers the
limiter never engages: after the first answer it costs an attribute check and a header lookup
per request. Before that first answer only a few requests go out
(:data:`~runcrate_integrations.settings.RATE_LIMIT_COLD_START`); the rest wait for it, at most
:data:`~runcrate_integrations.settings.RATE_LIMIT_COLD_WAIT` seconds.
Waiting for a reset of a second or more is logged at INFO, once per reset.

:func:`rate_limit_state` shows what the server said last::

    state = rate_limit_state(ClientSettings.resolve(api_key="rc_live_..."))
    if state is not None:
        print(state.remaining, "of", state.limit, "left until", state.reset_at)
"""

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
from typing import TYPE_CHECKING

from .settings import (
    RATE_LIMIT_COLD_START,
    RATE_LIMIT_COLD_WAIT,
    RATE_LIMIT_GUARD,
    RATE_LIMIT_LOG_WAIT,
    RATE_LIMIT_MAX_SLOWDOWN,
    RATE_LIMIT_RESET_CAP,
)

if TYPE_CHECKING:
    from .clients import ClientSettings

log = logging.getLogger(__name__)

# The placeholder key a keyless client is given (see clients._NO_KEY): the same limiter.
_NO_KEY = "no-key"
# A Reset this close to "now" while Remaining > 0 is a token bucket's (seconds).
_BUCKET_TOLERANCE = 0.01
# No window is taken to be shorter than this (seconds).
_MIN_WINDOW = 0.05
# Two Resets closer than this are the same window.
_SAME_RESET = 1e-3
# Values of X-RateLimit-Reset below this are seconds from now, not a Unix time.
_UNIX_TIME_FLOOR = 1e9
# A bucket's interval is the longest "next token in" of the latest answers with Remaining 0.
_INTERVAL_SAMPLES = 32
# Before any such answer, the interval is guessed (Limit per second); while the bucket stays
# at least half full and callers wait, the guess shrinks by this factor per answer.
_PROBE_FASTER = 0.8
# A bucket's pace is steered by how full the server says it is. While under a quarter of the
# limit is left, each answer makes the sending rate smaller by this factor; while over half is
# left (and callers wait), each answer adds _STEER_UP of the full rate back. Processes sharing
# a key all see the same level: together they settle at the server's rate, each at an equal
# part (cut in proportion, grown by equal steps), and the bucket never runs dry.
_STEER_DOWN = 1.05
_STEER_UP = 0.01
# Consecutive answers without the headers after which an engaged limiter lets go.
_FORGET_AFTER = 50
# A waiter that is not first in line re-checks this often (it is normally woken sooner).
_NOT_HEAD_POLL = 1.0

_COLD, _IDLE, _ENGAGED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """What the server said about the rate limit in its latest answer.

    ``limit`` and ``remaining`` are ``X-RateLimit-Limit`` / ``-Remaining`` (``None`` when an
    answer left them out), ``reset_at`` is ``X-RateLimit-Reset`` as a Unix time, and
    ``observed_at`` the Unix time the answer arrived.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None
    observed_at: float


class _Waiter:
    """One caller waiting for its turn: a thread (``event``) or an asyncio task (``loop``)."""

    __slots__ = ("event", "future", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.event = event
        self.loop = loop
        self.future: asyncio.Future[None] | None = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    return _number(headers.get("retry-after"))  # the HTTP-date form is left to the retry path


class RateLimiter:
    """Decides when requests to one base URL with one key may go out, in one process.

    Clients call :meth:`acquire` / :meth:`aacquire` before each attempt and :meth:`observe`
    with each answer's headers. ``clock`` (Unix time) is replaceable for tests; everything
    here is decided under one ``threading.Lock``, never held while waiting.
    """

    def __init__(self, name: str = "", *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = _COLD
        self._waiters: deque[_Waiter] = deque()
        self._cold_inflight = 0
        self._cold_since: float | None = None
        self._headerless = 0
        self._sent = 0  # requests let through; each gets the count as its sequence number
        self._seq_out: int | None = None
        self._applied = 0  # sequence number of the newest answer applied
        self._latest: RateLimitState | None = None
        self._pending_log: str | None = None
        self._logged_reset = 0.0
        # What has been learned about the server's limiter.
        self._limit: int | None = None
        self._score = 0.0  # > 0: fixed windows, < 0: token bucket, 0: not known yet
        self._prev: tuple[float, float] | None = None  # (arrived, reset) of the last Remaining>0
        self._window_lb = 0.0  # the window is at least this long (Reset - now, at most)
        self._window_jump = math.inf  # the smallest step between two windows' Resets
        self._last_reset = -math.inf  # the latest window end the server named
        self._samples: deque[float] = deque(maxlen=_INTERVAL_SAMPLES)  # bucket: next-token waits
        self._probe = 1.0  # bucket: how much faster than Limit per second, before any sample
        self._slow = 1.0  # slowdown after 429s, >= 1
        self._slow_mark = 0  # 429s of requests sent before this count do not slow down more
        # The mirror of the server's state, and the pacing.
        self._gate = 0.0  # nothing goes out before this (Retry-After, Remaining = 0)
        self._end = -math.inf  # window: end of the current window
        self._start = -math.inf  # window: its start
        self._left = 0  # window: requests left in it, after ours
        self._claim = 0.0  # window: our share of them (other processes use the same window)
        self._share = 1.0  # window: the part of each window's requests that have been ours
        self._window_ours = 0  # window: our requests the server counted in the latest one
        self._ready = -math.inf  # bucket: when the next request conforms
        self._last = -math.inf  # when the last request was let through
        self._held_at = -math.inf  # when a request last had to wait

    # ------------------------------------------------------------------ public

    @property
    def state(self) -> RateLimitState | None:
        """The latest answer's headers; ``None`` until an answer carried them."""
        return self._latest

    @property
    def sent(self) -> int:
        """Requests let through and counted so far (the last one's sequence number)."""
        return self._sent

    @property
    def engaged(self) -> bool:
        """Whether the server has sent rate-limit headers (requests are then paced)."""
        return self._state == _ENGAGED

    def acquire(self) -> int | None:
        """Block until a request may be sent; its sequence number (``None``: not tracked)."""
        if self._state == _IDLE:
            return None
        event = threading.Event()
        waiter = _Waiter(event=event)
        admitted, seq = self._enter(waiter)
        if admitted:
            return seq
        try:
            while True:
                admitted, delay, seq = self._next_turn(waiter, event.clear)
                if admitted:
                    return seq
                event.wait(delay)
        except BaseException:
            self._leave(waiter)
            raise

    def _enter(self, waiter: _Waiter) -> tuple[bool, int | None]:
        """Go now if nobody waits and the pace allows (``(True, seq)``), else join the line."""
        with self._lock:
            admitted = not self._waiters and self._admit(self._clock()) <= 0
            seq = self._seq_out
            if not admitted:
                self._waiters.append(waiter)
        self._flush_log()
        return admitted, seq

    def _next_turn(
        self, waiter: _Waiter, arm: Callable[[], object]
    ) -> tuple[bool, float, int | None]:
        """One look at the line for a waiting caller: ``(admitted, seconds to wait, seq)``.
        Not admitted, ``arm`` runs under the lock, so a wake-up from now on reaches it."""
        with self._lock:
            admitted, delay = self._turn(waiter)
            seq = self._seq_out
            if not admitted:
                arm()
        self._flush_log()
        return admitted, delay, seq

    async def aacquire(self) -> int | None:
        """Async twin of :meth:`acquire`: the task waits; the thread and loop do not block."""
        if self._state == _IDLE:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async library (trio, through anyio): not paced
            return None
        waiter = _Waiter(loop=loop)
        admitted, seq = self._enter(waiter)
        if admitted:
            return seq
        def arm() -> None:  # under the lock: what a wake-up resolves
            waiter.future = loop.create_future()

        try:
            while True:
                admitted, delay, seq = self._next_turn(waiter, arm)
                future = waiter.future
                if admitted or future is None:
                    return seq
                timer = loop.call_later(delay, _resolve, future)
                try:
                    await future
                finally:
                    timer.cancel()
                    waiter.future = None
        except BaseException:
            self._leave(waiter)
            raise

    def poll(self) -> float:
        """Never blocks: 0.0 if a request may go now (it then counts as sent), else the
        seconds to wait before asking again (callers already waiting go first)."""
        if self._state == _IDLE:
            return 0.0
        with self._lock:
            delay = self._admit(self._clock()) if not self._waiters else 0.01
        self._flush_log()
        return max(delay, 0.0)

    def observe(self, headers: Mapping[str, str], status: int, seq: int | None = None) -> None:
        """Learn from one answer's headers (``seq``: what :meth:`acquire` returned for it)."""
        if (
            "x-ratelimit-reset" not in headers
            and "x-ratelimit-remaining" not in headers
            and "x-ratelimit-limit" not in headers
        ):
            if self._state != _IDLE:
                self._headerless_answer(seq)
            return
        reset = headers.get("x-ratelimit-reset")
        remaining = headers.get("x-ratelimit-remaining")
        limit = headers.get("x-ratelimit-limit")
        now = self._clock()
        reset_at = _number(reset)
        if reset_at is not None and reset_at < _UNIX_TIME_FLOOR:
            reset_at += now  # seconds from now, as some servers send it
        left = _number(remaining)
        most = _number(limit)
        hint = _retry_after(headers) if status in (429, 503) else None
        with self._lock:
            self._update(
                now,
                int(most) if most is not None else None,
                int(left) if left is not None else None,
                reset_at,
                status,
                seq,
                hint,
            )
        self._flush_log()

    def failed(self, seq: int | None) -> None:
        """A request let through got no answer (connection error): frees a cold-start slot."""
        if self._state != _COLD or seq is None:
            return
        with self._lock:
            if self._state == _COLD and self._cold_inflight > 0:
                self._cold_inflight -= 1
                self._wake_head()

    def __repr__(self) -> str:
        state = {_COLD: "cold", _IDLE: "idle", _ENGAGED: "engaged"}[self._state]
        mode = "window" if self._score > 0 else "bucket" if self._score < 0 else "unknown"
        return f"RateLimiter({self.name!r}, {state}, mode={mode}, latest={self._latest})"

    # ------------------------------------------------------------------ waiting

    def _turn(self, waiter: _Waiter) -> tuple[bool, float]:
        """Under the lock: admit ``waiter`` if it is first in line and may go now."""
        if self._waiters[0] is not waiter:
            return False, _NOT_HEAD_POLL
        delay = self._admit(self._clock())
        if delay > 0:
            return False, delay
        self._waiters.popleft()
        self._wake_head()
        return True, 0.0

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter gives up (cancelled, interrupted): out of line; the next one takes over."""
        with self._lock:
            was_head = bool(self._waiters) and self._waiters[0] is waiter
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return
            if was_head:
                self._wake_head()

    def _wake_head(self) -> None:
        if not self._waiters:
            return
        head = self._waiters[0]
        if head.event is not None:
            head.event.set()
            return
        future, loop = head.future, head.loop
        if future is not None and loop is not None:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: it will never wait again
                self._waiters.popleft()
                self._wake_head()

    def _flush_log(self) -> None:
        message = self._pending_log
        if message is not None:
            self._pending_log = None
            log.info(message)

    # ------------------------------------------------------------------ deciding

    def _admit(self, now: float) -> float:
        """Under the lock: let one request through now (0.0) or say how long to wait."""
        state = self._state
        if state == _IDLE:
            self._seq_out = None
            return 0.0
        if state == _COLD:
            if self._cold_since is None:
                self._cold_since = now
            if self._cold_inflight < RATE_LIMIT_COLD_START:
                self._cold_inflight += 1
                return self._take(now)
            wait = self._cold_since + RATE_LIMIT_COLD_WAIT - now
            if wait > 0:
                return wait
            self._state = _IDLE  # no answer in time: stop holding requests back
            self._seq_out = None
            return 0.0
        at = self._earliest(now)
        if at > now:
            self._held_at = now
            return at - now
        return self._take(now)

    def _take(self, now: float) -> float:
        self._sent += 1
        self._seq_out = self._sent
        self._last = now
        self._left -= 1
        self._claim -= 1
        interval = self._bucket_interval()
        self._ready = max(self._ready, now - (self._limit_or_one() - 1) * interval) + interval
        return 0.0

    def _limit_or_one(self) -> int:
        return max(1, self._limit or 1)

    def _bucket_interval(self) -> float:
        if self._samples:
            return max(self._samples)
        # Before a Remaining = 0 has shown the refill rate: a guess, Limit per second.
        return self._probe / self._limit_or_one()

    def _window(self) -> float:
        width = self._window_jump
        if math.isinf(width) or width < self._window_lb:
            width = self._window_lb
        return min(max(width, _MIN_WINDOW), RATE_LIMIT_RESET_CAP) if width > 0 else 1.0

    def _earliest(self, now: float) -> float:
        """Under the lock: the earliest time the next request may go (engaged)."""
        at = max(now, self._gate)
        reason_reset = at > now
        if self._score > 0:  # fixed windows
            if now >= self._end + RATE_LIMIT_GUARD and not math.isinf(self._end):
                width = self._window()
                steps = math.floor((now - self._end) / width) + 1
                self._start = self._end + (steps - 1) * width
                self._end += steps * width
                self._left = self._limit_or_one()
                # At least one: without requests of its own, the share would never be re-measured.
                self._claim = max(1.0, self._fair_share() * self._left)
            if self._left < 1 or self._claim < 1 - 1e-9:
                if self._end + RATE_LIMIT_GUARD > at:
                    at = self._end + RATE_LIMIT_GUARD
                    reason_reset = reason_reset or self._left < 1
            elif self._last >= self._start:  # spread our part over what remains of the window
                spacing = (self._end - self._last) / (self._claim + 1)
                at = max(at, self._last + spacing)
        elif self._score < 0:  # token bucket
            interval = self._bucket_interval()
            at = max(at, self._ready, self._last + interval * self._slow)
        if reason_reset and at - now >= RATE_LIMIT_LOG_WAIT and at > self._logged_reset:
            self._logged_reset = at
            latest = self._latest
            said = (
                f" (limit {latest.limit}, remaining {latest.remaining})"
                if latest is not None
                else ""
            )
            self._pending_log = (
                f"Rate limit of {self.name or 'the server'} reached{said}: "
                f"waiting {at - now:.2f} s for the reset"
            )
        return at

    # ------------------------------------------------------------------ learning

    def _headerless_answer(self, seq: int | None) -> None:
        if self._state == _COLD:
            with self._lock:
                if self._state == _COLD:
                    self._state = _IDLE  # this server does not send the headers
                    self._wake_head()
            return
        self._headerless += 1  # racy on purpose: an approximate count is enough
        if self._headerless >= _FORGET_AFTER:
            with self._lock:
                if self._headerless >= _FORGET_AFTER and self._state == _ENGAGED:
                    self._state = _IDLE
                    self._wake_head()

    def _update(
        self,
        now: float,
        limit: int | None,
        remaining: int | None,
        reset_at: float | None,
        status: int,
        seq: int | None,
        hint: float | None,
    ) -> None:
        """Under the lock: apply one answer's headers."""
        self._state = _ENGAGED
        self._headerless = 0
        newer = seq is None or seq >= self._applied
        if newer:
            if seq is not None:
                self._applied = seq
            self._latest = RateLimitState(limit, remaining, reset_at, now)
        if reset_at is not None:
            reset_at = min(reset_at, now + RATE_LIMIT_RESET_CAP)
        after = self._sent - seq if seq is not None else 0  # ours sent since this one
        if limit is not None and limit > 0:
            self._limit = limit
        self._slow_down(status, seq)
        if hint is not None and hint > 0:
            self._gate = max(self._gate, now + min(hint, RATE_LIMIT_RESET_CAP))
        if remaining is not None and reset_at is not None:
            if remaining == 0 and newer:
                self._gate = max(self._gate, reset_at)
            self._learn_mode(now, remaining, reset_at)
            if self._score > 0:
                self._update_window(now, remaining, reset_at, after, newer, status)
            elif self._score < 0:
                self._update_bucket(now, remaining, reset_at, after, newer, status)
        self._wake_head()

    def _slow_down(self, status: int, seq: int | None) -> None:
        if status == 429 and (seq is None or seq > self._slow_mark):
            self._slow = min(self._slow * 2, RATE_LIMIT_MAX_SLOWDOWN)
            self._slow_mark = self._sent  # answers to requests already out: the same event

    def _learn_mode(self, now: float, remaining: int, reset_at: float) -> None:
        if remaining < 1:
            return  # both kinds name the next allowed time then
        prev, self._prev = self._prev, (now, reset_at)
        # Ahead of the clock while requests remain: a window's end; at "now": a bucket's.
        vote = 1.0 if reset_at - now > _BUCKET_TOLERANCE else -1.0
        if vote > 0 and prev is not None and now - prev[0] > 0.002:
            elapsed, moved = now - prev[0], reset_at - prev[1]
            if abs(moved) >= _SAME_RESET and abs(moved - elapsed) <= 0.25 * elapsed + 0.002:
                vote = -1.0  # ahead, but moving with the clock: a bucket on a server clock ahead
        self._score = vote if self._score == 0 else 0.75 * self._score + 0.25 * vote
        if self._score == 0:
            self._score = vote

    def _held(self, now: float) -> bool:
        """Whether a request had to wait for the limiter lately: pacing is what limits us."""
        return now - self._held_at < 1.0

    def _fair_share(self) -> float:
        # Close to all of it: this process is alone (a request early in a window sometimes
        # lands in the one before, which makes a lone process look like 95 % of the traffic).
        return 1.0 if self._share > 0.9 else self._share

    def _update_window(
        self, now: float, remaining: int, reset_at: float, after: int, newer: bool, status: int
    ) -> None:
        if reset_at - now > 0:
            self._window_lb = max(self._window_lb, reset_at - now)
        if reset_at > self._last_reset + _SAME_RESET:  # the newest window the server named
            if not math.isinf(self._last_reset):
                self._window_jump = min(self._window_jump, reset_at - self._last_reset)
            self._last_reset = reset_at
            self._window_ours = 0
            self._end = reset_at
            self._start = reset_at - self._window()
        elif abs(reset_at - self._last_reset) >= _SAME_RESET:
            return  # an earlier window
        if status < 400:
            self._window_ours += 1
        if not (newer and abs(self._end - reset_at) < _SAME_RESET):
            return  # older news, or the mirror has moved on to the next window
        consumed = self._limit_or_one() - remaining
        if consumed > 0 and self._window_ours > 0:
            # How much of this window's traffic is ours: other processes share the key.
            sample = min(1.0, self._window_ours / consumed)
            self._share = 0.8 * self._share + 0.2 * sample
        self._left = remaining - after
        self._claim = self._fair_share() * remaining - after

    def _update_bucket(
        self, now: float, remaining: int, reset_at: float, after: int, newer: bool, status: int
    ) -> None:
        if newer and status < 400:
            most = self._limit_or_one()
            if 4 * remaining < most:
                self._slow = min(self._slow * _STEER_DOWN, RATE_LIMIT_MAX_SLOWDOWN)
            elif 2 * remaining > most and self._held(now) and self._slow > 1.0:
                self._slow = max(1.0, 1.0 / (1.0 / self._slow + _STEER_UP))
        if remaining == 0:
            sample = reset_at - now
            if sample > 0:
                self._samples.append(sample)
            if newer:
                interval = self._bucket_interval()
                # Other processes (a slowdown says so) were told the same time: go at a random
                # point of our share of the next intervals rather than all at once.
                spread = random.random() * (self._slow - 1.0) * interval
                self._ready = reset_at + after * interval + spread
            return
        interval = self._bucket_interval()
        if newer:
            self._ready = now - (remaining - 1 - after) * interval
        if 2 * remaining >= self._limit_or_one() and self._held(now) and not self._samples:
            self._probe = max(0.01, self._probe * _PROBE_FASTER)  # too slow a guess: faster


# ---------------------------------------------------------------------------- the registry


class _Registry:
    __slots__ = ("limiters", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.limiters: dict[tuple[str, str], RateLimiter] = {}


_registry = _Registry()


def _after_fork_in_child() -> None:
    global _registry
    _registry = _Registry()  # the parent's waiters and locks mean nothing here


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=64)
def limiter_key(base_url: str, api_key: str | None) -> tuple[str, str]:
    """The registry key for a base URL and key (the key itself is kept only as a digest;
    memoised: it is looked up after every answer)."""
    secret = "" if api_key in (None, "", _NO_KEY) else str(api_key)
    digest = hashlib.sha256(secret.encode()).hexdigest()[:32]
    return (str(base_url).rstrip("/"), digest)


def limiter(key: tuple[str, str]) -> RateLimiter:
    """This process's limiter for ``key`` (see :func:`limiter_key`), made on first use."""
    registry = _registry
    found = registry.limiters.get(key)
    if found is None:
        with registry.lock:
            found = registry.limiters.get(key)
            if found is None:
                found = registry.limiters[key] = RateLimiter(key[0])
    return found


def rate_limit_state(settings: ClientSettings) -> RateLimitState | None:
    """What the server last said about the rate limit for these settings' base URL and key.

    ``None`` until an answer in this process carried ``X-RateLimit-*`` headers.
    """
    found = _registry.limiters.get(limiter_key(settings.base_url, settings.secret))
    return found.state if found is not None else None


def reset_limiters() -> None:
    """Forget every limiter of this process (for tests; clients find new ones on next use)."""
    global _registry
    _registry = _Registry()


__all__ = ["RateLimitState", "RateLimiter", "limiter", "limiter_key", "rate_limit_state"]
