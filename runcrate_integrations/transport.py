"""Sending: every request goes through the openai client's request path, and leaves typed.

Bodies go out and come back as plain dicts (``cast_to=object``): the openai client still owns
retries, timeouts, auth and error statuses, but no pydantic model is built per response or per
stream chunk. Whatever fails (status, network, timeout, a malformed body or stream line) is
raised as one of :mod:`runcrate_integrations.errors`' classes, all of them ``RuncrateError``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

# openai (slow to import) and errors (which imports it) are loaded inside the functions: by
# the time a request is made, a client exists and both are already in sys.modules.

JSONDict = dict[str, Any]
#: Turns this package's errors into an adapter's own classes (LangChain's dual hierarchy).
ErrorHook = Callable[[Exception], Exception]
#: The deadline (a ``time.monotonic()`` value) of the request being sent in this context; the
#: client caps each attempt's timeout to what is left and does not retry past it.
DEADLINE: ContextVar[float | None] = ContextVar("runcrate_deadline", default=None)


def past_deadline(what: str, request: Any = None) -> Exception:
    """The error for a call whose deadline has passed (closing its connection is the caller's)."""
    from .errors import APITimeoutError

    return APITimeoutError(f"{what} passed its deadline; nothing partial was returned.",
                           request=request)


@contextmanager
def _within(deadline: float | None, path: str) -> Iterator[None]:
    """Run the block (sending one request, retries included) under ``deadline``."""
    if deadline is None:
        yield
        return
    if time.monotonic() >= deadline:
        raise past_deadline(f"The call to {path}")
    import openai

    token = DEADLINE.set(deadline)
    try:
        yield
    except openai.APITimeoutError as exc:
        # The attempt's timeout was cut to what was left of the deadline, which ran out.
        if time.monotonic() >= deadline - 0.05:
            raise past_deadline(f"The call to {path}", exc.request) from exc
        raise
    finally:
        DEADLINE.reset(token)


def _options(headers: Mapping[str, str] | None, timeout: Any) -> Any:
    options: dict[str, Any] = {}
    if headers:
        options["headers"] = dict(headers)
    if timeout is not None:
        options["timeout"] = timeout
    return options


def _require_dict(data: object, what: str) -> JSONDict:
    if not isinstance(data, dict):
        from .errors import ResponseFormatError

        shown = repr(data)[:200]
        raise ResponseFormatError(f"Runcrate returned a {what} that is not a JSON object: {shown}")
    return data


def translate(
    exc: BaseException, path: str, secret: str | None, *, mid_stream: bool = False
) -> Exception | None:
    """This package's error for a failure while sending or reading (``None``: already typed).

    ``mid_stream``: the failure came while reading a stream that had started, so a dropped
    connection means a cut-off answer (:class:`StreamInterruptedError`).
    """
    import openai

    from .errors import (
        APIConnectionError,
        APITimeoutError,
        ResponseFormatError,
        RuncrateError,
        StreamInterruptedError,
        make_stream_error,
    )

    if isinstance(exc, RuncrateError):
        return None
    if isinstance(exc, json.JSONDecodeError) and mid_stream:
        return ResponseFormatError(f"Runcrate sent a stream line that is not JSON: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return ResponseFormatError(f"Runcrate returned malformed JSON from {path}: {exc}")
    if isinstance(exc, openai.APITimeoutError):
        return APITimeoutError(f"The request to {path} timed out.", request=exc.request)
    if isinstance(exc, openai.APIConnectionError) and mid_stream:
        return StreamInterruptedError(
            f"The connection dropped in the middle of the stream from {path}; "
            "the partial answer was discarded.",
            request=exc.request,
        )
    if isinstance(exc, openai.APIConnectionError):
        return APIConnectionError(
            f"Could not reach the server for {path}: {exc.message}", request=exc.request
        )
    if type(exc) is openai.APIError:  # an {"error": ...} event inside a stream
        return make_stream_error(exc.body, request=exc.request, secret=secret)
    return None


@contextmanager
def _typed(path: str, secret: str | None, *, mid_stream: bool = False) -> Iterator[None]:
    import openai

    try:
        yield
    except (json.JSONDecodeError, openai.APIError) as exc:
        new = translate(exc, path, secret, mid_stream=mid_stream)
        if new is None:
            raise
        # An error event's original exception repeats its text unredacted: drop it.
        raise new from (None if type(exc) is openai.APIError else exc)


def post_json(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: Any = None,
    deadline: float | None = None,
) -> JSONDict:
    """POST ``body`` and return the decoded JSON answer (``deadline``: a monotonic time)."""
    with _typed(path, client.api_key), _within(deadline, path):
        data = client.post(path, body=body, cast_to=object, options=_options(headers, timeout))
    return _require_dict(data, f"response from {path}")


async def apost_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: Any = None,
    deadline: float | None = None,
) -> JSONDict:
    """Async twin of :func:`post_json`."""
    with _typed(path, client.api_key), _within(deadline, path):
        data = await client.post(
            path, body=body, cast_to=object, options=_options(headers, timeout)
        )
    return _require_dict(data, f"response from {path}")


def get_json(client: openai.OpenAI, path: str) -> JSONDict:
    """GET ``path`` and return the decoded JSON answer."""
    with _typed(path, client.api_key):
        data = client.get(path, cast_to=object)
    return _require_dict(data, f"response from {path}")


async def aget_json(client: openai.AsyncOpenAI, path: str) -> JSONDict:
    """Async twin of :func:`get_json`."""
    with _typed(path, client.api_key):
        data = await client.get(path, cast_to=object)
    return _require_dict(data, f"response from {path}")


def stream_json(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: Any = None,
    deadline: float | None = None,
) -> Generator[JSONDict, None, None]:
    """POST ``body`` (with ``stream: true``) and yield each SSE chunk as a dict.

    The response is closed however iteration ends (exhausted, failed, the generator closed, or
    the ``deadline`` passed between two chunks).
    """
    import openai

    with _typed(path, client.api_key), _within(deadline, path):
        stream = client.post(
            path,
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=openai.Stream[object],
            options=_options(headers, timeout),
        )
    with stream, _typed(path, client.api_key, mid_stream=True):
        for chunk in stream:
            if deadline is not None and time.monotonic() > deadline:
                raise past_deadline(f"The stream from {path}")
            yield _require_dict(chunk, "stream chunk")


async def astream_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: Any = None,
    deadline: float | None = None,
) -> AsyncGenerator[JSONDict, None]:
    """Async twin of :func:`stream_json`."""
    import openai

    with _typed(path, client.api_key), _within(deadline, path):
        stream = await client.post(
            path,
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=openai.AsyncStream[object],
            options=_options(headers, timeout),
        )
    async with stream:
        with _typed(path, client.api_key, mid_stream=True):
            async for chunk in stream:
                if deadline is not None and time.monotonic() > deadline:
                    raise past_deadline(f"The stream from {path}")
                yield _require_dict(chunk, "stream chunk")


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
