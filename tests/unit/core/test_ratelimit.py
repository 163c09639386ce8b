"""``runcrate_integrations.ratelimit``: the limiter's decisions (on a fake clock), its waits
(threads and tasks on a real one), the per-process registry, and the retry wait."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

import httpx2
import pytest
from openai._models import FinalRequestOptions

from runcrate_integrations import ratelimit
from runcrate_integrations._openai import RuncrateOpenAI
from runcrate_integrations.clients import ClientSettings
from runcrate_integrations.ratelimit import RateLimiter, RateLimitState, rate_limit_state
from runcrate_integrations.settings import (
    RATE_LIMIT_COLD_START,
    RATE_LIMIT_COLD_WAIT,
    RATE_LIMIT_GUARD,
    RATE_LIMIT_RESET_CAP,
)
from tests.helpers import until

T0 = 1_800_000_000.0


class Clock:
    """A Unix-time clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def headers(limit: int | None, remaining: int | None, reset: float | None, **extra: str
            ) -> httpx2.Headers:
    values = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": remaining,
              "X-RateLimit-Reset": None if reset is None else f"{reset:.3f}"}
    sent = {k: str(v) for k, v in values.items() if v is not None}
    return httpx2.Headers({**sent, **extra})


def engaged(clock: Clock, limit: int, remaining: int, reset: float) -> RateLimiter:
    """A limiter that sent one request (cold start) and saw its answer."""
    lim = RateLimiter("http://x/v1", clock=clock)
    assert lim.poll() == 0.0
    lim.observe(headers(limit, remaining, reset), 200, lim.sent)
    return lim


def send_all(lim: RateLimiter, clock: Clock, until: float) -> list[float]:
    """Let requests through as soon as the limiter allows, until ``until``: their times."""
    times: list[float] = []
    while len(times) < 1000:
        wait = lim.poll()
        if wait == 0.0:
            times.append(clock.now)
        elif clock.now + wait >= until:
            break
        else:
            clock.advance(wait)
    return times


# ---------------------------------------------------------------------- no headers


def test_a_server_without_headers_never_engages_it() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    for _ in range(RATE_LIMIT_COLD_START):
        assert lim.poll() == 0.0
    # Until the first answer shows whether the server sends the headers, the rest wait.
    assert 0 < lim.poll() <= RATE_LIMIT_COLD_WAIT
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
    for _ in range(RATE_LIMIT_COLD_START):
        assert lim.poll() == 0.0
    assert lim.poll() > 0
    clock.advance(RATE_LIMIT_COLD_WAIT)
    assert lim.poll() == 0.0
    assert lim.poll() == 0.0  # gave up waiting: requests go unpaced until headers show up


# ---------------------------------------------------------------------- fixed windows


def test_a_window_budget_is_spread_then_the_reset_is_awaited() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0 + 1.0)
    assert "mode=window" in repr(lim)
    times = send_all(lim, clock, T0 + 1.0)
    # The 4 left in the window, spread over it (not all at once), none after its end.
    assert len(times) == 4
    gaps = [b - a for a, b in zip([T0, *times], times, strict=False)]
    assert all(0.15 <= g <= 0.25 for g in gaps), gaps
    # Then the next window: the first request right after the reset, then 5 spread again.
    wait = lim.poll()
    assert wait == pytest.approx(T0 + 1.0 + RATE_LIMIT_GUARD - clock.now, abs=1e-6)
    clock.advance(wait)
    assert lim.poll() == 0.0
    assert len(send_all(lim, clock, T0 + 2.0)) == 4


def test_the_server_count_wins_over_the_local_one() -> None:
    clock = Clock()
    lim = engaged(clock, limit=20, remaining=19, reset=T0 + 1.0)
    clock.advance(0.1)
    lim.observe(headers(20, 0, T0 + 1.0), 200, None)  # someone else used the window up
    wait = lim.poll()
    assert wait == pytest.approx(0.9 + RATE_LIMIT_GUARD, abs=1e-6)


def test_other_processes_sharing_a_window_shrink_our_part() -> None:
    # Others take three requests of the window for each of ours.
    clock = Clock()
    lim = engaged(clock, limit=40, remaining=36, reset=T0 + 1.0)
    ours, others = 1, 3
    claims = []
    while True:
        wait = lim.poll()
        if wait > 0:
            if clock.now + wait >= T0 + 1.0:
                break
            clock.advance(wait)
            continue
        ours += 1
        others += 3
        assert ours + others <= 40  # never a request the window had no room for
        lim.observe(headers(40, 40 - ours - others, T0 + 1.0), 200, lim.sent)
        claims.append(lim._claim)
    assert lim._share == pytest.approx(0.25, abs=0.1)
    assert claims[-1] < 1  # nothing of ours left in this window


