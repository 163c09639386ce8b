"""The one request loop: every request of the package is paced, sent, retried, timed and
translated here, for sync and async, chat, embeddings, media and the catalog alike.

A :class:`Request` says what to send and how: per-call retries, timeout and deadline, whether
to leave the body unread (a stream), whether it starts a billed job. :func:`send` /
:func:`asend` run its attempts through the ``openai`` client's public ``post`` / ``get``
(``cast_to=httpx2.Response``, ``max_retries=0``), so the client still owns auth, headers,
multipart bodies and connection pools, and this loop owns the rest:

* **pacing**: each attempt first asks the process's rate limiter for this base URL and key,
  and every answer's headers are shown to it;
* **the retry rule**: connection errors, timeouts, 408/409/429/5xx and ``x-should-retry:
  true``; never a 402. A request that starts a billed job is not resent once its body went
  out, unless the server answered 429 or 503. A stream is retried only before its headers
  arrive: once it has started it is never silently restarted;
* **the wait** before a retry: the larger of the server's hint (read by
  :func:`~runcrate_integrations.errors.read_rate_limit`) and jittered exponential backoff;
* **the deadline**: no attempt, wait or retry starts past it, and each attempt's timeout is
  cut to what is left;
* **errors**: whatever fails leaves as one of :mod:`runcrate_integrations.errors`' classes.

A URL on another host than the base URL (a temporary media link) is fetched through the same
pooled ``httpx2`` client, without the ``Authorization`` header and without pacing.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .clients import Clients, user_agent
from .headers import read_rate_limit, server_wait
from .ratelimit import RESET_CAP, RateLimiter, limiter_for

if TYPE_CHECKING:
    import httpx2

    from ..errors import ResponseFormatError

# openai (slow to import) and errors (which imports it) are loaded inside the functions: the
# package imports quickly, and by the time a request is made both are in sys.modules.

JSONDict = dict[str, Any]
#: The first retry waits about this long (less up to 25 % jitter), doubling after, at most
#: :data:`BACKOFF_MAX` (seconds).
BACKOFF_START = 0.5
BACKOFF_MAX = 8.0
# Statuses after which a billed job's request may be sent again: it was not started.
_NOT_STARTED = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Request:
    """One request and how to send it.

    ``path`` is relative to the base URL (or an absolute URL). ``body`` is the JSON body, or
    with ``files`` (openai's ``files=`` form, e.g. ``{"file": (name, data, mime)}``) the other
    fields of a multipart body. ``timeout`` (per attempt) and ``retries`` default to the
    client settings'; ``deadline`` is a ``time.monotonic()`` by which the whole call must end.
    ``stream`` leaves the body unread (read it with :func:`iter_events`). ``billed``: the
    request starts a billed job, so it is not resent once its body may have reached the server.
    """

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    files: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    stream: bool = False
    timeout: Any = None
    retries: int | None = None
    deadline: float | None = None
    billed: bool = False

    @property
    def label(self) -> str:
        """``POST /chat/completions``: how messages name this request before it has a URL."""
        return f"{self.method} {self.path}"


def deadline_in(seconds: float | None) -> float | None:
    """A deadline ``seconds`` from now (``time.monotonic()``), or ``None``."""
    return time.monotonic() + seconds if seconds is not None else None


def backoff(attempt: int) -> float:
    """The wait before retry number ``attempt + 1``: exponential, with up to 25 % jitter so
    that callers failing together do not retry together."""
    return min(BACKOFF_START * 2.0**attempt, BACKOFF_MAX) * (1 - 0.25 * random.random())


def _other_host(path: str, base_url: str) -> bool:
    if "://" not in path:
        return False
    target, base = urlsplit(path), urlsplit(base_url)
    return (target.scheme, target.netloc) != (base.scheme, base.netloc)


def _capped(timeout: Any, left: float) -> Any:
    """``timeout`` cut to ``left`` seconds (each part of an ``httpx2.Timeout``)."""
    if timeout is None or isinstance(timeout, (int, float)):
        return left if timeout is None else min(float(timeout), left)
    import httpx2

    parts = {k: left if v is None else min(v, left) for k, v in timeout.as_dict().items()}
    return httpx2.Timeout(**parts)


def _error_body(response: httpx2.Response) -> object:
    text = response.text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _request_of(exc: BaseException) -> httpx2.Request | None:
    try:
        request = getattr(exc, "request", None)  # httpx2 raises RuntimeError when unset
    except RuntimeError:
        return None
    return request


class _Call:
    """One call's attempts: everything the sync and async loops share (they differ only in
    what they await)."""

    __slots__ = ("attempt", "external", "limiter", "pace", "request", "retries", "settings")

    def __init__(self, clients: Clients, request: Request) -> None:
        settings = clients.settings
        self.request = request
        self.settings = settings
        self.external = _other_host(request.path, settings.base_url)
        self.limiter: RateLimiter | None = None if self.external else limiter_for(settings)
        self.pace = settings.rate_limits and not self.external
        self.retries = settings.max_retries if request.retries is None else request.retries
        self.attempt = 0

    def options(self) -> dict[str, Any]:
        """openai's per-request options for the next attempt (checks the deadline first)."""
        from ..errors import past_deadline

        request = self.request
        timeout = self.settings.timeout if request.timeout is None else request.timeout
        if request.deadline is not None:
            left = request.deadline - time.monotonic()
            if left <= 0:
                raise past_deadline(f"The call to {request.label}")
            timeout = _capped(timeout, left)
        options: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
        headers = dict(request.headers) if request.headers else {}
        if request.files is not None:
            headers.setdefault("Content-Type", "multipart/form-data")
        if headers:
            options["headers"] = headers
        if request.params:
            options["params"] = dict(request.params)
        return options

    def failed(self, exc: BaseException, seq: int | None) -> tuple[Exception, float | None]:
        """No answer (connection error, timeout): the error, and the wait before a retry
        (``None``: raise it)."""
        import httpx2

        from ..errors import connection_error, past_deadline, where

        if self.limiter is not None:
            self.limiter.failed(seq)
        request = _request_of(exc)
        deadline = self.request.deadline
        if deadline is not None and time.monotonic() >= deadline - 0.05:
            return past_deadline(f"The call to {where(request)}", request), None
        error = connection_error(exc, request)
        if self.request.billed:
            cause = exc.__cause__ if not isinstance(exc, httpx2.HTTPError) else exc
            never_sent = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
            if not isinstance(cause, never_sent):
                return error, None  # its body may have started a job: never sent twice
        return error, self._wait(0.0, error)

    def answered(
        self, response: httpx2.Response, seq: int | None
    ) -> tuple[Exception | None, float | None]:
        """An answer: ``(None, None)`` on success, else the error and the wait before a retry
        (``None``: raise it). The body of an error answer must have been read."""
        if self.limiter is not None:
            self.limiter.observe(response.headers, response.status_code, seq)
        status = response.status_code
        if status < 400:
            return None, None
        from ..errors import retryable_status, status_error

        error = status_error(response, _error_body(response), secret=self.settings.secret)
        verdict = response.headers.get("x-should-retry")
        retry = verdict == "true" or (verdict != "false" and retryable_status(status))
        if status == 402 or not retry or (self.request.billed and status not in _NOT_STARTED):
            return error, None
        hint = min(server_wait(read_rate_limit(response.headers), status), RESET_CAP)
        return error, self._wait(hint, error)

    def _wait(self, hint: float, error: Exception) -> float | None:
        from ..errors import past_deadline

        if self.attempt >= self.retries:
            return None
        wait = max(hint, backoff(self.attempt))
        self.attempt += 1
        deadline = self.request.deadline
        if deadline is not None and time.monotonic() + wait >= deadline:
            raise past_deadline(
                f"The call to {self.request.label} (its retry would wait {wait:.2f} s)"
            ) from error
        return wait


