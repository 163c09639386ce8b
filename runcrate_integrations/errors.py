"""One exception hierarchy for the whole package, and the translation into it.

Every API error subclasses both :class:`RuncrateError` and the matching ``openai`` exception,
so ``except openai.RateLimitError`` keeps working. Runcrate answers errors as
``{"error": {"code", "message", "details"?}}``. Every error pickles as the same class with
plain data only (status, code, message, request id, rate-limit state, ``is_retryable``), never
a request's or response's headers or body, so never the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from .net.headers import RateLimitState, read_rate_limit

# What a revived error holds instead of the real request and response (no headers, no body).
_NOWHERE = "http://runcrate.invalid/"


def _revive(cls: type[RuncrateError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle an error from plain data; no constructor runs (their signatures differ, and
    the real response is not there to pass)."""
    request = httpx2.Request(state.pop("_method", "POST"), state.pop("_url", _NOWHERE))
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    if isinstance(err, openai.APIError):
        err.request = request
    if isinstance(err, (openai.APIStatusError, ResponseFormatError)):
        err.response = httpx2.Response(err.status_code, request=request)
    return err


class RuncrateError(Exception):
    """Base class of every error this package raises. ``is_retryable``: whether the same call
    may succeed if made again (rate limits, server and network failures), not what a retry
    cannot change (a bad request or key, no credits, a malformed answer). ``rate_limit``: what
    the failed answer's headers said, if anything."""

    is_retryable: bool = False
    rate_limit: RateLimitState | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("request", "response")}
        request = self.__dict__.get("request")
        if isinstance(request, httpx2.Request):
            state["_method"] = request.method
            state["_url"] = str(request.url.copy_with(query=None))
        return (_revive, (type(self), self.args, state))


class MissingAPIKeyError(RuncrateError, ValueError):
    """No API key was given for Runcrate's endpoint."""


class BudgetExceededError(RuncrateError):
    """A call was refused before sending: a :func:`~runcrate_integrations.track_usage` budget
    is reached, would be passed, or cannot be checked. ``model`` is the refused call's model,
    ``spent`` and ``budget`` (USD) the refusing tracker's figures."""

    model: str | None = None
    spent: float | None = None
    budget: float | None = None


class RuncrateAPIError(RuncrateError):
    """Mixin for errors the server answered; carries Runcrate's ``code`` and text."""

    code: str | None = None
    error_message: str | None = None
    details: Any = None

    def _set_fields(self, body: object, rate_limit: RateLimitState | None) -> None:
        data = body if isinstance(body, Mapping) else {}
        self.code = _code(data)
        msg = data.get("message")
        self.error_message = msg if isinstance(msg, str) else None
        self.details = data.get("details")
        self.rate_limit = rate_limit


class APIStatusError(RuncrateAPIError, openai.APIStatusError):
    """An HTTP error status without a more specific class."""

    def __init__(self, message: str, *, response: httpx2.Response, body: object) -> None:
        super().__init__(message, response=response, body=body)
        self.is_retryable = retryable_status(response.status_code)


class BadRequestError(RuncrateAPIError, openai.BadRequestError):
    """400: the request was rejected as invalid."""


class ContextLengthExceededError(BadRequestError):
    """400: the prompt (plus ``max_tokens``) does not fit the model's context window."""


class AuthenticationError(RuncrateAPIError, openai.AuthenticationError):
    """401: the API key is missing or wrong."""


class InsufficientCreditsError(RuncrateAPIError, openai.APIStatusError):
    """402: no credits left (or an inference budget is spent); never retried."""


