"""``runcrate_integrations.net.ratelimit``: the limiter's decisions (on a fake clock), its waits
(threads and tasks on a real one) and the per-process registry.

The rule under test: while the server's headers (less this process's own requests since) say
quota is left, a request goes at once; once it is used up, callers wait for the reset.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time

import httpx2
import pytest

from runcrate_integrations import errors
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net import ratelimit
from runcrate_integrations.net.ratelimit import (
    COLD_START,
    COLD_WAIT,
    RESET_CAP,
    RateLimiter,
    RateLimitState,
    rate_limit_state,
)
from tests.helpers import until

GUARD = ratelimit._GUARD

T0 = 1_800_000_000.0


class Clock:
    """A Unix-time clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def headers(
    limit: int | None, remaining: int | None, reset: float | None, **extra: str
) -> httpx2.Headers:
    values = {
        "X-RateLimit-Limit": limit,
        "X-RateLimit-Remaining": remaining,
        "X-RateLimit-Reset": None if reset is None else f"{reset:.3f}",
    }
    sent = {k: str(v) for k, v in values.items() if v is not None}
    return httpx2.Headers({**sent, **extra})


def engaged(clock: Clock, limit: int, remaining: int, reset: float) -> RateLimiter:
    """A limiter that sent one request (cold start) and saw its answer."""
    lim = RateLimiter("http://x/v1", clock=clock)
    assert lim.poll() == 0.0
    lim.observe(headers(limit, remaining, reset), 200, lim.sent)
    return lim


def at_once(lim: RateLimiter) -> int:
    """How many requests the limiter lets through now, without the clock moving."""
    count = 0
    while lim.poll() == 0.0 and count < 1000:
        count += 1
    return count


def advance_until_admitted(lim: RateLimiter, clock: Clock) -> float:
    """Move the clock as the limiter says until it lets one request through: the time taken."""
    start = clock.now
    while (wait := lim.poll()) > 0:
        clock.advance(wait)
    return clock.now - start


def state(
    limit: int | None,
    remaining: int | None,
    reset_at: float | None,
    observed_at: float,
    retry_after: float | None = None,
) -> RateLimitState:
    return RateLimitState(
        limit=limit,
        remaining=remaining,
        reset_at=reset_at,
        retry_after=retry_after,
        observed_at=observed_at,
    )


# ---------------------------------------------------------------------- no headers


def test_a_server_without_headers_never_engages_it() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    for _ in range(COLD_START):
        assert lim.poll() == 0.0
    # Until the first answer shows whether the server sends the headers, the rest wait.
    assert 0 < lim.poll() <= COLD_WAIT
    lim.observe(httpx2.Headers({"content-type": "application/json"}), 200, 1)
    assert lim.state is None and not lim.engaged
    assert lim.poll() == 0.0
    assert lim.acquire() is None


def test_the_idle_path_takes_no_lock_and_reads_no_clock() -> None:
    lim = RateLimiter(clock=Clock())
    lim.observe(httpx2.Headers({}), 200, None)  # the first answer: no headers

    class Forbidden:
        def __enter__(self) -> None:
            raise AssertionError("lock taken")

        def __exit__(self, *exc: object) -> None:
            return None

    def no_clock() -> float:
        raise AssertionError("clock read")

    lim._lock = Forbidden()  # type: ignore[assignment]  # proves it is never entered
    lim._clock = no_clock
    for _ in range(100):
        assert lim.acquire() is None
        lim.observe(httpx2.Headers({"content-type": "application/json"}), 200, None)
    assert lim.state is None


async def test_the_idle_async_path_is_the_same() -> None:
    lim = RateLimiter(clock=Clock())
    lim.observe(httpx2.Headers({}), 200, None)
    assert await lim.aacquire() is None


def test_a_slow_first_answer_holds_the_others_back_only_so_long() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    for _ in range(COLD_START):
        assert lim.poll() == 0.0
    assert lim.poll() > 0
    clock.advance(COLD_WAIT)
    assert lim.poll() == 0.0
    assert lim.poll() == 0.0  # gave up waiting: requests go unpaced until headers show up


# ---------------------------------------------------------------------- fixed windows


def test_sequential_calls_with_quota_left_never_wait() -> None:
    # Runcrate's documented form: 60 a minute, Reset a Unix time at the window's end.
    clock = Clock()
    lim = engaged(clock, limit=60, remaining=59, reset=T0 + 45)
    for i in range(20):
        clock.advance(0.5)  # one call after another, each answered before the next
        assert lim.poll() == 0.0
        lim.observe(headers(60, 58 - i, T0 + 45), 200, lim.sent)


def test_a_burst_within_the_quota_goes_out_together() -> None:
    clock = Clock()
    lim = engaged(clock, limit=60, remaining=59, reset=T0 + 45)
    assert at_once(lim) == 59  # 30, or all that is left, with no answer in between


