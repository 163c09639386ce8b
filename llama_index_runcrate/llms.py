"""``RuncrateLLM``: LlamaIndex's ``FunctionCallingLLM`` protocol over Runcrate's chat API.

The fields and LlamaIndex's hooks live here; messages are converted in :mod:`._messages`, and
everything between (options, the request, sending, streaming, closing, errors, clients) is the
core's :class:`~runcrate_integrations.chat.ChatEngine`, shared with LangChain's ``ChatRuncrate``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

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
from pydantic import ConfigDict, Field, model_validator

from runcrate_integrations.catalog import ModelInfo, cached_model_info
from runcrate_integrations.chat.answer import parse_structured
from runcrate_integrations.chat.request import response_format_for, strict_schema
from runcrate_integrations.chat.settings import ChatSettings
from runcrate_integrations.tokens import counter_for

from ._messages import (
    ChatResponseSink,
    chat_response,
    force_single_tool_call,
    to_openai_messages,
    tool_selections,
)

if TYPE_CHECKING:
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.tools.types import BaseTool


dispatcher = get_dispatcher(__name__)

#: Context window assumed when neither the user nor Runcrate's catalog gives one.
DEFAULT_CONTEXT_WINDOW = 32_768

# OpenAILike's constructor names that are request parameters here: sent in the body as given.
_BODY_PARAMS = frozenset({"reasoning_effort", "modalities"})
# OpenAILike's constructor names that mean nothing for Runcrate: refused, saying why.
_NO_MEANING = {
    "api_version": "it belongs to Azure OpenAI",
    "audio_config": "Runcrate's chat models do not speak; see the speech tool",
    "tokenizer": "tokens are counted without a tokenizer: use llm.tokenizer or count_tokens()",
}
StructuredOutputMethod = Literal["function_calling", "json_schema"]


class RuncrateLLM(ChatSettings, FunctionCallingLLM):
    """Runcrate's OpenAI-compatible chat models as a LlamaIndex ``FunctionCallingLLM``.

    The key comes from ``api_key`` or ``RUNCRATE_API_KEY``; it never appears in ``repr``,
    ``to_dict()`` or ``to_json()``. Parameters are checked against Runcrate's ranges before
    any request; ``OpenAILike``'s constructor names are accepted. Example::

        from llama_index.core import Settings
        from llama_index_runcrate import RuncrateLLM

        Settings.llm = RuncrateLLM(model="deepseek/deepseek-v3.2", temperature=0.2)
        print(Settings.llm.complete("Say hi").text)

    ``llama_index.llms.runcrate.Runcrate`` is this same class under LlamaIndex's usual name.
    """

    # extra="forbid": a misspelt option fails; hide_input_in_errors: errors never echo the key.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    extra_params_field: ClassVar[str] = "additional_kwargs"

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

    def __init__(self, model: str | None = None, **data: Any) -> None:
        if model is not None:
            data["model"] = model
        super().__init__(**data)
        # Fail at construction, not on the first call: missing key, bad extras.
        self._rebuild()

    @model_validator(mode="before")
    @classmethod
    def _openai_like_names(cls, values: Any) -> Any:
        """``OpenAILike``'s names: request parameters go to ``additional_kwargs``, the rest
        mean the same here or are refused with the reason."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for name in [n for n in values if n in _NO_MEANING]:
            raise ValueError(
                f"{name!r} is an OpenAILike setting with no meaning for RuncrateLLM: "
                f"{_NO_MEANING[name]}"
            )
        moved = {n: values.pop(n) for n in [n for n in values if n in _BODY_PARAMS]}
        if moved:
            values["additional_kwargs"] = {**(values.get("additional_kwargs") or {}), **moved}
        values.pop("reuse_client", None)  # clients are always pooled and reused here
        if values.pop("is_chat_model", True) is not True:
            raise ValueError("is_chat_model=False: RuncrateLLM talks to chat models only")
        if values.pop("should_use_structured_outputs", False):
            values.setdefault("structured_output_method", "json_schema")
        return values

    @classmethod
    def class_name(cls) -> str:
        return "runcrate_llm"

    # ------------------------------------------------------------------ metadata

    @property
    def metadata(self) -> LLMMetadata:
        """Context window and tool support from the catalog (fetched on first read; a
        user-given ``context_window`` / ``is_function_calling_model`` wins)."""
        return self._metadata(self.model_info)

    def to_payload(self) -> dict[str, Any]:
        # What instrumentation events carry, built on every call: from the catalog cache only,
        # so that an event never sends a request of its own.
        cached = cached_model_info(self.engine.clients.settings.base_url, self.model)
        return {"class_name": self.class_name(), **self._metadata(cached).model_dump()}

    def _metadata(self, info: ModelInfo | None) -> LLMMetadata:
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

    # ------------------------------------------------------------------ tokens

    def count_tokens(
        self, messages: Sequence[ChatMessage], tools: Sequence[BaseTool] | None = None
    ) -> int:
        """Prompt tokens of ``messages`` (and ``tools``), with no request and no tokenizer
        download: an estimate calibrated per model by the usage of this process's answers."""
        specs = [t.metadata.to_openai_tool(skip_length_check=True) for t in tools or ()]
        counter = self.engine.token_counter()
        return counter.count_messages(to_openai_messages(messages), specs or None)

    @property
    def tokenizer(self) -> Callable[[str], list[int]]:
        """LlamaIndex's tokenizer hook for this model: ``len(llm.tokenizer(text))`` is the
        estimated token count (e.g. ``ChatMemoryBuffer.from_defaults(llm=llm,
        tokenizer_fn=llm.tokenizer)`` or ``Settings.tokenizer = llm.tokenizer``)."""
        return _Tokenizer(self.engine.clients.settings.base_url, self.model)

    # ------------------------------------------------------------------ requests

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self.engine.request(to_openai_messages(messages), kwargs)
        return chat_response(self.engine.complete(request))

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self.engine.request(to_openai_messages(messages), kwargs)
        return chat_response(await self.engine.acomplete(request))

    # The engine's own generators are returned: they release the connection however the
    # stream ends.
    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        request = self.engine.request(to_openai_messages(messages), kwargs, stream=True)
        return self.engine.stream(request, ChatResponseSink())

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        request = self.engine.request(to_openai_messages(messages), kwargs, stream=True)
        return self.engine.astream(request, ChatResponseSink())

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
                function = spec["function"]
                function["parameters"] = strict_schema(function["parameters"])
                function["strict"] = True
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
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any],
        prompt_args: dict[str, Any],
    ) -> tuple[list[ChatMessage], dict[str, Any]]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        llm_kwargs.pop("tool_choice", None)
        llm_kwargs["response_format"] = response_format_for(output_cls, strict=self.strict or None)
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
            return cast(
                Model, super().structured_predict(output_cls, prompt, llm_kwargs, **prompt_args)
            )
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
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
            return cast(
                Model,
                await super().astructured_predict(output_cls, prompt, llm_kwargs, **prompt_args),
            )
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
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
    parsed: Model = parse_structured(response.message.content, output_cls)
    return parsed


#: LlamaIndex names a provider's LLM class after the provider (``llama_index.llms.openai.OpenAI``);
#: ``from llama_index.llms.runcrate import Runcrate`` is that name, and what the 0.1 wrapper had.
Runcrate = RuncrateLLM


class _Tokenizer:
    """``text -> a list as long as its token count`` (placeholder ids: LlamaIndex only takes
    the length, and declares the hook as returning a list).

    Holds the model's address, not its counter, so it pickles with whatever holds it."""

    __slots__ = ("base_url", "model")

    def __init__(self, base_url: str, model: str) -> None:
        self.base_url = base_url
        self.model = model

    def __call__(self, text: str) -> list[int]:
        return [0] * counter_for(self.base_url, self.model).count_text(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Tokenizer, (self.base_url, self.model))
