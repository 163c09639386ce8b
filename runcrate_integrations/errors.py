"""One exception hierarchy for the whole package, and the translation of Runcrate error bodies.

Every API error subclasses both :class:`RuncrateError` and the matching ``openai`` exception,
so ``except openai.RateLimitError`` keeps working while ``except InsufficientCreditsError``
becomes possible. Runcrate answers errors as ``{"error": {"code", "message", "details"?}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
import openai


class RuncrateError(Exception):
    """Base class of every error this package raises.

    ``is_retryable`` says whether the same call may succeed if made again (after the client's
    own retries were used up): true for rate limits, server and network failures, false for
    what a retry cannot change (a bad request, a wrong key, no credits, a malformed answer).
    """

    is_retryable: bool = False


class MissingAPIKeyError(RuncrateError, ValueError):
    """No API key was given for Runcrate's endpoint."""


class RuncrateAPIError(RuncrateError):
    """Mixin for HTTP errors answered by the server; carries Runcrate's ``code`` and text."""

    code: str | None
    error_message: str | None
    details: Any

    def _set_fields(self, body: object) -> None:
        data = body if isinstance(body, Mapping) else {}
        self.code = _code(data)
        msg = data.get("message")
        self.error_message = msg if isinstance(msg, str) else None
        self.details = data.get("details")


class APIStatusError(RuncrateAPIError, openai.APIStatusError):
    """An HTTP error status without a more specific class."""

    def __init__(self, message: str, *, response: httpx2.Response, body: object) -> None:
        super().__init__(message, response=response, body=body)
        status = response.status_code
        self.is_retryable = status in RETRYABLE_STATUSES or status >= 500


class BadRequestError(RuncrateAPIError, openai.BadRequestError):
    """400: the request was rejected as invalid."""


class ContextLengthExceededError(BadRequestError):
    """400: the prompt (plus ``max_tokens``) does not fit the model's context window."""


class AuthenticationError(RuncrateAPIError, openai.AuthenticationError):
    """401: the API key is missing or wrong."""


class InsufficientCreditsError(RuncrateAPIError, openai.APIStatusError):
    """402: the account has no credits left. Never retried: top up, then call again."""


