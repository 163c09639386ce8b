"""The tracker itself, without HTTP: prices, media units, holds, nesting, the text it shows.

What reaches it from real answers (chat, streams, embeddings) is tested against the fault
server in tests/reliability/test_usage.py and test_budget.py; media answers reach it through
:func:`record_media` (the media module's one accounting hook), exercised here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import pytest

from runcrate_integrations import BudgetExceededError, track_usage
from runcrate_integrations.usage import (
    ModelUsage,
    UsageRecord,
    UsageTracker,
    open_meter,
    price_of,
    record_media,
    reserve_media,
    watching,
)

IMAGE, VIDEO, SPEECH, STT = "flux", "veo", "kokoro", "whisper"
MEDIA_PRICES = {
    IMAGE: {"per_image": 0.003},
    VIDEO: {"per_video_second": 0.05},
    SPEECH: {"per_million_characters": 15.0},
    STT: {"per_audio_minute": 0.006},
}


# ---------------------------------------------------------------------- prices


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"m": {"inputs": 1.0}}, "prices['m'] has unknown key 'inputs'; did you mean 'input'?"),
        ({"m": {"input": -1}}, "prices['m']['input'] must be a number >= 0 (USD), got -1"),
        ({"m": {"output": "2"}}, "prices['m']['output'] must be a number >= 0 (USD), got '2'"),
        ({"m": {"input": True}}, "prices['m']['input'] must be a number >= 0 (USD), got True"),
        ({"m": 0.5}, "prices['m'] must be a dict such as"),
        ([("m", {})], "prices must be a dict of model id -> prices, got list"),
    ],
)
def test_a_wrong_price_table_is_refused_at_once(prices: object, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        track_usage(prices=prices)  # type: ignore[arg-type]  # wrong on purpose
    assert message in str(refused.value)


@pytest.mark.parametrize("budget", [-0.01, float("nan"), float("inf"), "5", True])
def test_a_budget_is_a_number_of_usd(budget: object) -> None:
    with pytest.raises(ValueError, match="budget must be a number of USD >= 0"):
        track_usage(budget=budget)  # type: ignore[arg-type]  # wrong on purpose


def test_price_of_every_unit() -> None:
    record = UsageRecord(
        "m",
        1,
        prompt_tokens=2_000_000,
        completion_tokens=500_000,
        images=3,
        video_seconds=8.0,
        speech_characters=1_000_000,
        audio_seconds=90.0,
    )
    price = {
        "input": 0.5,
        "output": 2.0,
        "per_image": 0.01,
        "per_video_second": 0.1,
        "per_million_characters": 15.0,
        "per_audio_minute": 0.006,
    }
    cost, missing = price_of(record, price)
    assert missing == ""
    assert cost == pytest.approx(1.0 + 1.0 + 0.03 + 0.8 + 15.0 + 0.009, rel=1e-12)


def test_a_price_that_lacks_a_unit_the_answer_used_is_unknown() -> None:
    record = UsageRecord("m", 1, prompt_tokens=10, completion_tokens=5)
    assert price_of(record, {"input": 1.0}) == (None, "no 'output' price")
    assert price_of(UsageRecord("e", 1, prompt_tokens=10), {"input": 1.0}) == (1e-5, "")


# ---------------------------------------------------------------------- media


def test_media_answers_count_their_units_and_prices() -> None:
    with track_usage(prices=MEDIA_PRICES) as usage:
        record_media(IMAGE, images=2)
        record_media(VIDEO, video_seconds=8.0)
        record_media(SPEECH, speech_characters=2_000)
        record_media(STT, audio_seconds=30.0)

    assert usage.requests == 4 and usage.total_tokens == 0
    assert (usage.images, usage.video_seconds, usage.speech_characters, usage.audio_seconds) == (
        2,
        8.0,
        2_000,
        30.0,
    )
    assert usage.by_model[IMAGE].cost == pytest.approx(0.006)
    assert usage.by_model[VIDEO].cost == pytest.approx(0.4)
    assert usage.by_model[SPEECH].cost == pytest.approx(0.03)
    assert usage.by_model[STT].cost == pytest.approx(0.003)
    assert usage.cost == pytest.approx(0.439)


def test_a_media_answers_own_cost_wins() -> None:
    with track_usage(prices=MEDIA_PRICES) as usage:
        record_media(IMAGE, images=1, cost=0.25)
    assert usage.cost == 0.25


def test_a_video_holds_its_duration_until_its_block_ends() -> None:
    with track_usage(prices=MEDIA_PRICES, budget=0.5) as usage:
        with reserve_media(VIDEO, video_seconds=8.0) or contextlib.nullcontext():  # $0.40
            with pytest.raises(BudgetExceededError, match=r"may cost up to \$0\.25,"):
                reserve_media(VIDEO, video_seconds=5.0)  # $0.25 more would pass $0.50
            record_media(VIDEO, video_seconds=8.0)
        assert usage.in_flight == 0
        with reserve_media(VIDEO, video_seconds=2.0) or contextlib.nullcontext():  # $0.10 fits
            record_media(VIDEO, video_seconds=2.0)
        with pytest.raises(BudgetExceededError, match="Budget reached"):
            reserve_media(IMAGE, images=1)

    assert usage.requests == 2 and usage.cost == pytest.approx(0.5)


def test_a_transcription_of_unknown_length_is_sent_alone() -> None:
    with track_usage(prices=MEDIA_PRICES, budget=1.0):
        meter = reserve_media(STT, audio_seconds=None)
        assert meter is not None
        with meter, pytest.raises(BudgetExceededError, match="cannot be bounded is in flight"):
            reserve_media(IMAGE, images=1)
        with reserve_media(IMAGE, images=1) or contextlib.nullcontext():
            pass  # once it ended, others may go


def test_nothing_is_held_or_counted_without_a_tracker() -> None:
    assert not watching()
    assert reserve_media(VIDEO, video_seconds=8.0) is None
    record_media(VIDEO, video_seconds=8.0)  # counted nowhere, and no error


# ---------------------------------------------------------------------- holds


def test_a_hold_settles_once_and_releases_once() -> None:
    with track_usage(prices={"m": {"input": 1e6}}, budget=10.0) as usage:
        meter = open_meter("m", UsageRecord("m", 0, prompt_tokens=4))  # holds $4
        assert usage.in_flight == 1
        meter.settle(UsageRecord("m", 1, prompt_tokens=3, total_tokens=3))
        meter.settle(UsageRecord("m", 1, prompt_tokens=3, total_tokens=3))
        meter.release()
        assert usage.in_flight == 0
    assert (usage.requests, usage.prompt_tokens, usage.cost) == (1, 3, pytest.approx(3.0))


def test_concurrent_holds_never_pass_the_budget() -> None:
    admitted: list[int] = []
    lock = threading.Lock()
    with track_usage(prices={"m": {"input": 1e6}}, budget=10.0):

        def hold(i: int) -> None:
            with contextlib.suppress(BudgetExceededError):
                open_meter("m", UsageRecord("m", 0, prompt_tokens=3))  # never settled
                with lock:
                    admitted.append(i)

        import contextvars

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(hold, i))
            for i in range(40)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(admitted) == 3  # 3 x $3 fits $10, a fourth would not


async def test_the_block_works_with_async_with_and_copies_into_tasks() -> None:
    async def answer() -> None:
        record_media(IMAGE, images=1)

    async with track_usage() as usage:
        await asyncio.gather(*(answer() for _ in range(3)))
    await answer()
    assert usage.images == 3


def test_a_tracker_is_entered_once() -> None:
    tracker = track_usage()
    with tracker:
        pass
    with pytest.raises(RuntimeError, match="entered once"), tracker:
        pass


def test_a_detached_tracker_counts_records_with_its_own_prices(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = UsageTracker(prices={"m": {"input": 1.0, "output": 1.0}})
    tracker.add(UsageRecord("m", 1, 10, 10, 20))
    with caplog.at_level(logging.WARNING, "runcrate_integrations.usage"):
        tracker.add(UsageRecord("other", 1, 1, 1, 2))
        tracker.add(UsageRecord("other", 1, 1, 1, 2))
    assert tracker.requests == 3 and tracker.cost is None
    assert tracker.by_model["m"] == ModelUsage(1, 10, 10, 20, pytest.approx(2e-5))
    assert len(caplog.records) == 1 and "'other'" in caplog.records[0].getMessage()


def test_the_text_shows_every_figure() -> None:
    with track_usage(prices={"chat": {"input": 1.0, "output": 2.0}, **MEDIA_PRICES}) as usage:
        open_meter("chat", None).settle(UsageRecord("chat", 1, 100, 20, 120))
        record_media(IMAGE, images=2)
    assert str(usage) == (
        "Runcrate usage: 2 requests, 120 tokens (100 prompt, 20 completion), 2 images, "
        "$0.00614\n"
        "  chat: 1 request, 120 tokens (100 prompt, 20 completion), $0.00014\n"
        "  flux: 1 request, 0 tokens (0 prompt, 0 completion), 2 images, $0.006"
    )
    with track_usage() as unknown:
        open_meter("chat", None).settle(UsageRecord("chat", 1, 5, 5, 10, estimated=True))
    assert str(unknown) == (
        "Runcrate usage: 1 request, 10 tokens (5 prompt, 5 completion), cost unknown "
        "(partly estimated)"
    )
