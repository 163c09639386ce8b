"""The calls this package makes, each through the openai client's request path.

Bodies go out and come back as plain dicts (``cast_to=object``): the openai client still owns
retries, timeouts, auth and error statuses, but no pydantic model is built per response or per
stream chunk. Adapters parse the dicts with :mod:`runcrate_integrations.wire`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

# openai (slow to import) and errors (which imports it) are loaded inside the functions: by
# the time a request is made, a client exists and both are already in sys.modules.

JSONDict = dict[str, Any]


def _options(extra_headers: Mapping[str, str] | None) -> Any:
    return {"headers": dict(extra_headers)} if extra_headers else {}


def _require_dict(data: object, what: str) -> JSONDict:
    if not isinstance(data, dict):
        from .errors import ResponseFormatError

        shown = repr(data)[:200]
        raise ResponseFormatError(f"Runcrate returned a {what} that is not a JSON object: {shown}")
    return data


def _malformed(path: str, exc: json.JSONDecodeError) -> Exception:
    from .errors import ResponseFormatError

    return ResponseFormatError(f"Runcrate returned malformed JSON from {path}: {exc}")


def _stream_error(path: str, exc: Exception, secret: str | None) -> Exception | None:
    """The error to raise for a failure while reading a stream (None: re-raise as is)."""
    import openai

    from .errors import (
        ResponseFormatError,
        RuncrateError,
        StreamInterruptedError,
        make_stream_error,
    )

    if isinstance(exc, RuncrateError):
        return None
    if isinstance(exc, json.JSONDecodeError):
        return ResponseFormatError(f"Runcrate sent a stream line that is not JSON: {exc}")
    if isinstance(exc, openai.APIConnectionError) and not isinstance(
        exc, (openai.APITimeoutError, StreamInterruptedError)
    ):
        return StreamInterruptedError(
            f"The connection dropped in the middle of the stream from {path}; "
            "the partial answer was discarded.",
            request=exc.request,
        )
    if type(exc) is openai.APIError:  # an {"error": ...} event inside the stream
        return make_stream_error(exc.body, request=exc.request, secret=secret)
    return None


def post_json(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> JSONDict:
    """POST ``body`` and return the decoded JSON answer (typed errors on failure)."""
    try:
        data = client.post(path, body=dict(body), cast_to=object, options=_options(extra_headers))
    except json.JSONDecodeError as exc:
        raise _malformed(path, exc) from exc
    return _require_dict(data, f"response from {path}")


async def apost_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> JSONDict:
    """Async twin of :func:`post_json`."""
    try:
        data = await client.post(
            path, body=dict(body), cast_to=object, options=_options(extra_headers)
        )
    except json.JSONDecodeError as exc:
        raise _malformed(path, exc) from exc
    return _require_dict(data, f"response from {path}")


def get_json(client: openai.OpenAI, path: str) -> JSONDict:
    """GET ``path`` and return the decoded JSON answer."""
    return _require_dict(client.get(path, cast_to=object), f"response from {path}")


async def aget_json(client: openai.AsyncOpenAI, path: str) -> JSONDict:
    """Async twin of :func:`get_json`."""
    return _require_dict(await client.get(path, cast_to=object), f"response from {path}")


def stream_json(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> Generator[JSONDict, None, None]:
    """POST ``body`` with ``stream: true`` and yield each SSE chunk as a dict.

    A line that is not JSON raises :class:`ResponseFormatError`; a dropped connection raises
    :class:`StreamInterruptedError`. The response is closed however iteration ends.
    """
    import openai

    stream = client.post(
        path,
        body=dict(body),
        cast_to=object,
        stream=True,
        stream_cls=openai.Stream[object],
        options=_options(extra_headers),
    )
    with stream:
        try:
            for chunk in stream:
                yield _require_dict(chunk, "stream chunk")
        except (json.JSONDecodeError, openai.APIError) as exc:
            translated = _stream_error(path, exc, client.api_key)
            if translated is None:
                raise
            # An error event's original exception repeats its text unredacted: drop it.
            raise translated from (None if type(exc) is openai.APIError else exc)


async def astream_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[JSONDict, None]:
    """Async twin of :func:`stream_json`."""
    import openai

    stream = await client.post(
        path,
        body=dict(body),
        cast_to=object,
        stream=True,
        stream_cls=openai.AsyncStream[object],
        options=_options(extra_headers),
    )
    async with stream:
        try:
            async for chunk in stream:
                yield _require_dict(chunk, "stream chunk")
        except (json.JSONDecodeError, openai.APIError) as exc:
            translated = _stream_error(path, exc, client.api_key)
            if translated is None:
                raise
            # An error event's original exception repeats its text unredacted: drop it.
            raise translated from (None if type(exc) is openai.APIError else exc)
