"""An opt-in total deadline for a call: retries, waits and a trickling stream included.

Past it the call raises the package's timeout error (LangChain: ``RuncrateTimeoutError``),
never a partial answer, and the connection is closed. Bounded in time: every deadline here
is a fraction of a second and the server's delays are short.
"""

from __future__ import annotations

import time

import pytest

import runcrate_integrations as core
from tests.reliability.cases import ChatCase
from tests.support.fake_openai_server import FakeOpenAIServer, chat_completion, chat_stream, error

DEADLINE = 0.6


def _timeout() -> type[Exception]:
    import openai

    return openai.APITimeoutError


async def _elapsed_error(case: ChatCase, llm: object) -> tuple[float, Exception]:
    start = time.monotonic()
    with pytest.raises(core.APITimeoutError) as info:
        await case.ask(llm, "hello")
    assert isinstance(info.value, case.error(_timeout()))
    return time.monotonic() - start, info.value


async def test_a_slow_answer_is_cut_at_the_deadline(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    slow = chat.reply("late", delay=3.0) if not chat.streaming else chat_stream(["late"], delay=3.0)
    fake_server.enqueue(slow)
    llm = chat.model(deadline=DEADLINE)
    took, err = await _elapsed_error(chat, llm)
    assert took < DEADLINE + 0.8  # the network timeout was capped at what was left
    assert "deadline" in str(err)


async def test_a_trickling_stream_is_cut_at_the_deadline(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # Every chunk arrives well inside the read timeout, so only the deadline can stop it.
    fake_server.enqueue(chat_stream([f"piece{i} " for i in range(40)], chunk_delay=0.05))
    llm = stream_chat.model(deadline=DEADLINE)
    pieces, err = await stream_chat.partial(llm)
    assert isinstance(err, stream_chat.error(_timeout()))
    assert isinstance(err, core.RuncrateError) and err.is_retryable
    assert "deadline" in str(err)
    assert len(pieces) < 40  # cut, and what came before is not an answer


async def test_no_retry_is_started_past_the_deadline(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # The server asks for a 5 s wait: waiting would pass the deadline, so the call stops now.
    fake_server.enqueue(error(429, "rate_limited", "slow down", {"retry-after": "5"}))
    fake_server.enqueue(chat_completion("too late"))
    llm = whole_chat.model(deadline=DEADLINE, max_retries=3)
    took, _ = await _elapsed_error(whole_chat, llm)
    assert took < DEADLINE + 0.5
    assert fake_server.request_count == 1


async def test_per_call_deadline_overrides_and_a_fast_call_is_untouched(
    chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(chat.reply("in time"))
    llm = chat.model(deadline=0.001)  # far too short for any call
    assert await chat.ask(llm, "hello", deadline=5.0) == "in time"


def test_deadline_must_be_positive(chat: ChatCase) -> None:
    with pytest.raises(ValueError):
        chat.model(deadline=0)
