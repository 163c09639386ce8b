"""The calls this package makes, each through the openai client's request path.

Bodies go out and come back as plain dicts (``cast_to=object``): the openai client still owns
retries, timeouts, auth and error statuses, but no pydantic model is built per response or per
stream chunk. Adapters parse the dicts with :mod:`runcrate_integrations.wire`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, cast

import openai

from .errors import ResponseFormatError, StreamInterruptedError

JSONDict = dict[str, Any]

_SyncStream = openai.Stream[object]
_AsyncStream = openai.AsyncStream[object]


def _options(extra_headers: Mapping[str, str] | None) -> Any:
    return {"headers": dict(extra_headers)} if extra_headers else {}


def _require_dict(data: object, what: str) -> JSONDict:
    if not isinstance(data, dict):
        shown = repr(data)[:200]
        raise ResponseFormatError(f"Runcrate returned a {what} that is not a JSON object: {shown}")
    return data


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
        raise ResponseFormatError(f"Runcrate returned malformed JSON from {path}: {exc}") from exc
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
        raise ResponseFormatError(f"Runcrate returned malformed JSON from {path}: {exc}") from exc
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
) -> Iterator[JSONDict]:
    """POST ``body`` with ``stream: true`` and yield each SSE chunk as a dict.

    A line that is not JSON raises :class:`ResponseFormatError`; a dropped connection raises
    :class:`StreamInterruptedError`. The response is closed however iteration ends.
    """
    stream = client.post(
        path,
        body=dict(body),
        cast_to=object,
        stream=True,
        stream_cls=_SyncStream,
        options=_options(extra_headers),
    )
    with stream:
        try:
            for chunk in stream:
                yield _require_dict(chunk, "stream chunk")
        except json.JSONDecodeError as exc:
            raise ResponseFormatError(
                f"Runcrate sent a stream line that is not JSON: {exc}"
            ) from exc
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError as exc:
            if isinstance(exc, StreamInterruptedError):
                raise
            raise StreamInterruptedError(
                f"The connection dropped in the middle of the stream from {path}; "
                "the partial answer was discarded.",
                request=exc.request,
            ) from exc


async def astream_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> AsyncIterator[JSONDict]:
    """Async twin of :func:`stream_json`."""
    stream = cast(
        _AsyncStream,
        await client.post(
            path,
            body=dict(body),
            cast_to=object,
            stream=True,
            stream_cls=_AsyncStream,
            options=_options(extra_headers),
        ),
    )
    async with stream:
        try:
            async for chunk in stream:
                yield _require_dict(chunk, "stream chunk")
        except json.JSONDecodeError as exc:
            raise ResponseFormatError(
                f"Runcrate sent a stream line that is not JSON: {exc}"
            ) from exc
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError as exc:
            if isinstance(exc, StreamInterruptedError):
                raise
            raise StreamInterruptedError(
                f"The connection dropped in the middle of the stream from {path}; "
                "the partial answer was discarded.",
                request=exc.request,
            ) from exc