class PermissionDeniedError(RuncrateAPIError, openai.PermissionDeniedError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(RuncrateAPIError, openai.NotFoundError):
    """404: unknown model, or a path the server does not have (check the base URL)."""


class ConflictError(RuncrateAPIError, openai.ConflictError):
    """409: the request conflicts with the server's state; retried, as openai does."""

    is_retryable = True


class UnprocessableEntityError(RuncrateAPIError, openai.UnprocessableEntityError):
    """422: the request was well-formed but the server cannot process it."""


class RateLimitError(RuncrateAPIError, openai.RateLimitError):
    """429: too many requests; retried (after the server's hint) before this is raised."""

    is_retryable = True

    @property
    def limit(self) -> int | None:
        return self.rate_limit["limit"] if self.rate_limit else None

    @property
    def remaining(self) -> int | None:
        return self.rate_limit["remaining"] if self.rate_limit else None

    @property
    def reset_at(self) -> float | None:
        """Unix time at which the window resets (``X-RateLimit-Reset``)."""
        return self.rate_limit["reset_at"] if self.rate_limit else None


class InternalServerError(RuncrateAPIError, openai.InternalServerError):
    """5xx: a server failure; retried with backoff before this is raised."""

    is_retryable = True


class StreamErrorEvent(RuncrateAPIError, openai.APIError):
    """The server reported an error inside a stream that had started with HTTP 200."""

    is_retryable = True


class ResponseFormatError(RuncrateError, openai.APIResponseValidationError):
    """A 2xx answer this package cannot use (bad JSON, no choices, neither JSON nor a stream),
    or a structured answer that does not match its schema."""

    def __init__(self, message: str, *, response: httpx2.Response | None = None) -> None:
        if response is None:
            response = httpx2.Response(200, request=httpx2.Request("POST", _NOWHERE))
        super().__init__(response, None, message=message)


class StructuredOutputError(ResponseFormatError, ValueError):
    """A structured answer that is not valid JSON for its schema; a ``ValueError`` too, as
    both frameworks' own parsers raise."""


class JobFailedError(RuncrateError):
    """A job the server ran (a video) ended ``failed``; ``job_id`` names it."""

    def __init__(self, message: str, *, job_id: str, details: Any = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.details = details


class APIConnectionError(RuncrateError, openai.APIConnectionError):
    """The server could not be reached, or the connection failed (after the client's retries)."""

    is_retryable = True

    def __init__(
        self, message: str = "Connection error.", *, request: httpx2.Request | None = None
    ) -> None:
        super().__init__(message=message, request=request or httpx2.Request("POST", _NOWHERE))


class APITimeoutError(APIConnectionError, openai.APITimeoutError):
    """The request (or the call's deadline) timed out, after the client's retries."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx2.Request | None = None
    ) -> None:
        # openai.APITimeoutError's own __init__ takes no message: go straight to the base.
        openai.APIConnectionError.__init__(
            self, message=message, request=request or httpx2.Request("POST", _NOWHERE)
        )


class JobTimeoutError(APITimeoutError):
    """Waiting for a job (a video) ran out of time; ``job_id`` names it to wait again."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelledError(RuncrateError):
    """Waiting for a job (a video) was cancelled; it goes on on the server (``job_id``)."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class StreamInterruptedError(APIConnectionError):
    """A stream ended before the server finished it; the partial text is not an answer."""


# Statuses a retry may cure besides 429 and 5xx, as the openai client treats them.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """Whether an answer with this status may succeed if sent again (never 402)."""
    return status in RETRYABLE_STATUSES or status >= 500


_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|exceeds? the (available )?context"
    r"|exceed_context_size|too many tokens|prompt is too long",
    re.IGNORECASE,
)

_STATUS_CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
# Appended to the message; a 404's only for a missing path, not for an unknown model.
_HINTS = {
    401: "Check the API key: pass api_key=... or set RUNCRATE_API_KEY to a Runcrate key "
    "(it starts with 'rc_live_').",
    402: "Add credits to your Runcrate account, then retry; this error is never retried.",
    404: "The server has no such path: check base_url (Runcrate's is https://api.runcrate.ai/v1; "
    "an OpenAI-compatible server's usually ends in /v1).",
}


def _code(data: Mapping[str, Any]) -> str | None:
    """Runcrate's string error code; servers that send a number put the name in ``type``."""
    code = data.get("code")
    if not isinstance(code, str):
        code = data.get("type") or code
    return None if code is None else str(code)


def where(request: httpx2.Request | None) -> str:
    """``POST http://host:port/v1/path`` for messages (no query string)."""
    if request is None:
        return "the server"
    return f"{request.method} {request.url.copy_with(query=None)}"


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


def _describe(prefix: str, data: object, fallback: str) -> tuple[str | None, str]:
    """The code and ``prefix (code): text`` of an error's JSON object (or its plain text)."""
    if isinstance(data, Mapping):
        code, text = _code(data), str(data.get("message") or fallback)
    else:
        code, text = None, (str(data).strip() if data else fallback)
    return code, f"{prefix} ({code}): {text}" if code is not None else f"{prefix}: {text}"


def status_error(
    response: httpx2.Response, body: object, *, secret: str | None = None
) -> openai.APIStatusError:
    """The exception for an HTTP error answer whose decoded JSON (or text) is ``body``;
    ``secret`` (the API key) is blanked out in case a server echoes it back."""
    status = response.status_code
    body = redact(body, secret)
    data = body.get("error", body) if isinstance(body, Mapping) else body
    code, text = _describe(f"Runcrate API error {status}", data, response.reason_phrase or "error")
    message = f"{text} ({where(response.request)})"
    cls = _STATUS_CLASSES.get(status, InternalServerError if status >= 500 else APIStatusError)
    if status == 400 and _CONTEXT_PATTERNS.search(message):
        cls = ContextLengthExceededError
    about_model = "model" in (code or "") or (
        isinstance(data, Mapping) and "model" in str(data.get("message") or "").lower()
    )
    if status in _HINTS and not (status == 404 and about_model):
        message = f"{message}. {_HINTS[status]}"
    err = cls(message, response=response, body=data)
    assert isinstance(err, RuncrateAPIError)
    err._set_fields(data, read_rate_limit(response.headers))
    return err


def stream_error(
    error: object, *, request: httpx2.Request, secret: str | None = None
) -> StreamErrorEvent:
    """The exception for an ``{"error": {...}}`` event received inside a 200 stream."""
    data = redact(error, secret)
    _, message = _describe("Runcrate API error in stream", data, "the server reported an error")
    err = StreamErrorEvent(message, request=request, body=data)
    err._set_fields(data, None)
    return err


def connection_error(
    exc: BaseException, request: httpx2.Request | None, *, mid_stream: bool = False
) -> APIConnectionError:
    """The exception for a request that got no (whole) answer: a timeout, a refused or dropped
    connection; the message names the request and what went wrong."""
    cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
    reason = str(cause).strip() or type(cause).__name__ if cause is not None else ""
    detail = f" ({reason})" if reason else ""
    at = where(request)
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
        if mid_stream:
            return APITimeoutError(
                f"The stream from {at} stalled past the timeout{detail}; the partial answer was "
                "discarded.",
                request=request,
            )
        return APITimeoutError(f"The request to {at} timed out{detail}.", request=request)
    if mid_stream:
        return StreamInterruptedError(
            f"The connection dropped in the middle of the stream from {at}{detail}; the partial "
            "answer was discarded.",
            request=request,
        )
    return APIConnectionError(
        f"Could not reach {at}{detail}: is the server running and base_url right?", request=request
    )


def past_deadline(what: str, request: httpx2.Request | None = None) -> APITimeoutError:
    """The error for a call whose deadline has passed (closing its connection is the caller's)."""
    return APITimeoutError(
        f"{what} passed its deadline; nothing partial was returned.", request=request
    )