def test_the_window_length_is_learned_from_consecutive_resets() -> None:
    clock = Clock()
    lim = engaged(clock, limit=2, remaining=1, reset=T0 + 0.3)  # first seen 0.7 s into it
    clock.advance(0.31)
    assert lim.poll() == 0.0
    lim.observe(headers(2, 1, T0 + 1.3), 200, lim.sent)
    assert lim._window() == pytest.approx(1.0)


# ---------------------------------------------------------------------- token bucket


def test_a_bucket_is_recognised_and_paced_by_its_resets() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0)  # Reset is "now" while tokens remain
    assert "mode=bucket" in repr(lim)
    lim.observe(headers(5, 0, T0 + 0.05), 200, lim.sent)  # no token until then
    wait = lim.poll()
    assert 0.05 <= wait <= 0.055  # the next token, and a pace eased off a little (ran dry)
    clock.advance(wait)
    assert lim.poll() == 0.0
    assert lim._bucket_interval() == pytest.approx(0.05, abs=1e-3)  # learned the refill rate
    # Without a newer answer, the next one waits a whole interval (a little more: the bucket
    # ran dry, so the pace eased off).
    assert lim.poll() == pytest.approx(0.05 * lim._slow, abs=1e-3)
    assert 1.0 < lim._slow < 1.1


def test_429s_slow_down_once_per_burst_then_the_level_steers() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0)
    seqs = []
    for _ in range(3):
        clock.advance(lim.poll())
        assert lim.poll() == 0.0
        seqs.append(lim.sent)
    for seq in seqs:  # three answers to requests that were already out: one event
        lim.observe(headers(5, 0, clock.now + 0.05), 429, seq)
    assert lim._slow == 2.0
    clock.advance(lim.poll())
    assert lim.poll() == 0.0
    lim.observe(headers(5, 0, clock.now + 0.05), 429, lim.sent)  # sent after: slower still
    assert lim._slow == 4.0
    # Callers held back while the server has over half left: the rate grows back, step by step.
    assert lim.poll() > 0
    for _ in range(20):
        lim.observe(headers(5, 4, clock.now), 200, None)
    assert 1.0 < lim._slow < 4.0
    for _ in range(200):
        lim.observe(headers(5, 4, clock.now), 200, None)
    assert lim._slow == 1.0
    # Under a quarter left: it eases off before anything is refused.
    for _ in range(10):
        lim.observe(headers(5, 1, clock.now), 200, None)
    assert lim._slow == pytest.approx(1.05**10)


# ---------------------------------------------------------------------- hints and limits


def test_retry_after_holds_everyone_back() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=3, reset=T0 + 1)
    lim.observe(headers(5, 3, T0 + 1, **{"retry-after-ms": "300"}), 429, None)
    assert lim.poll() == pytest.approx(0.3, abs=1e-6)


def test_a_far_reset_is_capped() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=0, reset=T0 + 3600)
    assert lim.poll() <= RATE_LIMIT_RESET_CAP + RATE_LIMIT_GUARD
    assert lim.state is not None and lim.state.reset_at == T0 + 3600  # as the server said


def test_a_reset_in_seconds_from_now_is_understood() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    lim.poll()
    lim.observe(httpx2.Headers({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0",
                                "x-ratelimit-reset": "2"}), 429, 1)
    assert lim.state == RateLimitState(5, 0, T0 + 2, T0)
    assert lim.poll() == pytest.approx(2.0)


def test_partial_or_broken_headers_do_not_break_anything() -> None:
    clock = Clock()
    lim = RateLimiter(clock=clock)
    lim.poll()
    lim.observe(httpx2.Headers({"x-ratelimit-remaining": "lots",
                                "x-ratelimit-reset": "soon"}), 200, 1)
    assert lim.state == RateLimitState(None, None, None, T0)
    assert lim.poll() == 0.0


def test_the_state_is_the_newest_answer() -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=4, reset=T0 + 1)
    clock.advance(lim.poll())
    assert lim.poll() == 0.0
    newest = lim.sent
    lim.observe(headers(5, 2, T0 + 1), 200, newest)
    lim.observe(headers(5, 3, T0 + 1), 200, newest - 1)  # arrived late: older news
    assert lim.state == RateLimitState(5, 2, T0 + 1, clock.now)
    with pytest.raises(AttributeError):
        lim.state.remaining = 9  # type: ignore[misc]  # frozen


