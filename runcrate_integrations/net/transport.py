"""The one request loop: every request is paced, sent, retried, timed and its failures
translated here. Attempts go through the ``openai`` client's public ``post`` / ``get``
(``cast_to=httpx2.Response``, ``max_retries=0``), which owns auth, headers, bodies and pools."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .clients import AsyncPooled, Clients, SyncPooled, user_agent
from .headers import read_rate_limit, server_wait
from .ratelimit import RESET_CAP, RateLimiter, limiter_for

if TYPE_CHECKING:
    import httpx2

    from ..errors import ResponseFormatError

# openai (slow to import) and errors (which imports it) are imported inside the functions.

JSONDict = dict[str, Any]
#: The first retry's wait (less up to 25 % jitter), doubling up to :data:`BACKOFF_MAX` (s).
BACKOFF_START = 0.5
BACKOFF_MAX = 8.0
# Statuses after which a billed job's request may be sent again: it was not started.
_NOT_STARTED = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Request:
    """One request and how to send it. ``path``: relative to the base URL, or absolute;
    ``body``: the JSON body, or with ``files`` (openai's form) a multipart body's other fields;
    ``timeout`` (per attempt) and ``retries`` default to the settings'; ``deadline``: a
    ``time.monotonic()`` by which the call ends; ``stream``: the body is left unread;
    ``billed``: it starts a billed job, so it is not resent once its body may have gone out."""

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


def deadline_in(seconds: float | None) -> float | None:
    """A deadline ``seconds`` from now (``time.monotonic()``), or ``None``."""
    return time.monotonic() + seconds if seconds is not None else None


def backoff(attempt: int) -> float:
    """The wait before retry ``attempt + 1``, jittered so callers failing together do not
    retry together."""
    return min(BACKOFF_START * 2.0**attempt, BACKOFF_MAX) * (1 - 0.25 * random.random())


class _Call:
    """One call's attempts: all that the sync and async loops share (not what they await)."""

    __slots__ = ("attempt", "external", "limiter", "pacer", "request", "retries", "settings")

    def __init__(self, clients: Clients, request: Request) -> None:
        settings = clients.settings
        self.request = request
        self.settings = settings
        path = request.path  # another host (a media link) is fetched without key or pacing
        self.external = "://" in path and urlsplit(path)[:2] != urlsplit(settings.base_url)[:2]
        self.limiter: RateLimiter | None = None if self.external else limiter_for(settings)
        self.pacer = self.limiter if settings.rate_limits else None
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
                raise past_deadline(f"The call to {request.method} {request.path}")
            if timeout is None or isinstance(timeout, (int, float)):
                timeout = left if timeout is None else min(float(timeout), left)
            else:  # an httpx2.Timeout: each part cut
                cut = {k: left if v is None else min(v, left) for k, v in timeout.as_dict().items()}
                timeout = type(timeout)(**cut)
        options: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
        headers = dict(request.headers) if request.headers else {}
        if request.files is not None:
            headers.setdefault("Content-Type", "multipart/form-data")
        if headers:
            options["headers"] = headers
        if request.params:
            options["params"] = dict(request.params)
        return options

    def start(self, pooled: SyncPooled | AsyncPooled, options: dict[str, Any]) -> Any:
        """Send one attempt: the response, or with async clients the awaitable of it."""
        import httpx2

        request = self.request
        if self.external:  # another host: no key, no default headers
            return pooled.http.get(
                request.path, headers={"User-Agent": user_agent()}, timeout=options["timeout"]
            )
        how: dict[str, Any] = {"cast_to": httpx2.Response, "options": options}
        if request.method == "GET":
            return pooled.api.get(request.path, stream=request.stream, **how)
        return pooled.api.post(
            request.path, body=request.body, files=request.files, stream=request.stream, **how
        )

    def failed(self, exc: BaseException, seq: int | None) -> float:
        """No answer (connection error, timeout): the wait before a retry, or raises."""
        import httpx2

        from ..errors import connection_error, past_deadline, where

        if self.limiter is not None:
            self.limiter.failed(seq)
        try:
            request = getattr(exc, "request", None)
        except RuntimeError:  # httpx2 raises it when the request is unset
            request = None
        deadline = self.request.deadline
        if deadline is not None and time.monotonic() >= deadline - 0.05:
            raise past_deadline(f"The call to {where(request)}", request) from exc
        error = connection_error(exc, request)
        cause = exc if isinstance(exc, httpx2.HTTPError) else exc.__cause__
        never_sent = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
        if self.request.billed and not isinstance(cause, never_sent):
            raise error from exc  # its body may have started a job: never sent twice
        return self._retry(0.0, error, exc)

    def answered(self, response: httpx2.Response, seq: int | None) -> float | None:
        """An answer: ``None`` on success, else the wait before a retry, or raises its error.
        The body of an error answer must have been read."""
        if self.limiter is not None:
            self.limiter.observe(response.headers, response.status_code, seq)
        status = response.status_code
        if status < 400:
            return None
        from ..errors import retryable_status, status_error

        try:
            body: object = json.loads(response.text)
        except ValueError:
            body = response.text
        error = status_error(response, body, secret=self.settings.secret)
        verdict = response.headers.get("x-should-retry")
        retry = verdict == "true" or (verdict != "false" and retryable_status(status))
        if status == 402 or not retry or (self.request.billed and status not in _NOT_STARTED):
            raise error from None
        hint = min(server_wait(read_rate_limit(response.headers), status), RESET_CAP)
        return self._retry(hint, error, None)

    def _retry(self, hint: float, error: Exception, cause: BaseException | None) -> float:
        """The wait before the next attempt; ``error`` (from ``cause``) if none is left."""
        from ..errors import past_deadline

        if self.attempt >= self.retries:
            raise error from cause
        wait = max(hint, backoff(self.attempt))
        self.attempt += 1
        deadline = self.request.deadline
        if deadline is not None and time.monotonic() + wait >= deadline:
            raise past_deadline(
                f"The call to {self.request.method} {self.request.path} "
                f"(its retry would wait {wait:.2f} s)"
            ) from error
        return wait


def send(clients: Clients, request: Request) -> httpx2.Response:
    """Send ``request`` until it succeeds or the retry rule gives up: the 2xx response (body
    unread when ``stream``: close it when done); anything else raises. Retried: no answer,
    408/409/429/5xx, ``x-should-retry: true``; never a 402, nor a billed request whose body went
    out (unless answered 429/503), nor a stream past its headers. A retry waits the larger of
    the server's hint and the backoff; nothing starts past the deadline."""
    import httpx2
    import openai

    call = _Call(clients, request)
    while True:
        seq = call.pacer.acquire(request.deadline) if call.pacer else None
        options = call.options()
        try:
            response: httpx2.Response = call.start(clients.sync(), options)
        except openai.APIStatusError as exc:
            response = exc.response
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            time.sleep(call.failed(exc, seq))
            continue
        if (wait := call.answered(response, seq)) is None:
            return response
        time.sleep(wait)


async def asend(clients: Clients, request: Request) -> httpx2.Response:
    """Async twin of :func:`send` (close a streamed response with ``aclose``)."""
    import httpx2
    import openai

    call = _Call(clients, request)
    while True:
        seq = await call.pacer.aacquire(request.deadline) if call.pacer else None
        options = call.options()
        try:
            response: httpx2.Response = await call.start(clients.async_(), options)
        except openai.APIStatusError as exc:
            response = exc.response
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            await asyncio.sleep(call.failed(exc, seq))
            continue
        if (wait := call.answered(response, seq)) is None:
            return response
        await asyncio.sleep(wait)


#: Turns this package's errors into an adapter's own classes (LangChain's dual hierarchy).
ErrorHook = Callable[[Exception], Exception]


@contextmanager
def translating(hook: ErrorHook | None) -> Iterator[None]:
    """Re-raise errors from the block as ``hook`` maps them (an adapter's own classes)."""
    try:
        yield
    except Exception as exc:
        new = exc if hook is None else hook(exc)
        if new is exc:
            raise
        raise new from exc


# ---------------------------------------------------------------------------- bodies


def _unusable(response: httpx2.Response, what: str) -> ResponseFormatError:
    """The error for a 2xx answer this package cannot use: ``<method url> <what>``."""
    from ..errors import ResponseFormatError, where

    return ResponseFormatError(f"{where(response.request)} {what}", response=response)


def json_body(response: httpx2.Response) -> JSONDict:
    """The JSON object of an answer; anything else raises :class:`ResponseFormatError`."""
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        kind = response.headers.get("content-type") or "no content type"
        what = f"malformed JSON ({exc})" if "json" in kind else f"{kind!r}, not a JSON object"
        raise _unusable(response, f"answered {what}: {response.text[:200]!r}") from None
    if not isinstance(data, dict):
        what = f"a JSON {type(data).__name__}, not a JSON object: {repr(data)[:200]}"
        raise _unusable(response, f"answered {what}")
    return data


def send_json(clients: Clients, request: Request) -> JSONDict:
    """:func:`send`, then the answer's JSON object."""
    return json_body(send(clients, request))


async def asend_json(clients: Clients, request: Request) -> JSONDict:
    """Async twin of :func:`send_json`."""
    return json_body(await asend(clients, request))


# ---------------------------------------------------------------------------- streams


@dataclass(slots=True)
class _Events:
    """Server-sent events to JSON objects, one line at a time (shared by sync and async)."""

    response: httpx2.Response
    secret: str | None
    deadline: float | None
    whole: Callable[[JSONDict], JSONDict] | None
    event: str | None = None
    data: list[str] = field(default_factory=list)

    def __enter__(self) -> _Events:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> bool:
        """While reading: ``[DONE]`` (StopIteration) ends the stream; a dropped connection
        raises :class:`~.errors.StreamInterruptedError`."""
        import httpx2

        from ..errors import connection_error

        if isinstance(exc, httpx2.TransportError):
            raise connection_error(exc, self.response.request, mid_stream=True) from exc
        return kind is StopIteration

    def is_stream(self) -> bool:
        """Whether the answer is an event stream (or has no content type)."""
        content_type = (self.response.headers.get("content-type") or "").lower()
        return not content_type or content_type.startswith("text/event-stream")

    def body(self) -> JSONDict:
        """The one (read) body of an answer that is not a stream, as ``whole`` makes it into an
        event: a server that ignored ``stream`` sent it. Anything else raises."""
        response = self.response
        kind = response.headers.get("content-type")
        if "json" not in (kind or "").lower():  # an HTML error page from a proxy, say
            what = f"{kind!r} instead of an event stream: {response.text[:200]!r}"
            raise _unusable(response, f"answered {what}")
        body = json_body(response)
        if self.whole is None:
            return body
        try:
            return self.whole(body)
        except ValueError as exc:
            what = f"one {kind!r} body instead of an event stream, and it is not an answer"
            raise _unusable(response, f"answered {what}: {exc}") from None

    def line(self, line: str) -> JSONDict | None:
        """Feed one line ("" at the end); the event it completes, if any (``[DONE]`` raises
        StopIteration)."""
        if line:
            name, _, value = line.partition(":")  # a comment (":...") has no name
            if name == "data":
                self.data.append(value.removeprefix(" "))
            elif name == "event":
                self.event = value.removeprefix(" ")
            return None
        if not self.data:
            self.event = None
            return None
        from ..errors import past_deadline, redact, stream_error, where

        data, event = "\n".join(self.data), self.event
        self.data, self.event = [], None
        if data == "[DONE]":
            raise StopIteration
        response = self.response
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise past_deadline(f"The stream from {where(response.request)}")
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            what = f"({exc}): {redact(data, self.secret)[:200]!r}"
            raise _unusable(response, f"sent a stream line that is not JSON {what}") from None
        if event == "error" or (isinstance(chunk, dict) and chunk.get("error")):
            body = chunk.get("error", chunk) if isinstance(chunk, dict) else chunk
            raise stream_error(body, request=response.request, secret=self.secret)
        if not isinstance(chunk, dict):
            what = f"not a JSON object: {repr(chunk)[:200]}"
            raise _unusable(response, f"sent a stream chunk that is {what}")
        return chunk


def iter_events(
    response: httpx2.Response,
    *,
    secret: str | None = None,
    deadline: float | None = None,
    whole: Callable[[JSONDict], JSONDict] | None = None,
) -> Generator[JSONDict, None, None]:
    """The JSON events of a streamed answer, closing it however iteration ends. One JSON body
    (the server ignored ``stream``) yields what ``whole`` makes of it (a ``ValueError``: not an
    answer). A dropped connection raises :class:`~.errors.StreamInterruptedError`."""
    events = _Events(response, secret, deadline, whole)
    try:
        if not events.is_stream():
            response.read()
            yield events.body()
            return
        with events:
            for line in itertools.chain(response.iter_lines(), [""]):
                if (chunk := events.line(line)) is not None:
                    yield chunk
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
    events = _Events(response, secret, deadline, whole)
    try:
        if not events.is_stream():
            await response.aread()
            yield events.body()
            return
        with events:
            async for line in response.aiter_lines():
                if (chunk := events.line(line)) is not None:
                    yield chunk
            if (chunk := events.line("")) is not None:
                yield chunk
    finally:
        await response.aclose()
