"""Items 1 and 4: rate limits and server faults are retried, waiting as long as the server asks.

Waits are measured on the server side (when each request arrived), so the numbers are the
client's own pause between attempts. The openai client's default backoff before a first retry
is 0.375-0.5 s; the header-driven waits used here are chosen to be told apart from it.
"""

from __future__ import annotations

import sys
import time

import pytest
from langchain_core.exceptions import ModelAPIError, ModelRateLimitError

import runcrate_integrations as core
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net.clients import sync_client
from tests.reliability.cases import (
    KEY,
    Arrivals,
    ChatCase,
    EmbedCase,
    EmbedMode,
    Framework,
    Mode,
    one,
)
from tests.support.fake_openai_server import (
    Disconnect,
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Responder,
    embeddings,
    error,
    hash_vector,
)

DEFAULT_BACKOFF_MIN = 0.375  # openai: 0.5 s * (1 - 0.25 * random()) before the first retry


def _rate_limited(**headers: str) -> JSONResponse:
    return error(429, "rate_limited", "Rate limit exceeded: 60 requests per minute", headers)


# ---------------------------------------------------------------------- 1. 429 then success


@pytest.mark.real_backoff
async def test_429_with_a_short_retry_after_ms_still_waits_the_backoff(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    seen = Arrivals()
    fake_server.enqueue(
        seen(_rate_limited(**{"retry-after-ms": "40"})), seen(chat.reply("served at last"))
    )
    llm = chat.model(max_retries=1)

    assert await chat.ask(llm, "hello") == "served at last"

    assert fake_server.request_count == 2
    first, second = fake_server.requests
    assert first.body == second.body  # the retry is the same request
    # Never faster than the client's own backoff: a hint a few ms away must not make every
    # caller retry at once (the larger of the two is waited).
    assert DEFAULT_BACKOFF_MIN - 0.02 <= seen.gaps[0] < 1.5


async def test_429_retry_after_in_seconds_is_honoured(fake_server: FakeOpenAIServer) -> None:
    # One path suffices for the seconds form (a 1 s wait); the -ms form runs on all of them.
    case = ChatCase("langchain", "astream", fake_server)
    seen = Arrivals()
    fake_server.enqueue(seen(_rate_limited(**{"retry-after": "1"})), seen(case.reply("ok")))

    assert await case.ask(case.model(max_retries=1)) == "ok"

    assert fake_server.request_count == 2
    assert 0.95 <= seen.gaps[0] < 2.0  # the default backoff would have been <= 0.5 s


def _reset_in(seconds: float) -> Responder:
    """A responder: 429 whose X-RateLimit-Reset is ``seconds`` after the request arrived."""

    def respond(request: RecordedRequest) -> JSONResponse:
        reset = f"{time.time() + seconds:.3f}"
        return _rate_limited(
            **{"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
        )

    return respond


async def test_429_waits_for_x_ratelimit_reset_without_retry_after(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    seen = Arrivals()
    fake_server.enqueue(seen(_reset_in(0.3)), seen(chat.reply("after the reset")))

    assert await chat.ask(chat.model(max_retries=1)) == "after the reset"

    assert fake_server.request_count == 2
    assert 0.25 <= seen.gaps[0] < 2.0


@pytest.mark.real_backoff
async def test_429_whose_reset_has_passed_still_waits_the_backoff(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # A reset in the past is no reason to retry at once: 64 callers doing so burn every retry
    # inside one refill. The client's jittered backoff is the floor.
    seen = Arrivals()
    fake_server.enqueue(seen(_reset_in(-5)), seen(chat.reply("after the backoff")))

    assert await chat.ask(chat.model(max_retries=1)) == "after the backoff"

    assert fake_server.request_count == 2
    assert DEFAULT_BACKOFF_MIN - 0.02 <= seen.gaps[0] < 1.5


def _cap_reset_wait(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer, cap: float) -> None:
    """Lower the X-RateLimit-Reset cap (60 s) wherever the core has bound it."""
    sync_client(ClientSettings.resolve(api_key=KEY, base_url=server.base_url))  # load it all
    modules = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("runcrate_integrations") and hasattr(m, "RESET_CAP")
    ]
    assert modules, "runcrate_integrations no longer has RESET_CAP"
    for module in modules:
        monkeypatch.setattr(module, "RESET_CAP", cap)


@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "invoke"), one("llama_index", "astream")]
)
async def test_x_ratelimit_reset_wait_is_capped(
    framework: Framework, mode: Mode, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cap_reset_wait(monkeypatch, fake_server, 0.3)
    case = ChatCase(framework, mode, fake_server)
    seen = Arrivals()
    fake_server.enqueue(seen(_reset_in(5)), seen(case.reply("capped")))

    assert await case.ask(case.model(max_retries=1)) == "capped"

    assert 0.25 <= seen.gaps[0] < 1.5  # the cap, not the 5 s the header asked for


async def test_persistent_429_raises_rate_limit_error_after_max_retries(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = _rate_limited(
        **{
            "retry-after-ms": "10",
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1764000060",
        }
    )

    with pytest.raises(chat.error(core.RateLimitError)) as caught:
        await chat.ask(chat.model(max_retries=2))

    assert fake_server.request_count == 3  # the first try and max_retries=2 retries
    err = caught.value
    assert isinstance(err, core.RateLimitError)
    assert (err.status_code, err.code) == (429, "rate_limited")
    assert (err.limit, err.remaining, err.reset_at) == (60, 0, 1764000060.0)
    assert "Rate limit exceeded" in str(err)
    if chat.framework == "langchain":
        assert isinstance(err, ModelRateLimitError)


async def test_429_with_max_retries_0_fails_after_one_request(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(_rate_limited(**{"retry-after-ms": "10"}))

    with pytest.raises(chat.error(core.RateLimitError)):
        await chat.ask(chat.model(max_retries=0))

    assert fake_server.request_count == 1


@pytest.mark.real_backoff
async def test_embeddings_429_with_a_short_hint_waits_the_backoff(
    embed: EmbedCase, fake_server: FakeOpenAIServer
) -> None:
    texts = ["alpha", "beta"]
    vectors = [hash_vector(t) for t in texts]
    seen = Arrivals()
    fake_server.enqueue(seen(_rate_limited(**{"retry-after-ms": "40"})), seen(embeddings(vectors)))

    assert await embed.embed(embed.model(max_retries=1), texts) == vectors

    assert fake_server.request_count == 2
    assert fake_server.requests[0].body == fake_server.requests[1].body
    assert DEFAULT_BACKOFF_MIN - 0.02 <= seen.gaps[0] < 1.5


@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "sync"), one("llama_index", "async")]
)
async def test_embeddings_429_waits_for_x_ratelimit_reset(
    framework: Framework, mode: EmbedMode, fake_server: FakeOpenAIServer
) -> None:
    embed = EmbedCase(framework, mode, fake_server)
    seen = Arrivals()
    fake_server.enqueue(seen(_reset_in(0.3)), seen(embeddings([hash_vector("gamma")])))

    assert await embed.embed(embed.model(max_retries=1), ["gamma"]) == [hash_vector("gamma")]

    assert fake_server.request_count == 2
    assert 0.25 <= seen.gaps[0] < 2.0