def _attempt(clients: Clients, call: _Call, options: dict[str, Any]) -> httpx2.Response:
    import httpx2

    request = call.request
    if call.external:  # another host: no key, no default headers
        return clients.sync().http.get(
            request.path, headers={"User-Agent": user_agent()}, timeout=options["timeout"]
        )
    api = clients.sync().api
    # openai types options as its RequestOptions (a TypedDict of a private module): a plain dict.
    opts: Any = options
    if request.method == "GET":
        return api.get(request.path, cast_to=httpx2.Response, options=opts, stream=request.stream)
    return api.post(
        request.path,
        cast_to=httpx2.Response,
        body=request.body,
        files=request.files,
        options=opts,
        stream=request.stream,
    )


async def _aattempt(clients: Clients, call: _Call, options: dict[str, Any]) -> httpx2.Response:
    import httpx2

    request = call.request
    if call.external:
        return await clients.async_().http.get(
            request.path, headers={"User-Agent": user_agent()}, timeout=options["timeout"]
        )
    api = clients.async_().api
    opts: Any = options
    if request.method == "GET":
        return await api.get(
            request.path, cast_to=httpx2.Response, options=opts, stream=request.stream
        )
    return await api.post(
        request.path,
        cast_to=httpx2.Response,
        body=request.body,
        files=request.files,
        options=opts,
        stream=request.stream,
    )


