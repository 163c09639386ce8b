"""Translation of error answers into the typed hierarchy, and X-RateLimit-Reset handling."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest

from runcrate_integrations import errors, transport
from runcrate_integrations._openai import reset_delay as _reset_delay
from runcrate_integrations.clients import ClientSettings
from tests.helpers import Recorder, completion_body, error, private_client


def _client(rec: Recorder, retries: int = 0) -> openai.OpenAI:
    s = ClientSettings.resolve(api_key="rc_live_secret_key_1", base_url="http://x/v1",
                               max_retries=retries)
    return private_client(s, rec.client())


@pytest.mark.parametrize(("status", "cls", "openai_cls"), [
    (400, errors.BadRequestError, openai.BadRequestError),
    (401, errors.AuthenticationError, openai.AuthenticationError),
    (402, errors.InsufficientCreditsError, openai.APIStatusError),
    (403, errors.PermissionDeniedError, openai.PermissionDeniedError),
    (404, errors.NotFoundError, openai.NotFoundError),
    (429, errors.RateLimitError, openai.RateLimitError),
    (500, errors.InternalServerError, openai.InternalServerError),
    (418, errors.APIStatusError, openai.APIStatusError),
])
def test_status_maps_to_both_hierarchies(
    status: int, cls: type[Exception], openai_cls: type[Exception]
) -> None:
    rec = Recorder([error(status, "some_code", "Something went wrong")])
    with pytest.raises(cls) as info:
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})
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
        transport.post_json(_client(rec, retries=3), "/chat/completions", {"model": "m"})
    assert len(rec.requests) == 1
    assert "Balance is $0.00" in str(info.value)
    assert info.value.status_code == 402


def test_401_names_env_var_and_prefix_and_hides_echoed_key() -> None:
    rec = Recorder([error(401, "invalid_api_key", "Key rc_live_secret_key_1 is not valid")])
    with pytest.raises(errors.AuthenticationError) as info:
        transport.post_json(_client(rec, retries=3), "/chat/completions", {"model": "m"})
    text = str(info.value)
    assert "RUNCRATE_API_KEY" in text and "rc_live_'" in text
    assert "rc_live_secret_key_1" not in text
    assert len(rec.requests) == 1


def test_numeric_code_falls_back_to_type() -> None:
    # llama.cpp answers {"code": 401, "type": "authentication_error"}.
    resp = httpx2.Response(401, json={"error": {"code": 401, "message": "Invalid API Key",
                                                "type": "authentication_error"}})
    rec = Recorder([resp])
    with pytest.raises(errors.AuthenticationError) as info:
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})
    assert info.value.code == "authentication_error"


@pytest.mark.parametrize("message", [
    "This model's maximum context length is 8192 tokens",
    "the request exceeds the available context size, try increasing it",
])
def test_context_overflow_is_its_own_class(message: str) -> None:
    rec = Recorder([error(400, "invalid_request", message)])
    with pytest.raises(errors.ContextLengthExceededError) as info:
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})
    assert isinstance(info.value, errors.BadRequestError)


def test_rate_limit_headers_exposed() -> None:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": "1764000000"}
    rec = Recorder([error(429, "rate_limited", "Too many requests", headers)])
    with pytest.raises(errors.RateLimitError) as info:
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})
    assert (info.value.limit, info.value.remaining, info.value.reset_at) == (60, 0, 1764000000.0)


def test_429_waits_for_ratelimit_reset_then_succeeds() -> None:
    reset = str(time.time() + 0.2)
    rec = Recorder([error(429, "rate_limited", "slow down", {"X-RateLimit-Reset": reset}),
                    completion_body("ok")])
    start = time.monotonic()
    out = transport.post_json(_client(rec, retries=1), "/chat/completions", {"model": "m"})
    assert out["choices"][0]["message"]["content"] == "ok"
    assert len(rec.requests) == 2
    assert time.monotonic() - start >= 0.15


def test_reset_delay_is_capped_and_defers_to_retry_after() -> None:
    far = httpx2.Headers({"x-ratelimit-reset": str(time.time() + 10_000)})
    assert _reset_delay(far) == 60.0
    both = httpx2.Headers({"x-ratelimit-reset": str(time.time() + 5), "retry-after": "1"})
    assert _reset_delay(both) is None
    assert _reset_delay(httpx2.Headers({"x-ratelimit-reset": "soon"})) is None
    past = httpx2.Headers({"x-ratelimit-reset": str(time.time() - 5)})
    assert _reset_delay(past) == 0.0


def test_malformed_json_body_is_a_clear_error() -> None:
    resp = httpx2.Response(200, content=b"{not json", headers={"content-type": "application/json"})
    rec = Recorder([resp])
    with pytest.raises(errors.ResponseFormatError, match="malformed JSON"):
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})


def test_non_object_body_is_a_clear_error() -> None:
    rec = Recorder([httpx2.Response(200, json=[1, 2])])
    with pytest.raises(errors.ResponseFormatError, match="not a JSON object"):
        transport.post_json(_client(rec), "/chat/completions", {"model": "m"})