def test_waiting_for_a_reset_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lim = engaged(clock, limit=5, remaining=0, reset=T0 + 2.0)
    with caplog.at_level(logging.INFO, logger="runcrate_integrations.ratelimit"):
        for _ in range(5):
            assert lim.poll() > 1.5
            clock.advance(0.1)
    records = [r for r in caplog.records if r.name == "runcrate_integrations.ratelimit"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert "waiting 2.00 s for the reset" in records[0].getMessage()
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
    assert all(0.25 <= v < 2.0 for v in done.values()), done
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


# ---------------------------------------------------------------------- registry


def test_one_limiter_per_base_url_and_key() -> None:
    a = ratelimit.limiter(ratelimit.limiter_key("http://reg/v1/", "k1"))
    assert a is ratelimit.limiter(ratelimit.limiter_key("http://reg/v1", "k1"))
    assert a is not ratelimit.limiter(ratelimit.limiter_key("http://reg/v1", "k2"))
    keyless = ratelimit.limiter_key("http://reg/v1", None)
    assert keyless == ratelimit.limiter_key("http://reg/v1", "no-key")  # the client's stand-in
    assert "k1" not in repr(ratelimit.limiter_key("http://reg/v1", "k1"))


def test_rate_limit_state_for_settings() -> None:
    settings = ClientSettings.resolve(api_key="rc_live_state_test", base_url="http://state/v1")
    assert rate_limit_state(settings) is None
    lim = ratelimit.limiter(ratelimit.limiter_key(settings.base_url, settings.secret))
    lim.observe(headers(60, 59, time.time() + 30), 200, None)
    state = rate_limit_state(settings)
    assert state is not None and (state.limit, state.remaining) == (60, 59)


def test_rate_limits_is_part_of_the_settings_and_the_pool_key() -> None:
    on = ClientSettings.resolve(api_key="k", base_url="http://x/v1")
    off = ClientSettings.resolve(api_key="k", base_url="http://x/v1", rate_limits=False)
    assert on.rate_limits is True and off.rate_limits is False
    assert on.pool_key != off.pool_key
    assert on._client_kwargs()["rate_limits"] is True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_no_limiters() -> None:
    settings = ClientSettings.resolve(api_key="rc_live_fork_test", base_url="http://fork/v1")
    key = ratelimit.limiter_key(settings.base_url, settings.secret)
    parent = ratelimit.limiter(key)
    parent.observe(headers(10, 0, time.time() + 30), 429, None)
    assert rate_limit_state(settings) is not None
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        ok = rate_limit_state(settings) is None and ratelimit.limiter(key) is not parent
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert rate_limit_state(settings) is not None  # the parent keeps its own


# ---------------------------------------------------------------------- retry waits


_CLIENT: list[RuncrateOpenAI] = []


def _retry_wait(headers: dict[str, str] | None, retries_left: int = 6) -> float:
    if not _CLIENT:
        _CLIENT.append(RuncrateOpenAI(api_key="k", base_url="http://retry-wait/v1", max_retries=6))
    options = FinalRequestOptions(method="post", url="/chat/completions")
    sent = None if headers is None else httpx2.Headers(headers)
    return _CLIENT[0]._calculate_retry_timeout(retries_left, options, sent)


def test_a_retry_never_waits_less_than_the_backoff() -> None:
    soon = f"{time.time() + 0.005:.3f}"
    for hint in ({"x-ratelimit-reset": soon}, {"retry-after-ms": "5"}, {"retry-after": "0"},
                 {"x-ratelimit-reset": f"{time.time() - 5:.3f}"}, None):
        waits = [_retry_wait(hint) for _ in range(20)]
        assert all(0.375 <= w <= 0.5 for w in waits), (hint, waits)  # openai's first backoff
    later = [_retry_wait({"retry-after-ms": "5"}, retries_left=4) for _ in range(20)]
    assert all(1.5 <= w <= 2.0 for w in later)  # the third retry backs off further


def test_a_longer_server_hint_is_waited_for() -> None:
    assert _retry_wait({"retry-after": "3"}) == 3.0
    reset = _retry_wait({"x-ratelimit-reset": f"{time.time() + 2:.3f}"})
    assert reset == pytest.approx(2, abs=0.05)
    far = _retry_wait({"x-ratelimit-reset": f"{time.time() + 3600:.0f}"})
    assert far == pytest.approx(RATE_LIMIT_RESET_CAP, abs=0.01)
    both: Any = {"retry-after": "1", "x-ratelimit-reset": f"{time.time() + 2:.3f}"}
    assert _retry_wait(both) == pytest.approx(2, abs=0.05)  # the larger of the two
