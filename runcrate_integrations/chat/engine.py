"""The chat engine both adapters use: it sends a checked request, folds the answer and
translates errors, sync and async; an adapter only converts messages and answers, e.g.
``engine.complete(engine.request(messages, {"max_tokens": 20})).choice.content``."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping
from contextlib import aclosing, closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .. import catalog, tokens
from ..net import transport
from ..net.clients import Clients
from ..net.ratelimit import rate_limit_state
from ..usage import Meter
from . import metering
from .answer import ChunkDelta, Completion, StreamFold, completion_as_chunk, parse_completion
from .request import ChatOptions, ChatRequest

CHAT_PATH = "/chat/completions"
log = logging.getLogger(__name__)
JSONDict = dict[str, Any]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ChunkSink(Protocol[T_co]):
    """An adapter's view of a stream: what to emit per chunk, and at the end."""

    def chunk(self, fold: StreamFold, deltas: list[ChunkDelta]) -> Iterable[T_co]:
        """Items for one chunk (``fold`` already holds it)."""

    def end(self, fold: StreamFold, completion: Completion) -> Iterable[T_co]:
        """Items once the stream finished; ``completion`` is the whole, checked answer."""


@dataclass(slots=True, eq=False)
class ChatEngine:
    """Sends the chat requests of one model instance (its clients and options)."""

    clients: Clients
    options: ChatOptions
    errors: transport.ErrorHook | None = field(default=None, kw_only=True)

    def request(
        self, messages: list[JSONDict], kwargs: Mapping[str, Any], *, stream: bool = False
    ) -> ChatRequest:
        """The checked request for OpenAI ``messages`` and a call's ``**kwargs``."""
        return self.options.request(messages, kwargs, stream, self._accepts_images)

    # Under track_usage a call's worst case is held until its answer is counted (see metering).

    def complete(self, request: ChatRequest) -> Completion:
        """Send a non-streaming request; the parsed answer."""
        with transport.translating(self.errors):
            meter = metering.meter(self.clients, request.body, request.deadline)
            with meter or nullcontext():
                data = transport.send_json(self.clients, request.send(CHAT_PATH))
                return self._answered(request, meter, data)

    async def acomplete(self, request: ChatRequest) -> Completion:
        """Async twin of :meth:`complete`."""
        with transport.translating(self.errors):
            meter = await metering.ameter(self.clients, request.body, request.deadline)
            with meter or nullcontext():
                data = await transport.asend_json(self.clients, request.send(CHAT_PATH))
                return self._answered(request, meter, data)

    def _answered(self, request: ChatRequest, meter: Meter | None, data: JSONDict) -> Completion:
        if meter is not None:
            metering.settle_answer(meter, self.clients, request.body, data)
        return self._answer(parse_completion(data), request)

    def stream(self, request: ChatRequest, sink: ChunkSink[T]) -> Generator[T, None, None]:
        """Yield what ``sink`` makes of each chunk, then of the end; the connection is released
        however iteration ends, and a stream cut short raises StreamInterruptedError."""
        with transport.translating(self.errors):
            meter = metering.meter(self.clients, request.body, request.deadline)
            fold = None  # until the server answers
            try:
                send = request.send(CHAT_PATH)
                response = transport.send(self.clients, send)
                fold = StreamFold()
                events = transport.iter_events(response, **self._event_options(send))
                with closing(events):
                    for raw in events:
                        yield from sink.chunk(fold, fold.add(raw))
                completion = self._answer(fold.completion(), request)
            finally:
                if meter is not None:
                    metering.settle_stream(meter, self.clients, request.body, fold)
            yield from sink.end(fold, completion)

    async def astream(self, request: ChatRequest, sink: ChunkSink[T]) -> AsyncGenerator[T, None]:
        """Async twin of :meth:`stream`; cancelling the consumer releases the connection."""
        with transport.translating(self.errors):
            meter = await metering.ameter(self.clients, request.body, request.deadline)
            fold = None  # until the server answers
            try:
                send = request.send(CHAT_PATH)
                response = await transport.asend(self.clients, send)
                fold = StreamFold()
                events = transport.aiter_events(response, **self._event_options(send))
                async with aclosing(events):
                    async for raw in events:
                        for item in sink.chunk(fold, fold.add(raw)):
                            yield item
                completion = self._answer(fold.completion(), request)
            finally:
                if meter is not None:
                    metering.settle_stream(meter, self.clients, request.body, fold)
            for item in sink.end(fold, completion):
                yield item

    def _event_options(self, send: transport.Request) -> JSONDict:
        """How a stream's events are read (a whole JSON answer becomes its one chunk)."""
        return dict(
            secret=self.clients.settings.secret, deadline=send.deadline, whole=completion_as_chunk
        )

    def _answer(self, completion: Completion, request: ChatRequest) -> Completion:
        """The answer, with rate-limit state and parsed class; its usage calibrates the counter."""
        usage = completion.usage
        if usage is not None and usage.input_tokens > 0:
            body = request.body
            try:
                self.token_counter(body["model"]).observe(
                    body["messages"], body.get("tools"), usage.input_tokens
                )
            except Exception:  # calibration is best effort: it never fails an answered call
                log.debug("could not calibrate the token counter", exc_info=True)
        completion.rate_limit = rate_limit_state(self.clients.settings)
        if request.parse_as is not None:
            completion.parse_as(request.parse_as)
        return completion

    def token_counter(self, model: str | None = None) -> tokens.TokenCounter:
        """The process-wide counter of this model (calibrated by every answer's usage)."""
        return tokens.counter_for(self.clients.settings.base_url, model or self.options.model)

    def _accepts_images(self, model: str) -> bool:
        """Whether the catalog says ``model`` reads images (unlisted or unreadable: no)."""
        info = catalog.model_info(self.clients, model, self.options.deadline)
        return info is not None and info.supports_image_input is True