def send(clients: Clients, request: Request) -> httpx2.Response:
    """Send ``request`` until it succeeds or the retry rule gives up; the 2xx response (its body
    unread when ``request.stream``: close it when done). Anything else raises."""
    import httpx2
    import openai

    call = _Call(clients, request)
    while True:
        seq = call.limiter.acquire(request.deadline) if call.pace and call.limiter else None
        options = call.options()
        try:
            response = _attempt(clients, call, options)
        except openai.APIStatusError as exc:
            response = exc.response
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            error, wait = call.failed(exc, seq)
            if wait is None:
                raise error from exc
            time.sleep(wait)
            continue
        failure, wait = call.answered(response, seq)
        if failure is None:
            return response
        if wait is None:
            raise failure from None
        time.sleep(wait)


async def asend(clients: Clients, request: Request) -> httpx2.Response:
    """Async twin of :func:`send` (close a streamed response with ``aclose``)."""
    import httpx2
    import openai

    call = _Call(clients, request)
    while True:
        seq = await call.limiter.aacquire(request.deadline) if call.pace and call.limiter else None
        options = call.options()
        try:
            response = await _aattempt(clients, call, options)
        except openai.APIStatusError as exc:
            response = exc.response
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            error, wait = call.failed(exc, seq)
            if wait is None:
                raise error from exc
            await asyncio.sleep(wait)
            continue
        if call.external and response.status_code >= 400:
            await response.aread()
        failure, wait = call.answered(response, seq)
        if failure is None:
            return response
        if wait is None:
            raise failure from None
        await asyncio.sleep(wait)


#: Turns this package's errors into an adapter's own classes (LangChain's dual hierarchy).
ErrorHook = Callable[[Exception], Exception]


@contextmanager
def translating(hook: ErrorHook | None) -> Iterator[None]:
    """Re-raise errors from the block as ``hook`` maps them (an adapter's own classes)."""
    if hook is None:
        yield
        return
    try:
        yield
    except Exception as exc:
        new = hook(exc)
        if new is exc:
            raise
        raise new from exc


# ---------------------------------------------------------------------------- bodies


def json_body(response: httpx2.Response) -> JSONDict:
    """The JSON object of an answer; anything else raises :class:`ResponseFormatError` saying
    what came back."""
    from ..errors import ResponseFormatError, where

    try:
        data = json.loads(response.content)
    except ValueError as exc:
        kind = response.headers.get("content-type") or "no content type"
        what = f"malformed JSON ({exc})" if "json" in kind else f"{kind!r}, not a JSON object"
        raise ResponseFormatError(
            f"{where(response.request)} answered {what}: {response.text[:200]!r}",
            response=response,
        ) from None
    if not isinstance(data, dict):
        raise ResponseFormatError(
            f"{where(response.request)} answered a JSON {type(data).__name__}, not a JSON "
            f"object: {repr(data)[:200]}",
            response=response,
        )
    return data


def send_json(clients: Clients, request: Request) -> JSONDict:
    """:func:`send`, then the answer's JSON object."""
    return json_body(send(clients, request))


async def asend_json(clients: Clients, request: Request) -> JSONDict:
    """Async twin of :func:`send_json`."""
    return json_body(await asend(clients, request))


# ---------------------------------------------------------------------------- streams


