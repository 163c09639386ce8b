"""Errors cross process boundaries, without secrets.

Every typed error pickles to the same class with its status, code, message, request id,
rate-limit state and ``is_retryable``, and carries no request or response headers or body
beyond the parsed error: the key is never in the pickled bytes, even when the request carried it
and the server echoed it back. A 402 raised in a worker process (``spawn`` and ``fork``) reaches
the parent as the credits error, not as a ``BrokenProcessPool``.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx2
import pytest

import langchain_runcrate as lc
import runcrate_integrations as core
from langchain_runcrate import ChatRuncrate
from langchain_runcrate.errors import to_langchain_error
from llama_index_runcrate import RuncrateLLM
from runcrate_integrations.errors import connection_error, status_error, stream_error
from tests.reliability.cases import KEY, MODEL, user
from tests.support.fake_openai_server import FakeOpenAIServer, error

URL = "https://api.runcrate.ai/v1/chat/completions"
RATE_HEADERS = {
    "x-ratelimit-limit": "60",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": "1800000000",
    "x-request-id": "req_123",
}


def _answer(status: int, code: str) -> httpx2.Response:
    request = httpx2.Request(
        "POST",
        URL,
        headers={"Authorization": f"Bearer {KEY}"},
        json={"model": "m", "api_key_echo": KEY},
    )
    body = {"error": {"code": code, "message": f"bad key {KEY}", "details": {"k": KEY}}}
    return httpx2.Response(status, json=body, headers=RATE_HEADERS, request=request)


def _status(status: int, code: str) -> Exception:
    response = _answer(status, code)
    return status_error(response, response.json(), secret=KEY)


def _every_error() -> list[Exception]:
    request = httpx2.Request("POST", URL, headers={"Authorization": f"Bearer {KEY}"})
    errors: list[Exception] = [
        _status(s, c)
        for s, c in [
            (400, "invalid_request"),
            (400, "context_length_exceeded"),
            (401, "invalid_api_key"),
            (402, "insufficient_credits"),
            (403, "forbidden"),
            (404, "model_not_found"),
            (409, "conflict"),
            (418, "teapot"),
            (422, "unprocessable"),
            (429, "rate_limited"),
            (500, "server_error"),
            (503, "overloaded"),
        ]
    ]
    errors += [
        stream_error({"code": "overloaded", "message": f"key {KEY}"}, request=request, secret=KEY),
        connection_error(httpx2.ConnectError("refused"), request),
        connection_error(httpx2.ReadTimeout("slow"), request),
        connection_error(httpx2.RemoteProtocolError("cut"), request, mid_stream=True),
        core.ResponseFormatError("not JSON", response=httpx2.Response(200, request=request)),
        core.StructuredOutputError("not a Person"),
        core.MissingAPIKeyError("no key"),
        core.BudgetExceededError("spent 1.00 of 1.00 USD"),
        core.JobFailedError("video failed", job_id="vid_1", details={"reason": "nsfw"}),
        core.JobTimeoutError("still rendering", job_id="vid_2"),
    ]
    translated = (core.RuncrateAPIError, core.APIConnectionError, core.ResponseFormatError)
    return errors + [to_langchain_error(e) for e in errors if isinstance(e, translated)]


def _fields(err: Exception) -> dict[str, Any]:
    names = (
        "status_code",
        "code",
        "error_message",
        "details",
        "request_id",
        "rate_limit",
        "is_retryable",
        "job_id",
        "message",
    )
    return {n: getattr(err, n, None) for n in names}


@pytest.mark.parametrize("err", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_to_itself_without_the_key(err: Exception) -> None:
    data = pickle.dumps(err)
    assert KEY.encode() not in data
    assert b"Authorization" not in data and b"authorization" not in data
    back = pickle.loads(data)
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert _fields(back) == _fields(err)
    if isinstance(err, core.RuncrateAPIError) and hasattr(err, "status_code"):
        assert back.response.status_code == err.status_code  # type: ignore[attr-defined]
        assert back.request.url == err.request.url  # type: ignore[attr-defined]  # where it went
        assert not back.response.headers and not back.response.content  # type: ignore[attr-defined]


def test_a_rate_limit_error_keeps_its_state_across_a_pickle() -> None:
    err = _status(429, "rate_limited")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, core.RateLimitError)
    assert (back.limit, back.remaining, back.reset_at) == (60, 0, 1800000000.0)
    assert back.request_id == "req_123" and back.is_retryable


# ---------------------------------------------------------------------- process pools


def _call_in_worker(framework: str, base_url: str) -> str:
    """Runs in a worker process: a call the server answers with 402."""
    if framework == "langchain":
        llm = ChatRuncrate(model=MODEL, api_key=KEY, base_url=base_url, max_retries=0)
        return str(llm.invoke("hi").content)
    li = RuncrateLLM(model=MODEL, api_key=KEY, base_url=base_url, max_retries=0)
    return str(li.chat(user("hi")).message.content)


@pytest.mark.parametrize("method", ["spawn", "fork"])
@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_a_402_in_a_worker_process_reaches_the_parent_as_the_credits_error(
    fake_server: FakeOpenAIServer, method: str, framework: str
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    fake_server.default = error(402, "insufficient_credits", "Balance is $0.00")
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_call_in_worker, framework, fake_server.base_url)
        with pytest.raises(core.InsufficientCreditsError) as caught:
            future.result(timeout=60)
    err = caught.value
    assert (err.status_code, err.code) == (402, "insufficient_credits")
    assert "Balance is $0.00" in str(err) and not err.is_retryable
    if framework == "langchain":
        assert isinstance(err, lc.RuncrateInsufficientCreditsError)
    assert fake_server.request_count == 1