class PermissionDeniedError(RuncrateAPIError, openai.PermissionDeniedError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(RuncrateAPIError, openai.NotFoundError):
    """404: unknown model or path."""


class ConflictError(RuncrateAPIError, openai.ConflictError):
    """409: the request conflicts with the server's state; retried, as openai does."""

    is_retryable = True


class UnprocessableEntityError(RuncrateAPIError, openai.UnprocessableEntityError):
    """422: the request was well-formed but the server cannot process it."""


class RateLimitError(RuncrateAPIError, openai.RateLimitError):
    """429: too many requests; retried with backoff before this is raised."""

    is_retryable = True

    @property
    def limit(self) -> int | None:
        return _int_header(self.response, "x-ratelimit-limit")

    @property
    def remaining(self) -> int | None:
        return _int_header(self.response, "x-ratelimit-remaining")

    @property
    def reset_at(self) -> float | None:
        """Unix time at which the window resets (``X-RateLimit-Reset``)."""
        value = self.response.headers.get("x-ratelimit-reset")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class InternalServerError(RuncrateAPIError, openai.InternalServerError):
    """5xx: a server failure; retried with backoff before this is raised."""

    is_retryable = True


class StreamErrorEvent(RuncrateAPIError, openai.APIError):
    """The server reported an error inside a stream that had started with HTTP 200."""

    is_retryable = True

    def __init__(self, message: str, *, request: httpx2.Request, body: object) -> None:
        super().__init__(message, request, body=body)


class ResponseFormatError(RuncrateError, openai.APIResponseValidationError):
    """The server answered 2xx with a body this package cannot use (bad JSON, no choices)."""

    def __init__(self, message: str, *, response: httpx2.Response | None = None) -> None:
        request = response.request if response is not None else httpx2.Request("POST", "/")
        resp = response if response is not None else httpx2.Response(200, request=request)
        super().__init__(resp, None, message=message)


class APIConnectionError(RuncrateError, openai.APIConnectionError):
    """The server could not be reached, or the connection failed (after the client's retries)."""

    is_retryable = True

    def __init__(
        self, message: str = "Connection error.", *, request: httpx2.Request | None = None
    ) -> None:
        super().__init__(message=message, request=request or httpx2.Request("POST", "/"))


class APITimeoutError(APIConnectionError, openai.APITimeoutError):
    """The request (or the call's deadline) timed out, after the client's retries."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx2.Request | None = None
    ) -> None:
        # openai.APITimeoutError's own __init__ takes no message: go straight to the base.
        openai.APIConnectionError.__init__(
            self, message=message, request=request or httpx2.Request("POST", "/")
        )


class StreamInterruptedError(APIConnectionError):
    """A stream ended before the server finished it; the partial text is not an answer."""

    def __init__(self, message: str, *, request: httpx2.Request | None = None) -> None:
        super().__init__(message, request=request)


# Statuses a retry may cure besides 429 and 5xx, as the openai client treats them.
RETRYABLE_STATUSES = frozenset({408, 409})

_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|exceeds? the (available )?context"
    r"|exceed_context_size|too many tokens|prompt is too long",
    re.IGNORECASE,
)

_AUTH_HINT = (
    "Check the API key: pass api_key=... or set RUNCRATE_API_KEY to a Runcrate key "
    "(it starts with 'rc_live_')."
)
_CREDITS_HINT = "Add credits to your Runcrate account, then retry; this error is never retried."


def _code(data: Mapping[str, Any]) -> str | None:
    """Runcrate's string error code; servers that send a number put the name in ``type``."""
    code = data.get("code")
    if not isinstance(code, str):
        code = data.get("type") or code
    return None if code is None else str(code)


def _int_header(response: httpx2.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(status: int, body: object, fallback: str) -> tuple[str, object]:
    data = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(data, Mapping):
        code = _code(data)
        text = data.get("message") or fallback
    else:
        code, text = None, (str(data) if data else fallback)
    label = f"Runcrate API error {status}" + (f" ({code})" if code is not None else "")
    return f"{label}: {text}", data


def redact(value: Any, secret: str | None) -> Any:
    """``value`` with every occurrence of ``secret`` replaced by ``***`` (strings, dicts, lists)."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, Mapping):
        return {k: redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    return value


def make_stream_error(
    error: object, *, request: httpx2.Request, secret: str | None = None
) -> StreamErrorEvent:
    """Translate an ``{"error": {...}}`` event received inside a 200 stream."""
    data = redact(error, secret)
    if isinstance(data, Mapping):
        code, text = _code(data), data.get("message") or "the server reported an error"
    else:
        code, text = None, str(data)
    label = "Runcrate API error in stream" + (f" ({code})" if code is not None else "")
    err = StreamErrorEvent(f"{label}: {text}", request=request, body=data)
    err._set_fields(data)
    return err


def make_status_error(
    fallback_message: str,
    *,
    body: object,
    response: httpx2.Response,
    secret: str | None = None,
) -> openai.APIStatusError:
    """Translate an HTTP error answer into the matching exception of this package.

    ``secret`` (the API key) is blanked out of the message in case a server echoes it back.
    """
    status = response.status_code
    body = redact(body, secret)
    message, data = _describe(status, body, redact(fallback_message, secret))
    cls: type[RuncrateAPIError]
    if status == 400:
        cls = ContextLengthExceededError if _CONTEXT_PATTERNS.search(message) else BadRequestError
    elif status == 401:
        cls, message = AuthenticationError, f"{message}. {_AUTH_HINT}"
    elif status == 402:
        cls, message = InsufficientCreditsError, f"{message}. {_CREDITS_HINT}"
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 422:
        cls = UnprocessableEntityError
    elif status == 429:
        cls = RateLimitError
    elif status >= 500:
        cls = InternalServerError
    else:
        cls = APIStatusError
    err = cls(message, response=response, body=data)
    err._set_fields(data)
    assert isinstance(err, openai.APIStatusError)
    return err
