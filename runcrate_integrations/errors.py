"""One exception hierarchy for the whole package, and the translation into it.

Every API error subclasses both :class:`RuncrateError` and the matching ``openai`` exception,
so ``except openai.RateLimitError`` keeps working while ``except InsufficientCreditsError``
becomes possible. Runcrate answers errors as ``{"error": {"code", "message", "details"?}}``.

Every error pickles (a worker process's error reaches its parent as the same class) carrying
plain data only: status, code, message, request id, rate-limit state and ``is_retryable``;
never a request's or response's headers or body, so never the key. The rate-limit state is
read by the one header parser, :func:`~runcrate_integrations.net.headers.read_rate_limit`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from .net.headers import RateLimitState, read_rate_limit

# ---------------------------------------------------------------------------- the hierarchy

# What a revived error holds instead of the real request and response (no headers, no body).
_NOWHERE = "http://runcrate.invalid/"


def _stub_request(method: str | None, url: str | None) -> httpx2.Request:
    return httpx2.Request(method or "POST", url or _NOWHERE)


def _revive(cls: type[RuncrateError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle an error: a new instance of its class from plain data (no constructor runs:
    their signatures differ, and the real response is not there to pass)."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    request = _stub_request(state.pop("_method", None), state.pop("_url", None))
    err.__dict__.pop("_method", None)
    err.__dict__.pop("_url", None)
    if isinstance(err, openai.APIError):
        err.request = request
    if isinstance(err, openai.APIStatusError):
        err.response = httpx2.Response(err.status_code, request=request)
    if isinstance(err, ResponseFormatError):
        err.response = httpx2.Response(200, request=request)
    return err


class RuncrateError(Exception):
    """Base class of every error this package raises.

    ``is_retryable`` says whether the same call may succeed if made again (after the client's
    own retries were used up): true for rate limits, server and network failures, false for
    what a retry cannot change (a bad request, a wrong key, no credits, a malformed answer).
    ``rate_limit`` is what the failed answer's headers said (:class:`RateLimitState`), if any.
    """

    is_retryable: bool = False
    rate_limit: RateLimitState | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        state: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in ("request", "response"):
                continue
            state[name] = value
        request = self.__dict__.get("request")
        if isinstance(request, httpx2.Request):
            state["_method"] = request.method
            state["_url"] = str(request.url.copy_with(query=None))
        return (_revive, (type(self), self.args, state))


class MissingAPIKeyError(RuncrateError, ValueError):
    """No API key was given for Runcrate's endpoint."""


class BudgetExceededError(RuncrateError):
    """A call was refused before sending: the tracked spend reached the budget of a
    :func:`~runcrate_integrations.track_usage` block, its worst case would pass it, or the
    budget could no longer be checked. ``model`` is the refused call's model, ``spent`` and
    ``budget`` (USD) the refusing tracker's figures."""

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
    """402: the account has no credits left (or an inference budget is spent). Never retried:
    top up, then call again."""


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

    def __init__(self, message: str, *, request: httpx2.Request, body: object) -> None:
        super().__init__(message, request, body=body)


class ResponseFormatError(RuncrateError, openai.APIResponseValidationError):
    """The server answered 2xx with a body this package cannot use (bad JSON, no choices, a
    content type that is neither JSON nor a stream), or a structured answer that does not
    match its schema."""

    def __init__(self, message: str, *, response: httpx2.Response | None = None) -> None:
        request = response.request if response is not None else _stub_request(None, None)
        resp = response if response is not None else httpx2.Response(200, request=request)
        super().__init__(resp, None, message=message)


class StructuredOutputError(ResponseFormatError, ValueError):
    """A structured answer (``response_format`` / ``with_structured_output`` /
    ``structured_predict``) that is not valid JSON for its schema. A ``ValueError`` too, as
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
        super().__init__(message=message, request=request or _stub_request(None, None))


class APITimeoutError(APIConnectionError, openai.APITimeoutError):
    """The request (or the call's deadline) timed out, after the client's retries."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx2.Request | None = None
    ) -> None:
        # openai.APITimeoutError's own __init__ takes no message: go straight to the base.
        openai.APIConnectionError.__init__(
            self, message=message, request=request or _stub_request(None, None)
        )