def answer_all(
    lim: RateLimiter,
    clock: Clock,
    limit: int,
    reset: float,
    first: int,
    order: list[int] | None = None,
) -> None:
    """The answers to the requests in flight, the server counting them in sequence order
    (``order``: the order they arrive in, default the same)."""
    seqs = list(range(first, lim.sent + 1))
    remaining = {seq: max(0, limit - 1 - (seq - first + 1)) for seq in seqs}
    for seq in order if order is not None else seqs:
        lim.observe(headers(limit, remaining[seq], reset), 200, seq)


def test_once_the_quota_is_used_up_callers_wait_for_the_reset() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0 + 1.0)
    assert at_once(lim) == 4
    answer_all(lim, clock, 5, T0 + 1.0, first=2)
    wait = lim.poll()
    assert wait == pytest.approx(1.0 + GUARD, abs=1e-6)
    clock.advance(wait)
    assert at_once(lim) == 5  # the next window: all of it, at once (this process is alone)


@pytest.mark.parametrize("reset", ["unix", "seconds"])
def test_reset_as_a_unix_time_or_seconds_from_now(reset: str) -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    assert lim.poll() == 0.0
    value = f"{T0 + 30:.3f}" if reset == "unix" else "30"
    lim.observe(
        httpx2.Headers(
            {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": value}
        ),
        200,
        lim.sent,
    )
    assert lim.state == state(2, 1, T0 + 30, T0)
    assert at_once(lim) == 1
    assert lim.poll() == pytest.approx(30 + GUARD)


def test_the_server_count_wins_over_the_local_one() -> None:
    clock = Clock()
    lim = engaged(clock, limit=20, remaining=19, reset=T0 + 1.0)
    clock.advance(0.1)
    lim.observe(headers(20, 0, T0 + 1.0), 200, None)  # someone else used the window up
    assert lim.poll() == pytest.approx(0.9 + GUARD, abs=1e-6)


def test_an_answer_from_an_earlier_window_does_not_bring_it_back() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0 + 1.0)
    assert at_once(lim) == 4
    late = lim.sent  # its answer will arrive after the reset
    answer_all(lim, clock, 5, T0 + 1.0, first=2, order=[2, 3, 4])
    clock.advance(lim.poll())
    assert at_once(lim) == 4  # the next window's 5, less the one that may yet land in it
    lim.observe(headers(5, 0, T0 + 1.0), 200, late)  # late news of the last window
    assert at_once(lim) == 1  # it was counted there: one more, and this window's 5 are spent
    assert lim.poll() > 0


def test_answers_out_of_order_never_let_more_through_than_is_left() -> None:
    # 20 a window, 19 left; a burst of 19 goes out from many threads, which reach the server
    # in another order than they were let through: the newest request may be counted first,
    # and its answer (18 left) arrive first. Nothing more may go until the window resets.
    for arrival in ("as counted", "reversed"):
        clock = Clock()
        lim = engaged(clock, limit=20, remaining=19, reset=T0 + 1.0)
        assert at_once(lim) == 19
        counted = list(range(20, 1, -1))  # seq 20 first, seq 2 last
        left = {seq: 18 - i for i, seq in enumerate(counted)}
        order = counted if arrival == "as counted" else counted[::-1]
        for i, seq in enumerate(order):
            lim.observe(headers(20, left[seq], T0 + 1.0), 200, seq)
            assert at_once(lim) == 0, f"{arrival}: after {i + 1} answers"
        assert lim.poll() == pytest.approx(1.0 + GUARD)  # all spent: wait for the reset


def _share_a_window(lim: RateLimiter, reset: float, used: int, others_per_ours: int) -> None:
    """Our requests of one window, each answered with others' requests counted too."""
    while lim.poll() == 0.0:
        used += 1 + others_per_ours
        lim.observe(headers(40, max(0, 40 - used), reset), 200 if used <= 40 else 429, lim.sent)


def test_other_processes_are_shared_with_only_once_the_quota_runs_out() -> None:
    clock = Clock()
    lim = engaged(clock, limit=40, remaining=37, reset=T0 + 1.0)  # 1 of ours, 2 of others'
    _share_a_window(lim, T0 + 1.0, used=3, others_per_ours=3)  # runs out: now it is shared
    clock.advance(lim.poll())
    assert 0.25 < lim._share < 0.35  # moving towards the 1 in 4 the window showed
    # The next window: our part of it, spread over the window so that the other processes see
    # the count fall; none more until the next reset.
    claim = math.floor(lim._share * 40)
    assert at_once(lim) == 1
    gaps = []
    while (gap := advance_until_admitted(lim, clock)) and clock.now < T0 + 2.0:
        gaps.append(gap)
    assert len(gaps) == claim - 1  # the rest of our part, about evenly spaced
    assert all(0.03 < g < 0.2 for g in gaps), gaps


