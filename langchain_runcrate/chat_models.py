"""``ChatRuncrate``: LangChain's ``BaseChatModel`` protocol over Runcrate's chat completions.

The fields and LangChain's hooks live here; messages are converted in :mod:`._messages`, and
everything between (options, the request, sending, streaming, closing, errors, clients) is the
core's :class:`~runcrate_integrations.chat.ChatEngine`, shared with LlamaIndex's ``RuncrateLLM``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.tracers._streaming import _StreamingCallbackHandler  # what core checks
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from runcrate_integrations.chat.params import check_not_secret, near_miss
from runcrate_integrations.chat.request import (
    ChatRequest,
    normalize_tool_choice,
    strict_schema,
    tool_names,
)
from runcrate_integrations.chat.settings import ChatSettings
from runcrate_integrations.net.transport import ErrorHook

from ._error_hook import langchain_error
from ._messages import (
    PROVIDER,
    GenerationChunkSink,
    StructuredOutputParser,
    completion_to_result,
    refusal_check,
    schema_to_response_format,
    to_openai_messages,
)
from ._profile import CatalogProfile
from ._serializable import LangChainSerializable

if TYPE_CHECKING:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )


# ChatOpenAI's constructor names that are request parameters here: sent in the body as given.
_BODY_PARAMS = frozenset(
    {
        "logit_bias",
        "reasoning_effort",
        "reasoning",
        "verbosity",
        "service_tier",
        "store",
    }
)
# ChatOpenAI's constructor names that mean nothing for Runcrate: refused, saying why.
_NO_MEANING = {
    "client": "pass http_client=httpx2.Client(...) instead",
    "async_client": "pass http_async_client=httpx2.AsyncClient(...) instead",
    "root_client": "pass http_client=httpx2.Client(...) instead",
    "root_async_client": "pass http_async_client=httpx2.AsyncClient(...) instead",
    "openai_organization": "Runcrate has no organizations",
    "organization": "Runcrate has no organizations",
    "openai_proxy": "pass http_client=httpx2.Client(proxy=...) instead",
    "tiktoken_model_name": "tokens are counted without tiktoken",
    "default_query": "Runcrate takes no query parameters",
    "http_socket_options": "pass http_client=httpx2.Client(...) configured as needed instead",
    "stream_chunk_timeout": "timeout= bounds the wait for each chunk",
    "include_response_headers": "the rate-limit headers are in response_metadata['rate_limit']",
    "disabled_params": "parameters a server does not know are sent only if you pass them",
    "context_management": "it belongs to OpenAI's Responses API",
    "include": "it belongs to OpenAI's Responses API",
    "prompt_cache_options": "it belongs to OpenAI's Responses API",
    "truncation": "it belongs to OpenAI's Responses API",
    "use_previous_response_id": "it belongs to OpenAI's Responses API",
    "use_responses_api": "Runcrate serves chat completions",
}
StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]


class ChatRuncrate(LangChainSerializable, ChatSettings, BaseChatModel):
    """Runcrate's OpenAI-compatible chat models as a LangChain chat model.

    A drop-in for ``ChatOpenAI`` that needs neither ``langchain-openai`` nor a base-URL override
    (``ChatOpenAI``'s constructor names are accepted: ``openai_api_key``, ``request_timeout``)::

        from langchain_runcrate import ChatRuncrate

        llm = ChatRuncrate(model="deepseek/deepseek-v3.2", temperature=0.2)  # RUNCRATE_API_KEY
        llm.invoke("Name three primes.").content
        for chunk in llm.stream("Count to five."):
            print(chunk.content, end="")
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # errors must never echo the key

    extra_params_field: ClassVar[str] = "model_kwargs"
    own_request_fields: ClassVar[tuple[str, ...]] = ("n",)

    n: int | None = Field(default=None, ge=1)
    """Number of choices per request (not with streaming)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other top-level request fields (e.g. ``{"reasoning_effort": "high"}``)."""
    streaming: bool = False
    """Stream under the hood even for ``invoke`` (callbacks then see every token)."""

    # ------------------------------------------------------------------ construction

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Unknown constructor arguments go to ``model_kwargs`` (as in ``ChatOpenAI``)."""
        if isinstance(values, dict):
            return _move_unknown_kwargs(values, _accepted_names(cls))
        return values

    if not TYPE_CHECKING:  # type checkers keep the field-by-field signature of __init__

        def __init__(self, **data: Any) -> None:
            super().__init__(**data)
            # Built here and not in a validator, so that a missing key or an empty model
            # raises the core's own error rather than one wrapped in a ValidationError.
            self._rebuild()

    def _resolve_model_profile(self) -> ModelProfile | None:
        """An empty profile, replaced by :meth:`_rebuild` with one read from the catalog.

        Not ``None``: langchain-core assigns what this returns while the model is validated, and
        as assignments are validated too, a ``None`` would set off the same validator again.
        """
        return {}

    def _error_hook(self) -> ErrorHook:
        return langchain_error

    def _rebuild(self) -> None:
        super()._rebuild()
        # A profile given by the user wins; otherwise one read from the catalog on first use
        # (set past __setattr__: it is derived, not a field the user set).
        if not self.profile or isinstance(self.profile, CatalogProfile):
            engine = self.engine
            profile = CatalogProfile(engine.clients, self.model, engine.options.deadline)
            self.__dict__["profile"] = profile.arm()

    # ------------------------------------------------------------------ LangChain metadata

    @property
    def _llm_type(self) -> str:
        return "runcrate-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, **self.engine.options.params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=model if isinstance(model, str) else self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        stop_seq = stop or kwargs.get("stop") or self.stop
        if isinstance(stop_seq, str):
            params["ls_stop"] = [stop_seq]
        elif isinstance(stop_seq, (list, tuple)) and stop_seq:
            params["ls_stop"] = [str(s) for s in stop_seq]
        return params

    # ------------------------------------------------------------------ tokens

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Prompt tokens of ``messages`` (and ``tools``), with no request and no tokenizer
        download: an estimate calibrated per model by the usage of this process's answers."""
        wire_tools = [_openai_tool(t) for t in tools] if tools else None
        openai_messages = to_openai_messages(messages, lenient=True)
        return self.engine.token_counter().count_messages(openai_messages, wire_tools)

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no chat template), estimated like the messages."""
        return self.engine.token_counter().count_text(text)

    def get_token_ids(self, text: str) -> list[int]:
        """Not available: Runcrate's models' tokenizers are not shipped with this package."""
        raise NotImplementedError(
            "ChatRuncrate counts tokens without the model's tokenizer; use get_num_tokens() "
            "or get_num_tokens_from_messages() for counts"
        )

    # ------------------------------------------------------------------ requests

    def _request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> ChatRequest:
        """The engine's request for one call; ``kwargs`` is the call's own dict."""
        kwargs.pop("stream", None)
        kwargs.pop("ls_structured_output_format", None)
        if stop is not None:
            kwargs["stop"] = stop
        tools = kwargs.get("tools")
        if tools:
            kwargs["tools"] = [_openai_tool(t) for t in tools]
        return self.engine.request(to_openai_messages(messages), kwargs, stream=stream)

    # invoke() on a `streaming=True` model: langchain-core would merge the streamed chunks,
    # reading a truncated tool call's JSON as valid partial JSON. Instead _generate streams
    # (tokens still reach callbacks) and builds the answer from the core's folded stream, so it
    # equals what a non-streamed call returns. Explicit stream()/astream() and attached
    # streaming handlers keep langchain-core's path.
    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        should = super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)
        if should and "stream" not in kwargs and self._folds_stream(kwargs):
            handlers = run_manager.handlers if run_manager else []
            return any(isinstance(h, _StreamingCallbackHandler) for h in handlers)
        return should

    def _folds_stream(self, kwargs: Mapping[str, Any]) -> bool:
        return (
            self.streaming
            and "streaming" in self.model_fields_set
            and not self._streaming_disabled(**kwargs)
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        folded = self._folds_stream(kwargs)
        request = self._request(messages, stop, kwargs, stream=folded)
        if not folded:
            return completion_to_result(self.engine.complete(request))
        sink = GenerationChunkSink()
        for chunk in self.engine.stream(request, sink):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return completion_to_result(sink.result())

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        folded = self._folds_stream(kwargs)
        request = self._request(messages, stop, kwargs, stream=folded)
        if not folded:
            return completion_to_result(await self.engine.acomplete(request))
        sink = GenerationChunkSink()
        async for chunk in self.engine.astream(request, sink):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return completion_to_result(sink.result())

    # The engine's own generators are returned: they release the connection however the
    # stream ends. Tokens reach callbacks through BaseChatModel, which reports every chunk.
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs, stream=True)
        return self.engine.stream(request, self._sink())

    def _astream(  # returns the engine's async generator, which closes the connection itself
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs, stream=True)
        return self.engine.astream(request, self._sink())

    def _sink(self) -> GenerationChunkSink:
        return GenerationChunkSink(v1_blocks=self.output_version == "v1")

    # ------------------------------------------------------------------ tools & structure

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (pydantic classes, functions, ``BaseTool`` s or OpenAI/JSON schemas).

        ``tool_choice``: ``"auto"``, ``"none"``, ``"required"``, ``"any"``/``True`` (some
        tool must be called) or a tool's name. ``strict=True`` asks for schema-exact arguments.
        """
        formatted = [_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            # Checked now, so a misspelt tool name fails at bind time, not at the first call.
            kwargs["tool_choice"] = normalize_tool_choice(tool_choice, tool_names(formatted))
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into ``schema`` (a pydantic class, a TypedDict or a JSON schema).

        ``method``: ``"function_calling"`` (a forced tool call), ``"json_schema"``
        (``response_format`` with the schema) or ``"json_mode"`` (any JSON object; the prompt
        must describe the shape). A refusal raises ``ModelRefusalError``.
        """
        from langchain_core.output_parsers.openai_tools import (
            JsonOutputKeyToolsParser,
            PydanticToolsParser,
        )
        from langchain_core.runnables import RunnableMap, RunnablePassthrough

        if kwargs:
            raise ValueError(f"Received unsupported arguments {kwargs}")
        if schema is None and method != "json_mode":
            raise ValueError(f"method={method!r} needs a schema")
        pydantic_schema = (
            cast("type[BaseModel]", schema)
            if isinstance(schema, type) and is_basemodel_subclass(schema)
            else None
        )
        trace: dict[str, Any] = {}
        if schema is not None:  # what LangSmith shows for this structured-output run
            trace["ls_structured_output_format"] = {
                "kwargs": {"method": method, "strict": strict},
                "schema": schema,
            }
        parser: Runnable[Any, Any]
        llm: Runnable[LanguageModelInput, AIMessage]
        if method == "function_calling":
            assert schema is not None
            tool = _openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools([tool], tool_choice=name, **trace)
            parser = (
                PydanticToolsParser(tools=[pydantic_schema], first_tool_only=True)
                if pydantic_schema is not None
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            response_format = (
                schema_to_response_format(schema, strict)
                if method == "json_schema" and schema is not None
                else {"type": "json_object"}
            )
            llm = self.bind(response_format=response_format, **trace)
            parser = StructuredOutputParser(schema_class=pydantic_schema)
        else:
            raise ValueError(
                f"Unrecognized method {method!r}; expected 'function_calling', "
                "'json_schema' or 'json_mode'"
            )
        parse = refusal_check() | parser
        if not include_raw:
            return llm | parse
        with_parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parse, parsing_error=lambda _: None
        )
        without = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | with_parsed.with_fallbacks(
            [without], exception_key="parsing_error"
        )


# ---------------------------------------------------------------------- helpers


def _openai_tool(tool: Any, *, strict: bool | None = None) -> dict[str, Any]:
    """An OpenAI tool (langchain-core's converter); ``strict`` made by the core's one rule."""
    if isinstance(tool, Mapping) and tool.get("type") == "function" and "function" in tool:
        spec = dict(tool)
    else:
        spec = convert_to_openai_tool(tool)
    if strict:
        function = dict(spec["function"])
        function["parameters"] = strict_schema(function.get("parameters") or {})
        function["strict"] = True
        spec["function"] = function
    return spec


@functools.cache
def _accepted_names(cls: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """(every accepted constructor name incl. aliases, the field names) of ``cls``."""
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
        alias = info.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
    return frozenset(names), frozenset(cls.model_fields)


def _move_unknown_kwargs(
    values: dict[str, Any], accepted: tuple[frozenset[str], frozenset[str]]
) -> dict[str, Any]:
    """Unknown arguments -> ``model_kwargs``; real parameters found in ``model_kwargs`` -> out.

    Both with a warning, as ``ChatOpenAI`` does, so the explicit fields keep their checks.
    """
    names, fields = accepted
    given_extra = values.get("model_kwargs") or {}
    for key in values:
        if key in _NO_MEANING and key not in names:
            raise ValueError(
                f"{key!r} is a ChatOpenAI setting with no meaning for ChatRuncrate: "
                f"{_NO_MEANING[key]}"
            )
    # Underscored names are never constructor arguments: cached properties that pydantic hands
    # back when it checks an assignment (langchain-core's ``_serialized``).
    unknown = [k for k in values if k not in names and not k.startswith("_")]
    misplaced = [k for k in given_extra if k in names]
    if not unknown and not misplaced:
        return values
    values = dict(values)
    extra = dict(given_extra)
    for key in unknown:
        # A near-miss of a real field is a typo, not a server parameter: say so.
        close = near_miss(key, fields)
        if close:
            raise ValueError(f"Unknown parameter {key!r}; did you mean {close!r}?")
        check_not_secret([key], "ChatRuncrate(...)")  # a key must never reach a request body
        if key in extra:
            raise ValueError(f"{key!r} was given both directly and in model_kwargs")
        if key not in _BODY_PARAMS:
            warnings.warn(
                f"{key!r} is not a ChatRuncrate parameter; it is sent as a request field "
                "(model_kwargs). Pass it in model_kwargs=... to silence this warning.",
                stacklevel=4,
            )
        extra[key] = values.pop(key)
    for key in misplaced:
        if key in values:
            raise ValueError(f"{key!r} was given both directly and in model_kwargs")
        warnings.warn(
            f"{key!r} is a ChatRuncrate parameter; pass it directly instead of in model_kwargs.",
            stacklevel=4,
        )
        values[key] = extra.pop(key)
    values["model_kwargs"] = extra
    return values
