"""``RuncrateLLM``: LlamaIndex's ``FunctionCallingLLM`` protocol over Runcrate's chat API.

Requests are built by :func:`runcrate_integrations.wire.build_chat_body`, sent through the
pooled clients of :mod:`runcrate_integrations.client` (typed errors, retries) and parsed by
:mod:`runcrate_integrations.wire`; :mod:`._messages` maps both directions onto LlamaIndex types.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from llama_index.core.base.llms.generic_utils import (
    astream_chat_to_completion_decorator,
    chat_response_to_completion_response,
    prompt_to_messages,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import Model
from llama_index_instrumentation import get_dispatcher
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, SecretStr
from typing_extensions import Self

from runcrate_integrations import api
from runcrate_integrations.catalog import ModelInfo, alist_models, cached_model_info, list_models
from runcrate_integrations.client import ClientSettings, async_client, sync_client
from runcrate_integrations.params import check_params
from runcrate_integrations.settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, assign_checked
from runcrate_integrations.wire import build_chat_body, parse_completion

from ._messages import (
    StreamFolder,
    chat_response,
    force_single_tool_call,
    json_schema_format,
    to_openai_messages,
    tool_selections,
)

if TYPE_CHECKING:
    import httpx2
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.tools.types import BaseTool

    from runcrate_integrations._openai import AsyncRuncrateOpenAI, RuncrateOpenAI

dispatcher = get_dispatcher(__name__)

#: Context window assumed when neither the user nor Runcrate's catalog gives one.
DEFAULT_CONTEXT_WINDOW = 32_768
CHAT_PATH = "/chat/completions"

_SAMPLING = ("temperature", "top_p", "max_tokens", "frequency_penalty", "presence_penalty",
             "stop", "seed")
_PARAM_FIELDS = frozenset((*_SAMPLING, "logprobs", "top_logprobs", "additional_kwargs"))
_CLIENT_FIELDS = frozenset(("api_key", "base_url", "timeout", "max_retries", "default_headers"))
StructuredOutputMethod = Literal["function_calling", "json_schema"]


class RuncrateLLM(FunctionCallingLLM):
    """Runcrate's OpenAI-compatible chat models as a LlamaIndex ``FunctionCallingLLM``.

    The key comes from ``api_key`` or ``RUNCRATE_API_KEY``; it never appears in ``repr``,
    ``to_dict()`` or ``to_json()``. Parameters are checked against Runcrate's ranges before
    any request. Example::

        from llama_index.core import Settings
        from llama_index_runcrate import RuncrateLLM

        Settings.llm = RuncrateLLM(model="deepseek/deepseek-v3.2", temperature=0.2)
        print(Settings.llm.complete("Say hi").text)
    """

    # extra="forbid": a misspelt option fails; hide_input_in_errors: errors never echo the key.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    model: str = Field(min_length=1, description="Runcrate model id, e.g. 'deepseek/deepseek-v3.2'")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, description="Also the metadata num_output.")
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool | None = Field(default=None, description="Return token logprobs.")
    top_logprobs: int | None = Field(
        default=None, ge=0, le=20, description="Alternatives per token; implies logprobs."
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra request body fields, sent with every call."
    )
    strict: bool = Field(
        default=False, description="Strict JSON schemas for tools and json_schema output."
    )
    structured_output_method: StructuredOutputMethod = Field(
        default="function_calling",
        description="How structured_predict asks for JSON: a forced tool call or response_format.",
    )
    context_window: int | None = Field(
        default=None, gt=0, description="Overrides the catalog's context length."
    )
    is_function_calling_model: bool | None = Field(
        default=None, description="Overrides the catalog's tool support (default True)."
    )
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("base_url", "api_base"),
        description="Defaults to RUNCRATE_BASE_URL, then https://api.runcrate.ai/v1.",
    )
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    default_headers: dict[str, str] | None = None

    _http_client: httpx2.Client | None = PrivateAttr(default=None)
    _async_http_client: httpx2.AsyncClient | None = PrivateAttr(default=None)
    _settings: ClientSettings | None = PrivateAttr(default=None)
    _sync: RuncrateOpenAI | None = PrivateAttr(default=None)
    _async: AsyncRuncrateOpenAI | None = PrivateAttr(default=None)
    _params: dict[str, Any] | None = PrivateAttr(default=None)

    def __init__(
        self,
        model: str | None = None,
        *,
        http_client: httpx2.Client | None = None,
        async_http_client: httpx2.AsyncClient | None = None,
        **data: Any,
    ) -> None:
        if model is not None:
            data["model"] = model
        super().__init__(**data)
        self._http_client = http_client
        self._async_http_client = async_http_client
        # Fail at construction, not on the first call: missing key, bad extras.
        self._client_settings()
        self._default_params()

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _PARAM_FIELDS and name not in _CLIENT_FIELDS:
            super().__setattr__(name, value)
            return
        # Cached derived state (request defaults, client) follows the new value, which is
        # checked now; a rejected value leaves the instance as it was.
        assign_checked(self, name, value, super().__setattr__, lambda: self._refresh(name))

    def _refresh(self, name: str) -> None:
        if name in _PARAM_FIELDS:
            self._params = None
            self._default_params()
        else:
            self._settings = self._sync = self._async = None
            self._client_settings()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        for name in update or ():  # pydantic sets the fields directly, past __setattr__
            copy._refresh(name)
        return copy

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # Clients are shared connection pools (sockets, locks), not state: copies share them.
        memo = {} if memo is None else memo
        for client in (self._http_client, self._async_http_client, self._sync, self._async):
            if client is not None:
                memo[id(client)] = client
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[str, Any]:
        # Cached clients hold sockets and locks; a copy rebuilds them on first use.
        self._sync = self._async = None
        return super().__getstate__()

    @classmethod
    def class_name(cls) -> str:
        return "runcrate_llm"

    # ------------------------------------------------------------------ configuration

    def _client_settings(self) -> ClientSettings:
        settings = self._settings
        if settings is None:
            settings = self._settings = ClientSettings.resolve(
                api_key=self.api_key,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
                default_headers=self.default_headers,
            )
        return settings

    def _client(self) -> RuncrateOpenAI:
        client = self._sync
        if client is None:
            client = self._sync = sync_client(self._client_settings(), self._http_client)
        return client

    def _aclient(self) -> AsyncRuncrateOpenAI:
        if self._async_http_client is None:
            # Pooled per event loop; a cheap lookup, so it is not cached on the instance.
            return async_client(self._client_settings())
        if self._async is None:
            self._async = async_client(self._client_settings(), self._async_http_client)
        return self._async

    def _default_params(self) -> dict[str, Any]:
        params = self._params
        if params is None:
            params = {n: getattr(self, n) for n in _SAMPLING if getattr(self, n) is not None}
            if self.logprobs or self.top_logprobs is not None:
                params["logprobs"] = True
            if self.top_logprobs is not None:
                params["top_logprobs"] = self.top_logprobs
            params.update(self.additional_kwargs)
            check_params(params)
            self._params = params
        return params

    @property
    def model_info(self) -> ModelInfo | None:
        """This model's entry in the cached Runcrate catalog (never a network call)."""
        return cached_model_info(self._client_settings().base_url, self.model)

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load Runcrate's catalog (``GET /models``, cached) and return this model's entry."""
        list_models(client=self._client(), refresh=refresh)
        return self.model_info

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        await alist_models(client=self._aclient(), refresh=refresh)
        return self.model_info

    @property
    def metadata(self) -> LLMMetadata:
        info = self.model_info
        context = self.context_window or (info and info.context_length) or DEFAULT_CONTEXT_WINDOW
        tools = self.is_function_calling_model
        if tools is None:
            known = info.supports_tools if info is not None else None
            tools = True if known is None else known
        return LLMMetadata(
            context_window=context,
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=tools,
            model_name=self.model,
            system_role=MessageRole.SYSTEM,
        )

    # ------------------------------------------------------------------ requests

    def _body(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, stream: bool
    ) -> tuple[dict[str, Any], Mapping[str, str] | None]:
        """The checked request body (and per-call headers); shared by every method."""
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        extra_body = kwargs.pop("extra_body", None)
        extra_headers = kwargs.pop("extra_headers", None)
        defaults = self._default_params()
        params = {**defaults, **kwargs} if kwargs else defaults
        body = build_chat_body(
            self.model, to_openai_messages(messages), params, tools=tools,
            tool_choice=tool_choice, stream=stream, extra_body=extra_body,
        )
        return body, extra_headers

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        body, headers = self._body(messages, kwargs, stream=False)
        data = api.post_json(self._client(), CHAT_PATH, body, extra_headers=headers)
        return chat_response(parse_completion(data), raw=data)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        body, headers = self._body(messages, kwargs, stream=False)
        data = await api.apost_json(self._aclient(), CHAT_PATH, body, extra_headers=headers)
        return chat_response(parse_completion(data), raw=data)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        body, headers = self._body(messages, kwargs, stream=True)
        client = self._client()

        def gen() -> ChatResponseGen:
            folder = StreamFolder()
            for chunk in api.stream_json(client, CHAT_PATH, body, extra_headers=headers):
                response = folder.add(chunk)
                if response is not None:
                    yield response
            yield folder.final()

        return gen()

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        body, headers = self._body(messages, kwargs, stream=True)
        client = self._aclient()

        async def gen() -> ChatResponseAsyncGen:
            folder = StreamFolder()
            async for chunk in api.astream_json(client, CHAT_PATH, body, extra_headers=headers):
                response = folder.add(chunk)
                if response is not None:
                    yield response
            yield folder.final()

        return gen()

    # ------------------------------------------------------------------ the LLM protocol

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self._astream_chat(messages, **kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _to_completion(self._chat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return _to_completion(await self._achat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self._astream_chat)(prompt, **kwargs)

    # ------------------------------------------------------------------ tools

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Chat kwargs with the tools as OpenAI schemas (LlamaIndex's own ``to_openai_tool``)."""
        specs = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
        if self.strict if strict is None else strict:
            for spec in specs:
                spec["function"]["strict"] = True
                spec["function"]["parameters"]["additionalProperties"] = False
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        if specs and tool_choice is None and tool_required:
            tool_choice = "required"
        return {
            "messages": messages,
            "tools": specs or None,
            "tool_choice": tool_choice if specs else None,
            "parallel_tool_calls": allow_parallel_tool_calls if specs else None,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        if not allow_parallel_tool_calls:
            force_single_tool_call(response)
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        error_on_invalid_args: bool = False,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of a (possibly streamed, partial) response as ``ToolSelection``s.

        No tool call raises ``ValueError`` when ``error_on_no_tool_call`` (else ``[]``). Broken
        argument JSON gives the partial-JSON reading or ``{}``, as LlamaIndex's OpenAI LLM does;
        ``error_on_invalid_args=True`` raises a ``ValueError`` naming the tool instead.
        """
        return tool_selections(
            response.message,
            error_on_no_tool_call=error_on_no_tool_call,
            error_on_invalid_args=error_on_invalid_args,
        )

    # ------------------------------------------------------------------ structured output

    def _json_schema_requested(self, llm_kwargs: dict[str, Any]) -> bool:
        method = llm_kwargs.pop("structured_output_method", self.structured_output_method)
        if method not in ("function_calling", "json_schema"):
            raise ValueError(
                f"structured_output_method must be 'function_calling' or 'json_schema', got "
                f"{method!r}"
            )
        return bool(method == "json_schema")

    def _schema_call(
        self, output_cls: type[Model], prompt: PromptTemplate, llm_kwargs: dict[str, Any],
        prompt_args: dict[str, Any],
    ) -> tuple[list[ChatMessage], dict[str, Any]]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        llm_kwargs.pop("tool_choice", None)
        llm_kwargs["response_format"] = json_schema_format(output_cls, strict=self.strict)
        return messages, llm_kwargs

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """A ``output_cls`` instance: a forced tool call, or ``response_format`` json_schema."""
        llm_kwargs = dict(llm_kwargs or {})
        if not self._json_schema_requested(llm_kwargs):
            return cast(Model, super().structured_predict(output_cls, prompt, llm_kwargs,
                                                          **prompt_args))
        dispatcher.event(LLMStructuredPredictStartEvent(
            output_cls=output_cls, template=prompt, template_args=prompt_args))
        messages, kwargs = self._schema_call(output_cls, prompt, llm_kwargs, prompt_args)
        result = _parse_structured(output_cls, self.chat(messages, **kwargs))
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async twin of :meth:`structured_predict`."""
        llm_kwargs = dict(llm_kwargs or {})
        if not self._json_schema_requested(llm_kwargs):
            return cast(Model, await super().astructured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            ))
        dispatcher.event(LLMStructuredPredictStartEvent(
            output_cls=output_cls, template=prompt, template_args=prompt_args))
        messages, kwargs = self._schema_call(output_cls, prompt, llm_kwargs, prompt_args)
        result = _parse_structured(output_cls, await self.achat(messages, **kwargs))
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    def _structured_stream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None, None]:
        llm_kwargs = dict(llm_kwargs or {})
        if not self._json_schema_requested(llm_kwargs):
            return super()._structured_stream_call(output_cls, prompt, llm_kwargs, **prompt_args)
        from llama_index.core.program.streaming_utils import (
            process_streaming_content_incremental,
        )

        messages, kwargs = self._schema_call(output_cls, prompt, llm_kwargs, prompt_args)
        responses = self.stream_chat(messages, **kwargs)

        def gen() -> Generator[Model | FlexibleModel, None, None]:
            current: Model | FlexibleModel | None = None
            for response in responses:
                current = process_streaming_content_incremental(response, output_cls, current)
                yield current

        return gen()

    async def _structured_astream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None]:
        llm_kwargs = dict(llm_kwargs or {})
        if not self._json_schema_requested(llm_kwargs):
            return await super()._structured_astream_call(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
        from llama_index.core.program.streaming_utils import (
            process_streaming_content_incremental,
        )

        messages, kwargs = self._schema_call(output_cls, prompt, llm_kwargs, prompt_args)
        responses = await self.astream_chat(messages, **kwargs)

        async def gen() -> AsyncGenerator[Model | FlexibleModel, None]:
            current: Model | FlexibleModel | None = None
            async for response in responses:
                current = process_streaming_content_incremental(response, output_cls, current)
                yield current

        return gen()


def _to_completion(response: ChatResponse) -> CompletionResponse:
    completion = chat_response_to_completion_response(response)
    completion.logprobs = response.logprobs
    return completion


def _parse_structured(output_cls: type[Model], response: ChatResponse) -> Model:
    text = response.message.content or ""
    try:
        return output_cls.model_validate_json(text)
    except ValueError as exc:
        raise ValueError(
            f"The model's JSON answer is not a valid {output_cls.__name__}: {exc}\n"
            f"Answer: {text[:500]!r}"
        ) from exc