def test_a_measured_share_is_not_applied_while_quota_is_plentiful() -> None:
    clock = Clock()
    lim = engaged(clock, limit=40, remaining=36, reset=T0 + 1.0)
    lim._share = 0.25  # others were seen in the past, but nothing ran out lately
    clock.advance(1.0 + GUARD)
    assert at_once(lim) == 40


# ---------------------------------------------------------------------- token bucket


def test_a_bucket_goes_at_once_while_tokens_remain_then_at_the_refill_rate() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0)  # Reset is "now" while tokens remain
    assert "bucket" in repr(lim)
    assert at_once(lim) == 4
    first = lim.sent - 3
    for seq, ahead in zip(range(first, first + 4), (0.02, 0.04, 0.03, 0.05), strict=True):
        lim.observe(headers(5, 0, T0 + ahead), 200, seq)  # no token until then
    # It ran dry: one request per refill interval (a little slower while it stays low).
    for _ in range(5):
        took = advance_until_admitted(lim, clock)
        assert 0.05 - 1e-6 <= took <= 0.05 * 1.3
    assert lim._interval() == pytest.approx(0.05)  # learned from the Reset of "no token left"


def test_an_idle_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=1, reset=T0)
    for ahead in (0.05, 0.01, 0.03, 0.04):  # next-token waits: the refill interval is 50 ms
        lim.observe(headers(5, 0, T0 + ahead), 200, None)
    clock.advance(lim._hold() + 0.1)  # long after: not short of tokens lately, and full again
    lim.observe(headers(5, 2, clock.now), 200, None)
    assert at_once(lim) == 2
    assert advance_until_admitted(lim, clock) == pytest.approx(0.05, abs=1e-6)  # the next token


def test_429s_slow_a_shared_bucket_once_per_burst_and_the_level_steers_back() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0)
    seqs = []
    for _ in range(3):
        assert lim.poll() == 0.0
        seqs.append(lim.sent)
    for seq in seqs:  # three answers to requests that were already out: one event
        lim.observe(headers(5, 0, clock.now + 0.05), 429, seq)
    assert lim._slow == 2.0
    advance_until_admitted(lim, clock)
    lim.observe(headers(5, 0, clock.now + 0.05), 429, lim.sent)  # sent after: slower still
    assert lim._slow == 4.0
    for _ in range(20):  # over half the bucket left: the rate grows back, step by step
        lim.observe(headers(5, 4, clock.now), 200, None)
    assert 1.0 < lim._slow < 4.0
    for _ in range(10):  # under a quarter left: it eases off before anything is refused
        lim.observe(headers(5, 1, clock.now), 200, None)
    assert lim._slow > 1.0
    clock.advance(lim._hold() + 1)  # no 429 and nothing ran out lately: not shared any more
    lim.observe(headers(5, 4, clock.now), 200, None)
    assert lim._slow == 1.0


# ---------------------------------------------------------------------- hints and limits


def test_retry_after_holds_everyone_back() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=3, reset=T0 + 1)
    lim.observe(headers(5, 3, T0 + 1, **{"retry-after-ms": "300"}), 429, None)
    assert lim.poll() == pytest.approx(0.3, abs=1e-6)


def test_a_far_reset_is_capped() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=0, reset=T0 + 3600)
    assert lim.poll() <= RESET_CAP + GUARD
    assert lim.state is not None and lim.state["reset_at"] == T0 + 3600  # as the server said


def test_partial_or_broken_headers_do_not_break_anything() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    lim.poll()
    lim.observe(
        httpx2.Headers({"x-ratelimit-remaining": "lots", "x-ratelimit-reset": "soon"}), 200, 1
    )
    assert lim.state == state(None, None, None, T0)
    assert at_once(lim) == 1000  # nothing countable: nothing held back


def test_remaining_without_a_reset_holds_nothing_back() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=0, reset=None)  # nothing says when it comes back
    assert at_once(lim) == 1000  # a 429 would say it; waiting forever would not


def test_the_state_is_the_newest_answer() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0 + 1)
    assert lim.poll() == 0.0
    newest = lim.sent
    lim.observe(headers(5, 2, T0 + 1), 200, newest)
    lim.observe(headers(5, 3, T0 + 1), 200, newest - 1)  # arrived late: older news
    assert lim.state == state(5, 2, T0 + 1, clock.now)


