"""Every API error is a core error, an ``openai`` error and a LangChain ``ModelError`` at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

import runcrate_integrations as core
from langchain_runcrate import (
    ChatRuncrate,
    RuncrateAuthenticationError,
    RuncrateBadRequestError,
    RuncrateConflictError,
    RuncrateConnectionError,
    RuncrateContextOverflowError,
    RuncrateInsufficientCreditsError,
    RuncrateInternalServerError,
    RuncrateNotFoundError,
    RuncratePermissionDeniedError,
    RuncrateRateLimitError,
    RuncrateResponseFormatError,
    RuncrateTimeoutError,
    RuncrateUnprocessableEntityError,
)
from langchain_runcrate.errors import to_langchain_error
from tests.helpers import error

from .conftest import KEY, MakeChat

Case = tuple[httpx2.Response, type[Exception], tuple[type[BaseException], ...], bool]


def _cases() -> dict[str, Case]:
    return {
        "400": (
            error(400, "invalid_request", "messages is required"),
            RuncrateBadRequestError,
            (core.BadRequestError, openai.BadRequestError, ModelInvalidRequestError),
            False,
        ),
        "400-context": (
            error(
                400, "context_length_exceeded", "This model's maximum context length is 8192 tokens"
            ),
            RuncrateContextOverflowError,
            (
                core.ContextLengthExceededError,
                core.BadRequestError,
                openai.BadRequestError,
                ContextOverflowError,
            ),
            False,
        ),
        "401": (
            error(401, "invalid_api_key", "Invalid API key"),
            RuncrateAuthenticationError,
            (core.AuthenticationError, openai.AuthenticationError, ModelAuthenticationError),
            False,
        ),
        "402": (
            error(402, "insufficient_credits", "Out of credits"),
            RuncrateInsufficientCreditsError,
            (core.InsufficientCreditsError, openai.APIStatusError, ModelAPIError),
            False,
        ),
        "403": (
            error(403, "forbidden", "Model not allowed"),
            RuncratePermissionDeniedError,
            (core.PermissionDeniedError, openai.PermissionDeniedError, ModelPermissionDeniedError),
            False,
        ),
        "404": (
            error(404, "model_not_found", "No such model"),
            RuncrateNotFoundError,
            (core.NotFoundError, openai.NotFoundError, ModelNotFoundError),
            False,
        ),
        "409": (
            error(409, "conflict", "Busy"),
            RuncrateConflictError,
            (core.ConflictError, openai.ConflictError, ModelAPIError),
            True,
        ),
        "422": (
            error(422, "unprocessable", "Bad field"),
            RuncrateUnprocessableEntityError,
            (
                core.UnprocessableEntityError,
                openai.UnprocessableEntityError,
                ModelInvalidRequestError,
            ),
            False,
        ),
        "429": (
            error(
                429,
                "rate_limited",
                "Slow down",
                headers={
                    "X-RateLimit-Limit": "60",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": "1764000060",
                },
            ),
            RuncrateRateLimitError,
            (core.RateLimitError, openai.RateLimitError, ModelRateLimitError),
            True,
        ),
        "500": (
            error(500, "internal", "Boom"),
            RuncrateInternalServerError,
            (core.InternalServerError, openai.InternalServerError, ModelAPIError),
            True,
        ),
    }


CASES = _cases()


def _check(
    err: BaseException,
    cls: type[Exception],
    bases: tuple[type[BaseException], ...],
    retryable: bool,
) -> None:
    assert type(err) is cls
    for base in (*bases, core.RuncrateError, ModelError):
        assert isinstance(err, base), base
    assert isinstance(err.__cause__, bases[0])  # raised from the core's error
    assert not isinstance(err.__cause__, ModelError)
    assert isinstance(err, ModelError)
    assert err.is_retryable is retryable


@pytest.mark.parametrize("case", list(CASES))
def test_invoke_errors(make_chat: MakeChat, case: str) -> None:
    response, cls, bases, retryable = _cases()[case]
    llm, _ = make_chat([response])
    with pytest.raises(cls) as info:
        llm.invoke("hi")
    _check(info.value, cls, bases, retryable)


@pytest.mark.parametrize("case", ["401", "429", "400-context"])
async def test_ainvoke_errors(make_chat: MakeChat, case: str) -> None:
    response, cls, bases, retryable = _cases()[case]
    llm, _ = make_chat([response])
    with pytest.raises(cls) as info:
        await llm.ainvoke("hi")
    _check(info.value, cls, bases, retryable)


@pytest.mark.parametrize("case", ["402", "404", "500"])
def test_stream_errors(make_chat: MakeChat, case: str) -> None:
    response, cls, bases, retryable = _cases()[case]
    llm, _ = make_chat([response])
    with pytest.raises(cls) as info:
        list(llm.stream("hi"))
    _check(info.value, cls, bases, retryable)


@pytest.mark.parametrize("case", ["400", "403", "409"])
async def test_astream_errors(make_chat: MakeChat, case: str) -> None:
    response, cls, bases, retryable = _cases()[case]
    llm, _ = make_chat([response])
    with pytest.raises(cls) as info:
        [c async for c in llm.astream("hi")]
    _check(info.value, cls, bases, retryable)


def test_error_fields_survive_translation(make_chat: MakeChat) -> None:
    llm, _ = make_chat([CASES["429"][0]])
    with pytest.raises(RuncrateRateLimitError) as info:
        llm.invoke("hi")
    err = info.value
    assert (err.limit, err.remaining, err.reset_at) == (60, 0, 1764000060.0)
    assert (err.code, err.error_message, err.status_code) == ("rate_limited", "Slow down", 429)
    assert str(err) == (
        "Runcrate API error 429 (rate_limited): Slow down "
        "(POST https://api.runcrate.ai/v1/chat/completions)"
    )
    assert err.response.status_code == 429


def test_insufficient_credits_is_not_retryable_and_says_what_to_do(make_chat: MakeChat) -> None:
    llm, rec = make_chat([error(402, "insufficient_credits", "Out of credits")], max_retries=2)
    with pytest.raises(RuncrateInsufficientCreditsError, match="Add credits") as info:
        llm.invoke("hi")
    assert info.value.is_retryable is False
    assert len(rec.requests) == 1  # never retried


def test_auth_error_names_the_env_var_and_never_the_key(make_chat: MakeChat) -> None:
    echoed = error(401, "invalid_api_key", f"Invalid API key {KEY}")
    llm, _ = make_chat([echoed])
    with pytest.raises(RuncrateAuthenticationError, match="RUNCRATE_API_KEY") as info:
        llm.invoke("hi")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


def _raiser(exc: Callable[[httpx2.Request], Exception]) -> Callable[[httpx2.Request], Any]:
    def reply(request: httpx2.Request) -> httpx2.Response:
        raise exc(request)

    return reply


def test_timeout(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_raiser(lambda r: httpx2.ReadTimeout("slow", request=r))], timeout=1.0)
    with pytest.raises(RuncrateTimeoutError) as info:
        llm.invoke("hi")
    err = info.value
    assert isinstance(err, openai.APITimeoutError)
    assert isinstance(err, ModelTimeoutError)
    assert isinstance(err, core.RuncrateError)
    assert err.is_retryable is True
    assert isinstance(err.__cause__, openai.APITimeoutError)


async def test_async_timeout_while_streaming(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_raiser(lambda r: httpx2.ReadTimeout("slow", request=r))])
    with pytest.raises(RuncrateTimeoutError):
        [c async for c in llm.astream("hi")]


def test_connection_error(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_raiser(lambda r: httpx2.ConnectError("refused", request=r))])
    with pytest.raises(RuncrateConnectionError) as info:
        llm.invoke("hi")
    assert isinstance(info.value, openai.APIConnectionError)
    assert isinstance(info.value, ModelConnectionError)
    assert info.value.is_retryable is True


async def test_async_connection_error(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_raiser(lambda r: httpx2.ConnectError("refused", request=r))])
    with pytest.raises(RuncrateConnectionError):
        await llm.ainvoke("hi")


def test_answer_without_choices(make_chat: MakeChat) -> None:
    llm, _ = make_chat([{"id": "x", "object": "chat.completion", "choices": []}])
    with pytest.raises(RuncrateResponseFormatError, match="no choices") as info:
        llm.invoke("hi")
    assert isinstance(info.value, core.ResponseFormatError)
    assert isinstance(info.value, openai.APIResponseValidationError)
    assert isinstance(info.value, ModelAPIError)


def test_non_json_answer(make_chat: MakeChat) -> None:
    bad = httpx2.Response(
        200, content=b"<html>gateway</html>", headers={"content-type": "application/json"}
    )
    llm, _ = make_chat([bad])
    with pytest.raises(RuncrateResponseFormatError, match="malformed JSON"):
        llm.invoke("hi")


def test_non_json_stream_line(make_chat: MakeChat) -> None:
    bad = httpx2.Response(
        200, content=b"data: {not json}\n\n", headers={"content-type": "text/event-stream"}
    )
    llm, _ = make_chat([bad])
    with pytest.raises(RuncrateResponseFormatError, match="not JSON"):
        list(llm.stream("hi"))


def test_translation_of_plain_openai_status_errors() -> None:
    # Only the core's clients are used, but a plain openai error is still classified.
    response = httpx2.Response(
        404,
        json={"error": {"code": "nope", "message": "gone"}},
        request=httpx2.Request("POST", "https://x.test"),
    )
    plain = openai.NotFoundError("gone", response=response, body={"code": "nope"})
    translated = to_langchain_error(plain)
    assert type(translated) is RuncrateNotFoundError
    assert translated is to_langchain_error(translated)  # idempotent


def test_missing_key_fails_at_construction() -> None:
    with pytest.raises(core.MissingAPIKeyError, match="No Runcrate API key: pass api_key=") as info:
        ChatRuncrate(model="deepseek/deepseek-v3.2")
    assert "RUNCRATE_API_KEY" in str(info.value)


def test_custom_base_url_may_run_without_key() -> None:
    llm = ChatRuncrate(model="local", base_url="http://localhost:8000/v1")
    assert llm.api_key is None


def test_errors_are_translated_in_batch(make_chat: MakeChat) -> None:
    llm, _ = make_chat([error(401, "invalid_api_key", "bad"), error(401, "invalid_api_key", "bad")])
    out = llm.batch(["a", "b"], return_exceptions=True)
    assert all(isinstance(e, RuncrateAuthenticationError) for e in out)


def test_custom_async_client_in_a_fresh_event_loop() -> None:
    # The custom async client is used (and errors translated) from a loop of its own.
    async def run() -> None:
        llm = ChatRuncrate(
            model="m",
            api_key=KEY,
            http_async_client=httpx2.AsyncClient(
                transport=httpx2.MockTransport(lambda r: error(400, "bad", "no"))
            ),
            max_retries=0,
        )
        with pytest.raises(RuncrateBadRequestError):
            await llm.ainvoke("hi")

    asyncio.run(run())
