"""The chat engine both adapters use: options, a call's arguments, sending, streaming, closing.

An adapter converts its framework's messages to OpenAI dicts and the engine's answers back;
everything between is decided here once, for LangChain and LlamaIndex alike:

* :class:`ChatOptions`: an instance's defaults (checked against Runcrate's ranges once);
* :func:`split_call`: a call's ``**kwargs`` into request parameters, tools, ``tool_choice``,
  ``extra_body``, ``extra_headers`` and the rest (a near miss of a known option is an error);
* :class:`ChatEngine`: ``complete`` / ``acomplete`` / ``stream`` / ``astream``, which own the
  client, the request, the closing of streams and the translation of errors.

Example::

    engine = ChatEngine.configure(model="deepseek/deepseek-v3.2", params={"temperature": 0.2})
    request = engine.request([{"role": "user", "content": "Hi"}], {"max_tokens": 20})
    engine.complete(request).choice.content
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel
from typing_extensions import Unpack

from . import catalog, tokens, transport
from .catalog import ModelInfo
from .clients import ClientFields, Clients, check_timeout
from .params import check_call_names, check_params
from .tokens import TokenCounter
from .transport import ErrorHook, translating
from .wire import (
    ChunkDelta,
    Completion,
    StreamFold,
    build_chat_body,
    is_schema_class,
    json_schema_format,
    parse_completion,
)

if TYPE_CHECKING:
    from ._openai import AsyncRuncrateOpenAI, RuncrateOpenAI

CHAT_PATH = "/chat/completions"
log = logging.getLogger(__name__)
JSONDict = dict[str, Any]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What every request of one model instance shares; checked when built."""

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    extra_body: Mapping[str, Any] | None = None
    stream_usage: bool = True
    deadline: float | None = None

    @classmethod
    def build(
        cls,
        model: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_params: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream_usage: bool = True,
        deadline: float | None = None,
    ) -> ChatOptions:
        """Defaults from an adapter's fields: ``params`` (its named fields) then
        ``extra_params`` (``model_kwargs`` / ``additional_kwargs``); ``None`` means unset."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
        merged = {**(params or {}), **(extra_params or {})}
        merged = {k: v for k, v in merged.items() if v is not None}
        check_params(merged)
        _check_deadline(deadline)
        extra = dict(extra_body) if extra_body else None
        return cls(model, merged, extra, stream_usage, deadline)


@dataclass(slots=True)
class CallArgs:
    """One call's ``**kwargs``, sorted: what goes in the body and what changes how it is sent."""

    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    tools: list[JSONDict] | None = None
    tool_choice: Any = None
    extra_body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    stream_usage: bool | None = None
    timeout: Any = None
    deadline: float | None = None


def _check_deadline(deadline: object) -> None:
    if deadline is None:
        return
    if not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or deadline <= 0:
        raise ValueError(f"deadline must be a number of seconds > 0, got {deadline!r}")


