"""Translation of error answers into the typed hierarchy, and X-RateLimit-Reset handling."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest

from runcrate_integrations import errors
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net import transport
from runcrate_integrations.net.clients import Clients
from runcrate_integrations.net.headers import read_rate_limit, server_wait
from tests.helpers import Recorder, completion_body, error, post, private_client


def _client(rec: Recorder, retries: int = 0) -> Clients:
    s = ClientSettings.resolve(
        api_key="rc_live_secret_key_1", base_url="http://x/v1", max_retries=retries
    )
    clients: Clients = private_client(s, rec.client())
    return clients


CALL = post({"model": "m"})


@pytest.mark.parametrize(
    ("status", "cls", "openai_cls"),
    [
        (400, errors.BadRequestError, openai.BadRequestError),
        (401, errors.AuthenticationError, openai.AuthenticationError),
        (402, errors.InsufficientCreditsError, openai.APIStatusError),
        (403, errors.PermissionDeniedError, openai.PermissionDeniedError),
        (404, errors.NotFoundError, openai.NotFoundError),
        (429, errors.RateLimitError, openai.RateLimitError),
        (500, errors.InternalServerError, openai.InternalServerError),
        (418, errors.APIStatusError, openai.APIStatusError),
    ],
)
def test_status_maps_to_both_hierarchies(
    status: int, cls: type[Exception], openai_cls: type[Exception]
) -> None:
    rec = Recorder([error(status, "some_code", "Something went wrong")])
    with pytest.raises(cls) as info:
        transport.send_json(_client(rec), CALL)
    exc = info.value
    assert isinstance(exc, openai_cls)
    assert isinstance(exc, errors.RuncrateError)
    assert isinstance(exc, errors.RuncrateAPIError)
    assert exc.code == "some_code"
    assert exc.error_message == "Something went wrong"
    assert str(exc).startswith(f"Runcrate API error {status} (some_code): Something went wrong")


def test_402_is_never_retried_and_says_what_to_do() -> None:
    rec = Recorder([error(402, "insufficient_credits", "Balance is $0.00")])
    with pytest.raises(errors.InsufficientCreditsError, match="Add credits") as info:
        transport.send_json(_client(rec, retries=3), CALL)
    assert len(rec.requests) == 1
    assert "Balance is $0.00" in str(info.value)
    assert info.value.status_code == 402


def test_401_names_env_var_and_prefix_and_hides_echoed_key() -> None:
    rec = Recorder([error(401, "invalid_api_key", "Key rc_live_secret_key_1 is not valid")])
    with pytest.raises(errors.AuthenticationError) as info:
        transport.send_json(_client(rec, retries=3), CALL)
    text = str(info.value)
    assert "RUNCRATE_API_KEY" in text and "rc_live_'" in text
    assert "rc_live_secret_key_1" not in text
    assert len(rec.requests) == 1


def test_numeric_code_falls_back_to_type() -> None:
    # llama.cpp answers {"code": 401, "type": "authentication_error"}.
    resp = httpx2.Response(
        401,
        json={"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
    )
    rec = Recorder([resp])
    with pytest.raises(errors.AuthenticationError) as info:
        transport.send_json(_client(rec), CALL)
    assert info.value.code == "authentication_error"


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens",
        "the request exceeds the available context size, try increasing it",
    ],
)
def test_context_overflow_is_its_own_class(message: str) -> None:
    rec = Recorder([error(400, "invalid_request", message)])
    with pytest.raises(errors.ContextLengthExceededError) as info:
        transport.send_json(_client(rec), CALL)
    assert isinstance(info.value, errors.BadRequestError)


def test_rate_limit_headers_exposed() -> None:
    headers = {
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1764000000",
    }
    rec = Recorder([error(429, "rate_limited", "Too many requests", headers)])
    with pytest.raises(errors.RateLimitError) as info:
        transport.send_json(_client(rec), CALL)
    assert (info.value.limit, info.value.remaining, info.value.reset_at) == (60, 0, 1764000000.0)


def test_429_waits_for_ratelimit_reset_then_succeeds() -> None:
    reset = str(time.time() + 0.2)
    rec = Recorder(
        [
            error(429, "rate_limited", "slow down", {"X-RateLimit-Reset": reset}),
            completion_body("ok"),
        ]
    )
    start = time.monotonic()
    out = transport.send_json(_client(rec, retries=1), CALL)
    assert out["choices"][0]["message"]["content"] == "ok"
    assert len(rec.requests) == 2
    assert time.monotonic() - start >= 0.15


def _hint(headers: dict[str, str], status: int = 429, now: float = 1_800_000_000.0) -> float:
    return server_wait(read_rate_limit(httpx2.Headers(headers), now), status, now)


def test_the_server_hint_is_retry_after_or_the_reset_whichever_is_later() -> None:
    now = 1_800_000_000.0
    assert _hint({"retry-after": "1"}) == 1.0
    assert _hint({"retry-after-ms": "250"}) == 0.25
    # Both said: the larger (a retry before the reset would only be refused again).
    assert _hint({"x-ratelimit-reset": str(now + 5), "retry-after": "1"}) == pytest.approx(5.0)
    assert _hint({"x-ratelimit-reset": str(now + 5)}) == pytest.approx(5.0)
    assert _hint({"x-ratelimit-reset": "soon"}) == 0.0
    assert _hint({"x-ratelimit-reset": str(now - 5)}) == 0.0
    # A 5xx answer carries the window's headers too: it is not told to wait for the reset.
    assert _hint({"x-ratelimit-reset": str(now + 5), "x-ratelimit-remaining": "3"}, 503) == 0.0


def test_reset_is_a_unix_time_and_a_small_number_is_seconds_from_now() -> None:
    now = 1_800_000_000.0
    unix = read_rate_limit(httpx2.Headers({"x-ratelimit-reset": str(now + 30)}), now)
    relative = read_rate_limit(httpx2.Headers({"x-ratelimit-reset": "30"}), now)
    assert unix is not None and relative is not None
    assert unix["reset_at"] == relative["reset_at"] == now + 30
    assert _hint({"x-ratelimit-reset": "30"}) == 30.0


def test_retry_after_as_an_http_date_is_understood() -> None:
    now = 1_800_000_000.0
    date = "Fri, 15 Jan 2027 08:00:10 GMT"  # 1_800_000_010: 10 s after now
    state = read_rate_limit(httpx2.Headers({"retry-after": date}), now)
    assert state is not None and state["retry_after"] == pytest.approx(10.0)


def test_no_rate_limit_header_reads_as_none() -> None:
    assert read_rate_limit(httpx2.Headers({"content-type": "application/json"})) is None


def test_malformed_json_body_is_a_clear_error() -> None:
    resp = httpx2.Response(200, content=b"{not json", headers={"content-type": "application/json"})
    rec = Recorder([resp])
    with pytest.raises(errors.ResponseFormatError, match="answered malformed JSON"):
        transport.send_json(_client(rec), CALL)


def test_non_object_body_is_a_clear_error() -> None:
    rec = Recorder([httpx2.Response(200, json=[1, 2])])
    with pytest.raises(errors.ResponseFormatError, match="not a JSON object"):
        transport.send_json(_client(rec), CALL)