class _Events:
    """Server-sent events to JSON objects, one line at a time (shared by sync and async)."""

    __slots__ = ("data", "deadline", "event", "response", "secret")

    def __init__(self, response: httpx2.Response, secret: str | None, deadline: float | None):
        self.response = response
        self.secret = secret
        self.deadline = deadline
        self.event: str | None = None
        self.data: list[str] = []

    def kind(self) -> str:
        """``"sse"``; ``"json"`` for a server that ignored ``stream`` and sent one body; else
        ``"other"`` (an HTML error page from a proxy, say)."""
        content_type = (self.response.headers.get("content-type") or "").lower()
        if not content_type or content_type.startswith("text/event-stream"):
            return "sse"
        return "json" if "json" in content_type else "other"

    def line(self, line: str) -> JSONDict | None:
        """Feed one line; the event it completes, if any (``[DONE]`` raises StopIteration)."""
        if line:
            if line.startswith(":"):
                return None
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self.data.append(value)
            elif name == "event":
                self.event = value
            return None
        return self.flush()

    def flush(self) -> JSONDict | None:
        from ..errors import ResponseFormatError, past_deadline, redact, stream_error, where

        if not self.data:
            self.event = None
            return None
        data, event = "\n".join(self.data), self.event
        self.data, self.event = [], None
        if data == "[DONE]":
            raise StopIteration
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise past_deadline(f"The stream from {where(self.response.request)}")
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ResponseFormatError(
                f"{where(self.response.request)} sent a stream line that is not JSON "
                f"({exc}): {redact(data, self.secret)[:200]!r}",
                response=self.response,
            ) from None
        if event == "error" or (isinstance(chunk, dict) and chunk.get("error")):
            body = chunk.get("error", chunk) if isinstance(chunk, dict) else chunk
            raise stream_error(body, request=self.response.request, secret=self.secret)
        if not isinstance(chunk, dict):
            raise ResponseFormatError(
                f"{where(self.response.request)} sent a stream chunk that is not a JSON "
                f"object: {repr(chunk)[:200]}",
                response=self.response,
            )
        return chunk


def _not_a_stream(response: httpx2.Response) -> ResponseFormatError:
    from ..errors import ResponseFormatError, where

    kind = response.headers.get("content-type")
    return ResponseFormatError(
        f"{where(response.request)} answered {kind!r} instead of an event stream: "
        f"{response.text[:200]!r}",
        response=response,
    )


def _whole(response: httpx2.Response, whole: Callable[[JSONDict], JSONDict] | None) -> JSONDict:
    from ..errors import ResponseFormatError, where

    body = json_body(response)
    if whole is None:
        return body
    try:
        return whole(body)
    except ValueError as exc:
        kind = response.headers.get("content-type")
        raise ResponseFormatError(
            f"{where(response.request)} answered one {kind!r} body instead of an event stream, "
            f"and it is not an answer: {exc}",
            response=response,
        ) from None


def iter_events(
    response: httpx2.Response,
    *,
    secret: str | None = None,
    deadline: float | None = None,
    whole: Callable[[JSONDict], JSONDict] | None = None,
) -> Generator[JSONDict, None, None]:
    """The JSON events of a streamed answer, closing it however iteration ends.

    A server that ignored ``stream`` and answered one JSON body yields that body, as ``whole``
    makes it into an event (its ``ValueError``: the body is not an answer, which raises
    :class:`~runcrate_integrations.errors.ResponseFormatError` naming the content type). A
    dropped connection raises :class:`~runcrate_integrations.errors.StreamInterruptedError`.
    """
    import httpx2

    from ..errors import connection_error

    events = _Events(response, secret, deadline)
    try:
        if events.kind() == "json":
            response.read()
            yield _whole(response, whole)
            return
        if events.kind() == "other":
            response.read()
            raise _not_a_stream(response)
        try:
            for line in response.iter_lines():
                chunk = events.line(line)
                if chunk is not None:
                    yield chunk
            chunk = events.flush()
            if chunk is not None:
                yield chunk
        except StopIteration:
            return
        except httpx2.TransportError as exc:
            raise connection_error(exc, response.request, mid_stream=True) from exc
    finally:
        response.close()


async def aiter_events(
    response: httpx2.Response,
    *,
    secret: str | None = None,
    deadline: float | None = None,
    whole: Callable[[JSONDict], JSONDict] | None = None,
) -> AsyncGenerator[JSONDict, None]:
    """Async twin of :func:`iter_events`."""
    import httpx2

    from ..errors import connection_error

    events = _Events(response, secret, deadline)
    try:
        if events.kind() == "json":
            await response.aread()
            yield _whole(response, whole)
            return
        if events.kind() == "other":
            await response.aread()
            raise _not_a_stream(response)
        try:
            async for line in response.aiter_lines():
                chunk = events.line(line)
                if chunk is not None:
                    yield chunk
            chunk = events.flush()
            if chunk is not None:
                yield chunk
        except StopIteration:
            return
        except httpx2.TransportError as exc:
            raise connection_error(exc, response.request, mid_stream=True) from exc
    finally:
        await response.aclose()
