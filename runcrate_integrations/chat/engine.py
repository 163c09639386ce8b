"""The chat engine both adapters use: it sends a checked request, folds the answer, and
translates errors, for sync and async alike.

An adapter converts its framework's messages to OpenAI dicts and the engine's answers back;
everything between is decided here once, for LangChain and LlamaIndex alike.

Example::

    clients = Clients(ClientSettings.resolve())
    engine = ChatEngine(clients, ChatOptions.build("deepseek/deepseek-v3.2"))
    request = engine.request([{"role": "user", "content": "Hi"}], {"max_tokens": 20})
    engine.complete(request).choice.content
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping, Sequence
from contextlib import aclosing, closing
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from .. import catalog, tokens, usage
from ..catalog import ModelInfo
from ..net import transport
from ..net.clients import Clients
from ..net.ratelimit import rate_limit_state
from ..net.transport import ErrorHook, translating
from ..tokens import TokenCounter
from . import metering
from .answer import ChunkDelta, Completion, StreamFold, completion_as_chunk, parse_completion
from .media import tool_media_to_user
from .request import (
    ChatOptions,
    ChatRequest,
    build_chat_body,
    is_schema_class,
    response_format_for,
    split_call,
)

CHAT_PATH = "/chat/completions"
log = logging.getLogger(__name__)
JSONDict = dict[str, Any]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ChunkSink(Protocol[T_co]):
    """An adapter's view of a stream: what to emit per chunk, and at the end."""

    def chunk(self, fold: StreamFold, deltas: list[ChunkDelta]) -> Iterable[T_co]:
        """Items for one chunk (``fold`` already holds it)."""
        ...

    def end(self, fold: StreamFold, completion: Completion) -> Iterable[T_co]:
        """Items once the stream finished; ``completion`` is the whole, checked answer."""
        ...


