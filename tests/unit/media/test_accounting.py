"""Every media call reaches the usage tracker's two hooks: ``_before_spend`` just before a
paid request goes out (where a budget holds its worst case or stops it unsent), ``_account``
once per successful call with the units it produced, from the answer where it says so; and
through them, ``track_usage`` counts, prices and budgets media calls like chat calls."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from runcrate_integrations import BudgetExceededError, InternalServerError, track_usage
from runcrate_integrations.media import accounting
from tests.support.fake_media import fake_audio
from tests.support.fake_openai_server import FakeOpenAIServer, JSONResponse, error

from .conftest import MakeMedia


class Ledger:
    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.accounted: list[tuple[str, dict[str, Any]]] = []
        self.before: list[tuple[str, str, int]] = []  # (model, endpoint, requests sent so far)
        self.most: list[dict[str, Any]] = []  # the worst case each call announced

    def account(self, clients: Any, model: str, **units: Any) -> None:
        self.accounted.append((model, units))

    def before_spend(
        self, clients: Any, model: str, *, endpoint: str, **most: Any
    ) -> AbstractContextManager[object]:
        self.before.append((model, endpoint, self.server.request_count))
        self.most.append(most)
        return contextlib.nullcontext()


@pytest.fixture
def ledger(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    book = Ledger(fake_server)
    monkeypatch.setattr(accounting, "_account", book.account)
    monkeypatch.setattr(accounting, "_before_spend", book.before_spend)
    return book


def test_each_call_is_accounted_once_with_its_units(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, ledger: Ledger, tmp_path: Path
) -> None:
    media = make_media()
    media.generate_image("a fox")  # a POST and a download: one call
    media.speech("Twelve chars")
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("one two three four five"))
    media.transcribe(path)
    fake_server.media.polls_to_complete = 1
    media.generate_video("waves", duration=3)
    assert ledger.accounted == [
        ("black-forest-labs/FLUX.1-schnell", {"endpoint": "/images/generations", "images": 1}),
        ("hexgrad/Kokoro-82M", {"endpoint": "/audio/speech", "speech_characters": 12}),
        ("openai/whisper-large-v3", {"endpoint": "/audio/transcriptions", "audio_seconds": 2.0}),
        ("google/veo-3.0", {"endpoint": "/videos", "video_seconds": 3.0}),
    ]
    assert [(m, e) for m, e, _ in ledger.before] == [
        ("black-forest-labs/FLUX.1-schnell", "/images/generations"),
        ("hexgrad/Kokoro-82M", "/audio/speech"),
        ("openai/whisper-large-v3", "/audio/transcriptions"),
        ("google/veo-3.0", "/videos"),
    ]
    # Each hook ran before its own request was sent (and after the previous call's).
    assert [sent for _, _, sent in ledger.before] == [0, 2, 3, 4]
    # The most each may be billed for, known before it is sent (a recording's length is not).
    assert ledger.most == [
        {"images": 1},
        {"speech_characters": 12},
        {"audio_seconds": None},
        {"video_seconds": 3.0},
    ]


async def test_units_come_from_the_answer_when_it_says_them(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, ledger: Ledger
) -> None:
    fake_server.enqueue(
        JSONResponse({"created": 1, "data": [{"b64_json": "iVBORw=="}, {"b64_json": "iVBORw=="}]}),
        JSONResponse({"id": "vid_9", "status": "queued", "duration": 8}),
    )
    media = make_media()
    await media.agenerate_image("two foxes")
    await media.asubmit_video("waves", duration=4)  # the server says 8 s: 8 s is billed
    assert [units for _, units in ledger.accounted] == [
        {"endpoint": "/images/generations", "images": 2},
        {"endpoint": "/videos", "video_seconds": 8.0},
    ]


def test_a_failed_call_is_not_accounted(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, ledger: Ledger
) -> None:
    fake_server.enqueue(error(500, "server_error", "boom"))
    with pytest.raises(InternalServerError):
        make_media().speech("Hello")
    assert ledger.accounted == [] and len(ledger.before) == 1


def test_a_bad_argument_reaches_neither_hook(make_media: MakeMedia, ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        make_media().generate_image("")
    assert ledger.before == [] and ledger.accounted == []


def test_a_budget_check_in_before_spend_stops_the_call_unsent(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(clients: Any, model: str, *, endpoint: str, **most: Any) -> None:
        raise BudgetExceededError(f"budget spent; {endpoint} not sent")

    monkeypatch.setattr(accounting, "_before_spend", refuse)
    with pytest.raises(BudgetExceededError, match="/videos not sent"):
        make_media().submit_video("waves")
    assert fake_server.request_count == 0


# ---------------------------------------------------------------------- through track_usage

PRICES = {
    "black-forest-labs/FLUX.1-schnell": {"per_image": 0.01},
    "hexgrad/Kokoro-82M": {"per_million_characters": 15.0},
    "google/veo-3.0": {"per_video_second": 0.5},
    "openai/whisper-large-v3": {"per_audio_minute": 0.006},
}


async def test_the_tracker_counts_and_prices_media_calls(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    media = make_media()
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("one two three four five"))
    with track_usage(prices=PRICES) as usage:
        media.generate_image("a fox")
        await media.aspeech("Twelve chars")
        media.transcribe(path)
        await media.asubmit_video("waves", duration=4)
    assert (usage.requests, usage.images, usage.speech_characters) == (4, 1, 12)
    assert (usage.audio_seconds, usage.video_seconds) == (2.0, 4.0)
    assert usage.cost == pytest.approx(0.01 + 12 * 15.0 / 1e6 + 0.006 * 2 / 60 + 2.0)
    assert usage.in_flight == 0  # every hold was dropped


def test_a_budget_stops_a_media_call_that_may_pass_it_unsent(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    media = make_media()
    with track_usage(prices=PRICES, budget=1.0) as usage:
        with pytest.raises(BudgetExceededError, match=r"google/veo-3\.0"):
            media.submit_video("waves", duration=4)  # up to $2.00
        assert fake_server.request_count == 0
        media.generate_image("a fox")  # $0.01: sent
    assert fake_server.request_count == 2  # the image: its POST and its download
    assert usage.cost == pytest.approx(0.01)


def test_a_failed_media_call_leaves_no_hold(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(error(500, "server_error", "boom"))
    with track_usage(prices=PRICES, budget=1.0) as usage:
        with pytest.raises(InternalServerError):
            make_media().speech("Hello")
        assert usage.in_flight == 0 and usage.requests == 0