def split_call(kwargs: Mapping[str, Any]) -> CallArgs:
    """Sort a call's keyword arguments. A near miss of a known option (``temprature``) raises
    ``ValueError`` before anything is sent; other unknown names go to the body as they are."""
    check_call_names(kwargs)
    args = CallArgs()
    for name, value in kwargs.items():
        if name == "model":
            args.model = value
        elif name == "tools":
            args.tools = list(value) if value else None
        elif name == "tool_choice":
            args.tool_choice = value
        elif name == "extra_body":
            args.extra_body = value
        elif name == "extra_headers":
            args.headers = value
        elif name == "stream_usage":
            args.stream_usage = value
        elif name == "timeout":
            args.timeout = check_timeout(value)  # None: the instance's timeout
        elif name == "deadline":
            _check_deadline(value)
            args.deadline = value
        else:
            args.params[name] = value
    if args.model is not None and (not isinstance(args.model, str) or not args.model.strip()):
        raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
    return args


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked request, ready to send (``parse_as``: the class the answer is parsed into;
    ``deadline``: seconds the whole call, retries and stream included, may take)."""

    body: JSONDict
    headers: Mapping[str, str] | None = None
    timeout: Any = None
    parse_as: type[BaseModel] | None = None
    deadline: float | None = None

    def send_options(self) -> dict[str, Any]:
        """The transport's keyword arguments; the deadline clock starts now."""
        deadline = time.monotonic() + self.deadline if self.deadline is not None else None
        return {"headers": self.headers, "timeout": self.timeout, "deadline": deadline}

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class StreamSink(Protocol[T_co]):
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

    @classmethod
    def configure(
        cls,
        *,
        model: str,
        params: Mapping[str, Any] | None = None,
        extra_params: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream_usage: bool = True,
        deadline: float | None = None,
        errors: ErrorHook | None = None,
        **client: Unpack[ClientFields],
    ) -> ChatEngine:
        """Check options and resolve settings from an adapter's fields, in one step."""
        options = ChatOptions.build(
            model,
            params,
            extra_params=extra_params,
            extra_body=extra_body,
            stream_usage=stream_usage,
            deadline=deadline,
        )
        return cls(Clients.configure(**client), options, errors=errors)

    # An engine is configuration plus shared pools: copies may share it (the caches inside
    # Clients look the clients up again where needed); pickling rebuilds it (Clients knows how).
    def __deepcopy__(self, memo: dict[int, Any]) -> ChatEngine:
        return self

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
            params = {**params, "response_format": json_schema_format(response_format, strict=True)}
        elif response_format is not None and not isinstance(response_format, Mapping):
            raise ValueError(
                "response_format must be a dict such as {'type': 'json_object'} or a pydantic "
                f"class, got {type(response_format).__name__}"
            )
        extra_body = opts.extra_body
        if call.extra_body:
            extra_body = {**extra_body, **call.extra_body} if extra_body else call.extra_body
        body = build_chat_body(
            call.model or opts.model,
            messages,
            params,
            tools=call.tools,
            tool_choice=call.tool_choice,
            stream=stream,
            stream_usage=opts.stream_usage if call.stream_usage is None else call.stream_usage,
            extra_body=extra_body,
        )
        headers = dict(call.headers) if call.headers else None
        deadline = opts.deadline if call.deadline is None else call.deadline
        return ChatRequest(body, headers, call.timeout, parse_as, deadline)

    # ------------------------------------------------------------------ sending

    def complete(self, request: ChatRequest) -> Completion:
        """Send a non-streaming request; the parsed answer."""
        with translating(self.errors):
            data = transport.post_json(
                self.clients.client(), CHAT_PATH, request.body, **request.send_options()
            )
            return self._answer(parse_completion(data), request)

    async def acomplete(self, request: ChatRequest) -> Completion:
        """Async twin of :meth:`complete`."""
        with translating(self.errors):
            data = await transport.apost_json(
                self.clients.aclient(), CHAT_PATH, request.body, **request.send_options()
            )
            return self._answer(parse_completion(data), request)

    def stream(self, request: ChatRequest, sink: StreamSink[T]) -> Generator[T, None, None]:
        """Send a streaming request; yield what ``sink`` makes of each chunk, then of the end.

        The connection is released however iteration ends; a stream cut before its
        finish_reason raises :class:`StreamInterruptedError` instead of a partial answer.
        """
        client = self.clients.client()
        with translating(self.errors):
            fold = StreamFold()
            chunks = transport.stream_json(
                client, CHAT_PATH, request.body, **request.send_options()
            )
            with closing(chunks):
                for raw in chunks:
                    yield from sink.chunk(fold, fold.add(raw))
            yield from sink.end(fold, self._answer(fold.completion(), request))

    async def astream(self, request: ChatRequest, sink: StreamSink[T]) -> AsyncGenerator[T, None]:
        """Async twin of :meth:`stream`; cancelling the consumer releases the connection."""
        client = self.clients.aclient()
        with translating(self.errors):
            fold = StreamFold()
            chunks = transport.astream_json(
                client, CHAT_PATH, request.body, **request.send_options()
            )
            async with aclosing(chunks):
                async for raw in chunks:
                    for item in sink.chunk(fold, fold.add(raw)):
                        yield item
            for item in sink.end(fold, self._answer(fold.completion(), request)):
                yield item

    def _answer(self, completion: Completion, request: ChatRequest) -> Completion:
        """The whole answer: its usage calibrates the token counter, it carries the latest
        rate-limit state, and it is parsed into the request's response_format class if any."""
        self._observe(request, completion)
        from .ratelimit import rate_limit_state  # loaded with the first client anyway

        state = rate_limit_state(self.clients.settings)
        if state is not None:
            completion.rate_limit = {
                "limit": state.limit,
                "remaining": state.remaining,
                "reset_at": state.reset_at,
                "observed_at": state.observed_at,
            }
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
        """The model's catalog entry: the catalog is fetched on first use (one ``GET /models``
        per base URL and process); ``None`` if it does not list the model or cannot be read."""
        return catalog.model_info(self.clients, self.options.model)

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load the catalog now (errors raise); the model's entry, or ``None`` if not listed."""
        with translating(self.errors):
            catalog.list_models(client=self.clients.client(), refresh=refresh)
        return catalog.cached_model_info(self.clients.settings.base_url, self.options.model)

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        with translating(self.errors):
            await catalog.alist_models(client=self.clients.aclient(), refresh=refresh)
        return catalog.cached_model_info(self.clients.settings.base_url, self.options.model)

    # ------------------------------------------------------------------ clients

    @property
    def client(self) -> RuncrateOpenAI:
        """The sync ``openai`` client requests go through."""
        return self.clients.client()

    @property
    def async_client(self) -> AsyncRuncrateOpenAI:
        """The async ``openai`` client for the running event loop."""
        return self.clients.aclient()