class ChatEngine:
    """Sends chat requests for one model instance; shared by sync and async, and by both
    frameworks. Holds the instance's :class:`Clients` and :class:`ChatOptions`."""

    __slots__ = ("clients", "errors", "options")

    def __init__(
        self, clients: Clients, options: ChatOptions, *, errors: ErrorHook | None = None
    ) -> None:
        self.clients = clients
        self.options = options
        self.errors = errors

    # ------------------------------------------------------------------ requests

    def request(
        self, messages: list[JSONDict], kwargs: Mapping[str, Any], *, stream: bool = False
    ) -> ChatRequest:
        """The checked request for OpenAI ``messages`` and a call's ``**kwargs``."""
        call = split_call(kwargs)
        opts = self.options
        params = {**opts.params, **call.params} if call.params else opts.params
        parse_as: type[BaseModel] | None = None
        response_format = params.get("response_format")
        if is_schema_class(response_format):
            parse_as = response_format
            params = {**params, "response_format": response_format_for(parse_as, strict=True)}
        elif response_format is not None and not isinstance(response_format, Mapping):
            raise ValueError(
                "response_format must be a dict such as {'type': 'json_object'} or a pydantic "
                f"class, got {type(response_format).__name__}"
            )
        model = call.model or opts.model
        messages = tool_media_to_user(messages, lambda: self._accepts_images(model))
        extra_body = opts.extra_body
        if call.extra_body:
            extra_body = {**extra_body, **call.extra_body} if extra_body else call.extra_body
        stream_usage = opts.stream_usage if call.stream_usage is None else call.stream_usage
        body = build_chat_body(
            model,
            messages,
            params,
            tools=call.tools,
            tool_choice=call.tool_choice,
            stream=stream,
            # Counted usage comes from the server: under a tracker a stream always asks for it.
            stream_usage=stream_usage or (stream and usage.watching()),
            extra_body=extra_body,
        )
        headers = dict(call.headers) if call.headers else None
        deadline = opts.deadline if call.deadline is None else call.deadline
        return ChatRequest(body, headers, call.timeout, parse_as, deadline, call.max_retries)

    # ------------------------------------------------------------------ sending

    # Under track_usage (usage.watching()) a call holds its worst case from just before it is
    # sent (metering.meter raises BudgetExceededError instead) until its answer is counted;
    # the hold is released however a call without an answer ends. Untracked, meter is None.

    def complete(self, request: ChatRequest) -> Completion:
        """Send a non-streaming request; the parsed answer."""
        with translating(self.errors):
            meter = metering.meter(self.clients, request.body, request.deadline)
            send = request.send(CHAT_PATH)
            if meter is None:
                data = transport.send_json(self.clients, send)
            else:
                with meter:
                    data = transport.send_json(self.clients, send)
                    metering.settle_answer(meter, self.clients, request.body, data)
            return self._answer(parse_completion(data), request)

    async def acomplete(self, request: ChatRequest) -> Completion:
        """Async twin of :meth:`complete`."""
        with translating(self.errors):
            meter = await metering.ameter(self.clients, request.body, request.deadline)
            send = request.send(CHAT_PATH)
            if meter is None:
                data = await transport.asend_json(self.clients, send)
            else:
                with meter:
                    data = await transport.asend_json(self.clients, send)
                    metering.settle_answer(meter, self.clients, request.body, data)
            return self._answer(parse_completion(data), request)

    def stream(self, request: ChatRequest, sink: ChunkSink[T]) -> Generator[T, None, None]:
        """Send a streaming request; yield what ``sink`` makes of each chunk, then of the end.

        The connection is released however iteration ends; a stream cut before its
        finish_reason raises :class:`StreamInterruptedError` instead of a partial answer.
        Tracked, the stream is counted as it ends (closed early: from an estimate).
        """
        with translating(self.errors):
            meter = metering.meter(self.clients, request.body, request.deadline)
            fold, answered = StreamFold(), False
            try:
                send = request.send(CHAT_PATH)
                response = transport.send(self.clients, send)
                answered = True
                events = transport.iter_events(
                    response,
                    secret=self.clients.secret,
                    deadline=send.deadline,
                    whole=completion_as_chunk,
                )
                with closing(events):
                    for raw in events:
                        yield from sink.chunk(fold, fold.add(raw))
                completion = self._answer(fold.completion(), request)
            finally:
                if meter is not None:
                    metering.settle_stream(
                        meter, self.clients, request.body, fold if answered else None
                    )
            yield from sink.end(fold, completion)

    async def astream(self, request: ChatRequest, sink: ChunkSink[T]) -> AsyncGenerator[T, None]:
        """Async twin of :meth:`stream`; cancelling the consumer releases the connection."""
        with translating(self.errors):
            meter = await metering.ameter(self.clients, request.body, request.deadline)
            fold, answered = StreamFold(), False
            try:
                send = request.send(CHAT_PATH)
                response = await transport.asend(self.clients, send)
                answered = True
                events = transport.aiter_events(
                    response,
                    secret=self.clients.secret,
                    deadline=send.deadline,
                    whole=completion_as_chunk,
                )
                async with aclosing(events):
                    async for raw in events:
                        for item in sink.chunk(fold, fold.add(raw)):
                            yield item
                completion = self._answer(fold.completion(), request)
            finally:
                if meter is not None:
                    metering.settle_stream(
                        meter, self.clients, request.body, fold if answered else None
                    )
            for item in sink.end(fold, completion):
                yield item

    def _answer(self, completion: Completion, request: ChatRequest) -> Completion:
        """The whole answer: its usage calibrates the token counter, it carries the latest
        rate-limit state, and it is parsed into the request's response_format class if any."""
        self._observe(request, completion)
        completion.rate_limit = rate_limit_state(self.clients.settings)
        if request.parse_as is not None:
            completion.parse_as(request.parse_as)
        return completion

    # ------------------------------------------------------------------ tokens

    def token_counter(self, model: str | None = None) -> TokenCounter:
        """The process-wide counter of this model (calibrated by every answer's usage)."""
        return tokens.counter_for(self.clients.settings.base_url, model or self.options.model)

    def count_tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None
    ) -> int:
        """Prompt tokens of OpenAI ``messages`` (and ``tools``), estimated with no request."""
        return self.token_counter().count_messages(messages, tools)

    def _observe(self, request: ChatRequest, completion: Completion) -> None:
        usage = completion.usage
        if usage is None or usage.input_tokens <= 0:
            return
        body = request.body
        try:
            self.token_counter(body["model"]).observe(
                body["messages"], body.get("tools"), usage.input_tokens
            )
        except Exception:  # calibration is best effort: it never fails an answered call
            log.debug("could not calibrate the token counter", exc_info=True)

    # ------------------------------------------------------------------ the model

    def model_info(self) -> ModelInfo | None:
        """The model's catalog entry: the catalog is fetched on first use (one short
        ``GET /models`` per base URL and process); ``None`` if it does not list the model or
        cannot be read in time."""
        return catalog.model_info(self.clients, self.options.model, self.options.deadline)

    def _accepts_images(self, model: str) -> bool:
        """Whether the catalog says ``model`` reads images (a short read on first use; a model
        it does not list, or a catalog that cannot be read, counts as no)."""
        info = catalog.model_info(self.clients, model, self.options.deadline)
        return info is not None and info.supports_image_input is True

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load the catalog now (errors raise); the model's entry, or ``None`` if not listed."""
        with translating(self.errors):
            catalog.fetch(self.clients, refresh=refresh)
        return catalog.cached_model_info(self.clients.settings.base_url, self.options.model)

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        with translating(self.errors):
            await catalog.afetch(self.clients, refresh=refresh)
        return catalog.cached_model_info(self.clients.settings.base_url, self.options.model)