class JobTimeoutError(APITimeoutError):
    """Waiting for a job (a video) ran out of time; ``job_id`` names it, so the wait can be
    resumed (the job itself goes on on the server)."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelledError(RuncrateError):
    """Waiting for a job (a video) was cancelled by the caller; ``job_id`` names it. The job
    itself goes on on the server: wait for it again, or leave it."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class StreamInterruptedError(APIConnectionError):
    """A stream ended before the server finished it; the partial text is not an answer."""

    def __init__(self, message: str, *, request: httpx2.Request | None = None) -> None:
        super().__init__(message, request=request)


# ---------------------------------------------------------------------------- translation

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

_AUTH_HINT = (
    "Check the API key: pass api_key=... or set RUNCRATE_API_KEY to a Runcrate key "
    "(it starts with 'rc_live_')."
)
_CREDITS_HINT = "Add credits to your Runcrate account, then retry; this error is never retried."
_PATH_HINT = (
    "The server has no such path: check base_url (Runcrate's is https://api.runcrate.ai/v1; an "
    "OpenAI-compatible server's usually ends in /v1)."
)


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


def _describe(status: int, body: object, fallback: str) -> tuple[str, str | None, object]:
    data = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(data, Mapping):
        code = _code(data)
        text = str(data.get("message") or fallback)
    else:
        code, text = None, (str(data).strip() if data else fallback)
    label = f"Runcrate API error {status}" + (f" ({code})" if code is not None else "")
    return f"{label}: {text}", code, data


def _missing_path(body: object, code: str | None) -> bool:
    """A 404 for the URL itself (a plain-text or HTML page, no model error code), not for a
    model the server does not know."""
    if code is not None and "model" in code:
        return False
    data = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(data, Mapping):
        text = str(data.get("message") or "")
        return "model" not in text.lower()
    return True


def status_error(
    response: httpx2.Response, body: object, *, secret: str | None = None
) -> openai.APIStatusError:
    """The exception of this package for an HTTP error answer.

    ``body`` is the decoded JSON (or text) of the answer; ``secret`` (the API key) is blanked
    out of the message in case a server echoes it back.
    """
    status = response.status_code
    body = redact(body, secret)
    message, code, data = _describe(status, body, response.reason_phrase or "error")
    message = f"{message} ({where(response.request)})"
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
        if _missing_path(body, code):
            message = f"{message}. {_PATH_HINT}"
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
    err._set_fields(data, read_rate_limit(response.headers))
    assert isinstance(err, openai.APIStatusError)
    return err


def stream_error(
    error: object, *, request: httpx2.Request, secret: str | None = None
) -> StreamErrorEvent:
    """The exception for an ``{"error": {...}}`` event received inside a 200 stream."""
    data = redact(error, secret)
    if isinstance(data, Mapping):
        code, text = _code(data), data.get("message") or "the server reported an error"
    else:
        code, text = None, str(data)
    label = "Runcrate API error in stream" + (f" ({code})" if code is not None else "")
    err = StreamErrorEvent(f"{label}: {text}", request=request, body=data)
    err._set_fields(data, None)
    return err


def connection_error(
    exc: BaseException, request: httpx2.Request | None, *, mid_stream: bool = False
) -> APIConnectionError:
    """The exception for a request that got no (whole) answer: a timeout, a refused or dropped
    connection; the message names the method and URL and what went wrong."""
    cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
    reason = str(cause).strip() or type(cause).__name__ if cause is not None else ""
    detail = f" ({reason})" if reason else ""
    timed_out = isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException))
    if mid_stream and timed_out:
        return APITimeoutError(
            f"The stream from {where(request)} stalled past the timeout{detail}; the partial "
            "answer was discarded.",
            request=request,
        )
    if mid_stream:
        return StreamInterruptedError(
            f"The connection dropped in the middle of the stream from {where(request)}{detail}; "
            "the partial answer was discarded.",
            request=request,
        )
    if timed_out:
        return APITimeoutError(
            f"The request to {where(request)} timed out{detail}.", request=request
        )
    return APIConnectionError(
        f"Could not reach {where(request)}{detail}: is the server running and base_url right?",
        request=request,
    )


def past_deadline(what: str, request: httpx2.Request | None = None) -> APITimeoutError:
    """The error for a call whose deadline has passed (closing its connection is the caller's)."""
    return APITimeoutError(
        f"{what} passed its deadline; nothing partial was returned.", request=request
    )
