"""Offline HTTP for unit tests: an ``httpx2.MockTransport`` that records what was sent.

Usage::

    rec = Recorder([completion_body("hi")])
    llm = ChatRuncrate(model="m", api_key="rc_live_test", http_client=rec.client())
    llm.invoke("hello")
    assert rec.bodies[0]["messages"] == [{"role": "user", "content": "hello"}]
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx2

JSONDict = dict[str, Any]
Reply = httpx2.Response | JSONDict | Callable[[httpx2.Request], httpx2.Response]


def completion_body(
    content: str | None = "Hello!",
    *,
    tool_calls: Sequence[JSONDict] | None = None,
    reasoning_content: str | None = None,
    finish_reason: str | None = None,
    usage: JSONDict | None = None,
    model: str = "deepseek/deepseek-v3.2",
    logprobs: Any = None,
) -> JSONDict:
    """A realistic ``chat.completion`` answer."""
    message: JSONDict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1764000000,
        "model": model,
        "system_fingerprint": "fp_rc1",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def tool_call(name: str, arguments: str | JSONDict, call_id: str = "call_1") -> JSONDict:
    """One OpenAI tool call as it appears in a message."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def chunk(
    delta: JSONDict | None = None,
    *,
    finish_reason: str | None = None,
    usage: JSONDict | None = None,
    model: str = "deepseek/deepseek-v3.2",
) -> JSONDict:
    """One ``chat.completion.chunk``; ``delta=None`` with ``usage`` gives the final usage chunk."""
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    out: JSONDict = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": model,
        "system_fingerprint": "fp_rc1",
        "choices": choices,
    }
    if usage is not None:
        out["usage"] = usage
    return out


def tool_call_chunks(name: str, pieces: Iterable[str], *, first: str = "") -> list[JSONDict]:
    """A streamed tool call: its header (id, name and ``first`` argument text), each further
    piece of its arguments, then the ``tool_calls`` finish."""
    out = [chunk({"role": "assistant", "tool_calls": [{"index": 0, **tool_call(name, first)}]})]
    out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
    out.append(chunk({}, finish_reason="tool_calls"))
    return out


def text_chunks(pieces: Iterable[str], *, usage: bool = True) -> list[JSONDict]:
    """A whole streamed answer: role, text pieces, finish, then (optionally) usage."""
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": p}) for p in pieces]
    out.append(chunk({}, finish_reason="stop"))
    if usage:
        out.append(chunk(usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}))
    return out


def sse(chunks: Iterable[JSONDict], *, done: bool = True) -> httpx2.Response:
    """An SSE response carrying ``chunks`` (and ``[DONE]``)."""
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    if done:
        text += "data: [DONE]\n\n"
    return httpx2.Response(
        200, content=text.encode(), headers={"content-type": "text/event-stream"}
    )


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    """Runcrate's error body with ``status``."""
    return httpx2.Response(
        status, json={"error": {"code": code, "message": message}}, headers=headers
    )


class Recorder:
    """Answers requests from a queue of replies and keeps every request it saw."""

    def __init__(
        self, replies: Sequence[Reply] = (), *, models: Sequence[JSONDict] | None = ()
    ) -> None:
        self.replies: list[Reply] = list(replies)
        self.requests: list[httpx2.Request] = []
        # GET /models (the catalog an adapter reads on first use) is answered from ``models``
        # and kept apart, so it never takes a scripted reply; ``models=None`` queues it too.
        self.models = models
        self.catalog_requests: list[httpx2.Request] = []

    def add(self, *replies: Reply) -> Recorder:
        self.replies.extend(replies)
        return self

    @property
    def bodies(self) -> list[JSONDict]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def body(self) -> JSONDict:
        """The last request's JSON body."""
        return self.bodies[-1]

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        if (
            self.models is not None
            and request.method == "GET"
            and request.url.path.endswith("/models")
        ):
            self.catalog_requests.append(request)
            return httpx2.Response(200, json={"object": "list", "data": list(self.models)})
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request #{len(self.requests)}: {request.url}")
        reply = self.replies.pop(0)
        if callable(reply):
            return reply(request)
        if isinstance(reply, httpx2.Response):
            return reply
        return httpx2.Response(200, json=reply)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request)

    async def ahandler(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request)

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))

    def async_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.ahandler))


def feed(sink: Any, fold: Any, raws: Iterable[JSONDict]) -> list[Any]:
    """What an engine ``ChunkSink`` emits for ``raws`` (folded into ``fold``), without HTTP."""
    out: list[Any] = []
    for raw in raws:
        out += sink.chunk(fold, fold.add(raw))
    return out


def finish(sink: Any, fold: Any) -> list[Any]:
    """What the sink emits at the end of the stream (raises if it never finished)."""
    return list(sink.end(fold, fold.completion()))


def private_client(settings: Any, http: httpx2.Client) -> Any:
    """The core's clients for ``settings``, private around the mock sync ``http`` client."""
    from runcrate_integrations.net.clients import Clients

    return Clients(settings, http_client=http)


def private_async_client(settings: Any, http: httpx2.AsyncClient) -> Any:
    """The core's clients for ``settings``, private around the mock async ``http`` client."""
    from runcrate_integrations.net.clients import Clients

    return Clients(settings, http_async_client=http)


def post(body: JSONDict, path: str = "/chat/completions", **how: Any) -> Any:
    """A transport request: ``POST path`` with ``body`` (``how``: the Request's other fields)."""
    from runcrate_integrations.net.transport import Request

    return Request("POST", path, body=body, **how)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (yielding to the loop) until ``condition()`` holds; fail after ``timeout`` seconds.

    For tests that must act once something is under way (e.g. cancel while requests are in
    flight): a fixed sleep is a guess that a slow machine loses.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {condition!r}"
        await asyncio.sleep(0.005)