@pytest.mark.real_backoff
async def test_embeddings_429_whose_reset_has_passed_still_waits_the_backoff(
    embed: EmbedCase, fake_server: FakeOpenAIServer
) -> None:
    seen = Arrivals()
    fake_server.enqueue(seen(_reset_in(-5)))
    fake_server.default = seen(embeddings([hash_vector("omega")]))

    assert await embed.embed(embed.model(max_retries=1), ["omega"]) == [hash_vector("omega")]

    assert fake_server.request_count == 2
    assert DEFAULT_BACKOFF_MIN - 0.02 <= seen.gaps[0] < 1.5


# ---------------------------------------------------------------------- 4. server faults


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_once_then_success(
    chat: ChatCase, fake_server: FakeOpenAIServer, status: int
) -> None:
    # retry-after-ms keeps the suite fast; whether to retry is decided by the status alone.
    fake_server.enqueue(
        error(status, "server_error", "upstream model crashed", {"retry-after-ms": "20"}),
        chat.reply("recovered"),
    )

    assert await chat.ask(chat.model(max_retries=1)) == "recovered"

    assert fake_server.request_count == 2


async def test_persistent_500_raises_internal_server_error_after_max_retries(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = error(
        500, "server_error", "upstream model crashed", {"retry-after-ms": "10"}
    )

    with pytest.raises(chat.error(core.InternalServerError)) as caught:
        await chat.ask(chat.model(max_retries=2))

    assert fake_server.request_count == 3
    err = caught.value
    assert isinstance(err, core.InternalServerError)
    assert (err.status_code, err.code, err.error_message) == (
        500,
        "server_error",
        "upstream model crashed",
    )
    assert str(err).startswith("Runcrate API error 500 (server_error): upstream model crashed")
    if chat.framework == "langchain":
        assert isinstance(err, ModelAPIError) and err.is_retryable


async def test_embeddings_persistent_500_raises_after_max_retries(
    embed: EmbedCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = error(503, "server_error", "overloaded", {"retry-after-ms": "10"})

    with pytest.raises(embed.error(core.InternalServerError)):
        await embed.embed(embed.model(max_retries=1), ["delta"])

    assert fake_server.request_count == 2


@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "ainvoke"), one("llama_index", "stream")]
)
async def test_connection_dropped_before_the_answer_is_retried(
    framework: Framework, mode: Mode, fake_server: FakeOpenAIServer
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.enqueue(Disconnect(), case.reply("second try"))

    assert await case.ask(case.model(max_retries=1)) == "second try"

    assert fake_server.request_count == 2