def test_waiting_for_a_reset_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=0, reset=T0 + 2.0)
    with caplog.at_level(logging.INFO, logger="runcrate_integrations.net.ratelimit"):
        for _ in range(5):
            assert lim.poll() > 1.5
            clock.advance(0.1)
    records = [r for r in caplog.records if r.name == "runcrate_integrations.net.ratelimit"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert "waiting 2.01 s for the reset" in records[0].getMessage()  # 2 s and a guard
    assert "limit 5, remaining 0" in records[0].getMessage()


# ---------------------------------------------------------------------- waiting for real


def _gated(seconds: float) -> RateLimiter:
    lim = RateLimiter("http://x/v1")
    lim.poll()
    reset = time.time() + seconds
    lim.observe(headers(100, 0, reset), 429, lim.sent)
    return lim


async def test_threads_and_tasks_wait_together_for_one_reset() -> None:
    lim = _gated(0.3)
    started = time.monotonic()
    done: dict[str, float] = {}
    seqs: list[int | None] = []

    def thread_call(name: str) -> None:
        seqs.append(lim.acquire())
        done[name] = time.monotonic() - started

    async def task_call(name: str) -> None:
        seqs.append(await lim.aacquire())
        done[name] = time.monotonic() - started

    threads = [threading.Thread(target=thread_call, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    await asyncio.wait_for(asyncio.gather(*(task_call(f"a{i}") for i in range(4))), 5)
    for t in threads:
        t.join(5)
    assert len(done) == 8
    assert all(v >= 0.25 for v in done.values()), done  # none before the reset
    assert len(set(seqs)) == 8  # each counted once


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    lim = _gated(0.3)
    sent_before = lim.sent
    first = asyncio.ensure_future(lim.aacquire())  # first in line
    second = asyncio.ensure_future(lim.aacquire())
    await until(lambda: len(lim._waiters) == 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The one behind it takes over and goes at the reset; nothing was taken by the first.
    assert await asyncio.wait_for(second, 5) == sent_before + 1
    assert not lim._waiters


def test_an_interrupted_thread_leaves_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lim = _gated(5.0)

    class Interrupt(BaseException):
        pass

    def interrupted(self: threading.Event, timeout: float | None = None) -> bool:
        raise Interrupt  # what a KeyboardInterrupt during the wait looks like

    monkeypatch.setattr(threading.Event, "wait", interrupted)
    with pytest.raises(Interrupt):
        lim.acquire()
    monkeypatch.undo()
    assert not lim._waiters


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_wait_past_the_deadline_raises_at_once(mode: str) -> None:
    lim = _gated(5.0)
    deadline = time.monotonic() + 1.0
    started = time.monotonic()
    with pytest.raises(errors.APITimeoutError, match=r"waiting .* for the rate limit"):
        if mode == "sync":
            lim.acquire(deadline)
        else:
            await lim.aacquire(deadline)
    assert time.monotonic() - started < 1.0  # it did not sit out the wait first
    assert not lim._waiters


# ---------------------------------------------------------------------- registry


def _limiter(base_url: str, key: str | None) -> RateLimiter:
    return ratelimit.limiter_for(ClientSettings.resolve(api_key=key, base_url=base_url))


def test_one_limiter_per_base_url_and_key() -> None:
    a = _limiter("http://reg/v1/", "k1")
    assert a is _limiter("http://reg/v1", "k1")
    assert a is not _limiter("http://reg/v1", "k2")
    keyless = ratelimit.limiter_key("http://reg/v1", None)
    assert keyless == ratelimit.limiter_key("http://reg/v1", "no-key")  # the client's stand-in
    assert "k1" not in repr(ratelimit.limiter_key("http://reg/v1", "k1"))


def test_rate_limit_state_for_settings() -> None:
    settings = ClientSettings.resolve(api_key="rc_live_state_test", base_url="http://state/v1")
    assert rate_limit_state(settings) is None
    ratelimit.limiter_for(settings).observe(headers(60, 59, time.time() + 30), 200, None)
    found = rate_limit_state(settings)
    assert found is not None and (found["limit"], found["remaining"]) == (60, 59)


def test_rate_limits_is_part_of_the_settings_and_the_pool_key() -> None:
    on = ClientSettings.resolve(api_key="k", base_url="http://x/v1")
    off = ClientSettings.resolve(api_key="k", base_url="http://x/v1", rate_limits=False)
    assert on.rate_limits is True and off.rate_limits is False
    assert on.pool_key != off.pool_key


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_no_limiters() -> None:
    settings = ClientSettings.resolve(api_key="rc_live_fork_test", base_url="http://fork/v1")
    parent = ratelimit.limiter_for(settings)
    parent.observe(headers(10, 0, time.time() + 30), 429, None)
    assert rate_limit_state(settings) is not None
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        ok = rate_limit_state(settings) is None and ratelimit.limiter_for(settings) is not parent
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert rate_limit_state(settings) is not None  # the parent keeps its own
