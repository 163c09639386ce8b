"""LangChain messages <-> OpenAI chat-completions dicts, and wire answers -> LangChain outputs.

Pure functions over plain dicts and the core's parsed types; nothing here does I/O. Requests go
out through :func:`to_openai_messages`; answers come back through :func:`completion_to_result`
(one JSON answer) or a :class:`GenerationChunkSink` (what the core's engine yields per stream chunk,
read from its ``StreamFold``), shared by the sync and async paths. Structured output's
``response_format`` and refusal check are here too.

``langchain_core.messages.convert_to_openai_messages`` is not used for requests: it forwards
reasoning blocks as content parts, rejects the ``tool_call`` blocks of v1-format history and
drops invalid tool calls, all of which a chat-completions server needs handled differently.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.exceptions import ModelRefusalError
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_openai_data_block,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, Generation
from langchain_core.runnables import RunnableGenerator
from langchain_core.utils.function_calling import convert_to_openai_function

from runcrate_integrations.chat.answer import (
    Choice,
    ChunkDelta,
    Completion,
    StreamFold,
    Usage,
    parse_structured,
    validate_structured,
)
from runcrate_integrations.chat.media import artifact_parts
from runcrate_integrations.chat.request import is_schema_class, response_format_for

from ._error_hook import langchain_error

JSONDict = dict[str, Any]
PROVIDER = "runcrate"

# Multimodal blocks (LangChain v1 and v0 shapes) that langchain-core converts to OpenAI parts.
_DATA_BLOCKS = frozenset({"image", "audio", "file"})
# OpenAI-format parts that are already what the wire wants.
_OPENAI_PARTS = frozenset({"input_audio"})
_SUPPORTED = "text, image_url, image, audio, file, input_audio, non_standard"


# ------------------------------------------------------------------ LangChain -> wire


def block_to_part(block: str | Mapping[str, Any]) -> JSONDict:
    """One content block (OpenAI or LangChain standard format) as an OpenAI content part.

    Raises ``ValueError`` naming the block type when it has no chat-completions equivalent.
    """
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image_url":
        image = block["image_url"]
        if isinstance(image, str):  # a bare URL string is accepted by some callers
            image = {"url": image}
        return {"type": "image_url", "image_url": image}
    if kind in _DATA_BLOCKS:
        if kind == "file" and isinstance(block.get("file"), Mapping):
            return dict(block)  # already OpenAI's {"type": "file", "file": {...}}
        if kind == "image" and isinstance(block.get("source"), Mapping):
            return convert_to_openai_data_block(_anthropic_image(block["source"]))
        return convert_to_openai_data_block(dict(block))
    if kind in _OPENAI_PARTS:
        return dict(block)
    if kind == "non_standard":
        # LangChain's escape hatch for provider-native parts: send the value as given.
        return dict(block["value"])
    raise ValueError(
        f"Content block type {kind!r} is not supported by Runcrate chat completions "
        f"(supported: {_SUPPORTED})"
    )


def _anthropic_image(source: Mapping[str, Any]) -> JSONDict:
    """The standard image block of an Anthropic-format one's ``source``.

    Apps mixing providers keep ``{"type": "image", "source": {...}}`` blocks in their histories;
    langchain-core's OpenAI conversion does not read them, so they are put in LangChain's own
    shape first. A block missing what its source type needs fails here, before any request.
    """
    kind = source.get("type")
    if kind == "base64":
        missing = [key for key in ("media_type", "data") if not source.get(key)]
        if missing:
            raise ValueError(
                f"Anthropic-format image block has no {' and no '.join(map(repr, missing))} in "
                "its base64 source; it needs both 'media_type' (e.g. 'image/png') and 'data'"
            )
        return {"type": "image", "base64": source["data"], "mime_type": source["media_type"]}
    if kind == "url":
        if not source.get("url"):
            raise ValueError("Anthropic-format image block has no 'url' in its url source")
        return {"type": "image", "url": source["url"]}
    raise ValueError(
        f"Anthropic-format image source type {kind!r} cannot be sent to Runcrate chat "
        "completions; send the image as a 'base64' or 'url' source"
    )


def content_to_wire(content: str | Sequence[str | Mapping[str, Any]]) -> str | list[JSONDict]:
    """Message content as the wire wants it: a string stays a string, blocks become parts."""
    if isinstance(content, str):
        return content
    return [block_to_part(block) for block in content]


def _assistant_text(content: str | Sequence[str | Mapping[str, Any]]) -> str:
    # Assistant history keeps only its text: reasoning, tool_call and other blocks of a v1
    # message are either sent elsewhere (tool_calls) or mean nothing to the server.
    if isinstance(content, str):
        return content
    return "".join(
        b if isinstance(b, str) else b.get("text", "")
        for b in content
        if isinstance(b, str) or b.get("type") == "text"
    )


def _assistant_tool_calls(message: AIMessage, position: int = 0) -> list[JSONDict]:
    calls = [
        {
            "id": tc["id"],
            "type": "function",
            "function": {
                "name": tc["name"],
                "arguments": json.dumps(tc["args"], ensure_ascii=False),
            },
        }
        for tc in message.tool_calls
    ]
    # A call whose arguments did not parse is still part of the conversation; send it back
    # verbatim so the matching tool message has something to answer.
    calls.extend(
        {
            "id": tc["id"],
            "type": "function",
            "function": {"name": tc["name"] or "", "arguments": tc["args"] or ""},
        }
        for tc in message.invalid_tool_calls
    )
    legacy = message.additional_kwargs.get("function_call")
    if not calls and isinstance(legacy, Mapping) and legacy.get("name"):
        # A legacy function call (answered by a FunctionMessage): sent as the tool call it is
        # today, under an id derived from its place in the conversation.
        arguments = legacy.get("arguments") or "{}"
        calls.append(
            {
                "id": f"call_{legacy['name']}_{position}",
                "type": "function",
                "function": {"name": legacy["name"], "arguments": arguments},
            }
        )
    return calls


def _tool_content(message: ToolMessage) -> str | list[JSONDict]:
    """A tool message's content, plus the media of a media tool's artifact as parts: the
    chat engine then applies the one rule for media in agent loops to both (text in the tool
    message; images to a vision model in a user message)."""
    content = content_to_wire(message.content)
    media = artifact_parts(message.artifact)
    if not media:
        return content
    head = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return [*head, *media]


def message_to_dict(message: BaseMessage, position: int = 0) -> JSONDict:
    """One LangChain message as an OpenAI chat message dict (``position``: its place in the
    conversation, which names a legacy function call)."""
    out: JSONDict
    if isinstance(message, HumanMessage):
        out = {"role": "user", "content": content_to_wire(message.content)}
    elif isinstance(message, SystemMessage):
        out = {"role": "system", "content": content_to_wire(message.content)}
    elif isinstance(message, AIMessage):
        text = _assistant_text(message.content)
        calls = _assistant_tool_calls(message, position)
        out = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            out["tool_calls"] = calls
    elif isinstance(message, ToolMessage):
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _tool_content(message),
        }
    elif isinstance(message, ChatMessage):
        out = {"role": message.role, "content": content_to_wire(message.content)}
    elif isinstance(message, FunctionMessage):
        raise ValueError(
            "A FunctionMessage answers an earlier function call, so it is converted with the "
            "whole conversation: use to_openai_messages([...])"
        )
    else:
        raise ValueError(
            f"{type(message).__name__} is not supported; use SystemMessage, HumanMessage, "
            "AIMessage, ToolMessage, FunctionMessage or ChatMessage"
        )
    if message.name:
        out["name"] = message.name
    return out


def to_openai_messages(messages: Iterable[BaseMessage], *, lenient: bool = False) -> list[JSONDict]:
    """The ``messages`` array of a chat-completions request.

    A ``FunctionMessage`` (LangChain's legacy function result) becomes the ``tool`` message
    answering the earliest unanswered call of that function: the wire has no function role.
    ``lenient`` (for counting tokens of any slice of a history) lets a FunctionMessage whose
    call is not in the list through, unanswered, instead of raising.
    """
    out: list[JSONDict] = []
    unanswered: dict[str, list[str]] = {}  # function name -> ids of calls not yet answered
    for position, message in enumerate(messages):
        if isinstance(message, FunctionMessage):
            ids = unanswered.get(message.name or "")
            if not ids and lenient:
                ids = [""]
            if not ids:
                raise ValueError(
                    f"FunctionMessage {message.name!r} answers no earlier call of that function "
                    "in the conversation; send the AIMessage that called it first"
                )
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": ids.pop(0),
                    "content": content_to_wire(message.content),
                }
            )
            continue
        wire = message_to_dict(message, position)
        for call in wire.get("tool_calls") or ():
            unanswered.setdefault(call["function"]["name"], []).append(call["id"])
        if wire["role"] == "tool":
            for ids in unanswered.values():
                if wire["tool_call_id"] in ids:
                    ids.remove(wire["tool_call_id"])
        out.append(wire)
    return out


def schema_to_response_format(schema: dict[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    """``response_format`` for ``method="json_schema"``, built by the core's one builder.

    A pydantic class, a JSON schema or a spec already in OpenAI's shape (``{"name", "schema",
    "strict"?}`` or the whole ``{"type": "json_schema", ...}``, sent as given) go to it as they
    are; anything else (a TypedDict, a function) is first converted by langchain-core.
    """
    if isinstance(schema, Mapping) or is_schema_class(schema):
        return response_format_for(schema, strict=strict)
    # A TypedDict, a function or a pydantic.v1 class: langchain-core's converter first.
    return response_format_for(convert_to_openai_function(schema), strict=strict)


class StructuredOutputParser(JsonOutputParser):
    """``json_schema`` / ``json_mode`` answers: growing partial objects while streaming
    (langchain-core's partial JSON), the whole answer by the core's one parser, so a bad answer
    raises the same error as in LlamaIndex (``RuncrateStructuredOutputError``, also an
    ``OutputParserException``). ``schema_class``: a pydantic class, or ``None`` for a dict."""

    schema_class: type[Any] | None = None

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        if partial:
            value = super().parse_result(result, partial=True)
            if self.schema_class is None or value is None:
                return value
            try:  # a partial object once what has arrived validates, as langchain-core does
                return validate_structured(value, self.schema_class)
            except ValueError:
                return None
        try:
            return parse_structured(result[0].text, self.schema_class)
        except ValueError as exc:  # the core's StructuredOutputError
            raise langchain_error(exc) from None


def raise_on_refusal(message: AIMessage) -> AIMessage:
    """Surface a refusal as LangChain's ``ModelRefusalError`` instead of a parse failure."""
    refusal = message.additional_kwargs.get("refusal")
    if refusal:
        raise ModelRefusalError(
            f"Model refused to produce the requested output: {refusal}", raw_message=message
        )
    return message


def _check_refusals(messages: Iterator[AIMessage]) -> Iterator[AIMessage]:
    for message in messages:
        yield raise_on_refusal(message)


async def _acheck_refusals(messages: AsyncIterator[AIMessage]) -> AsyncIterator[AIMessage]:
    async for message in messages:
        yield raise_on_refusal(message)


def refusal_check() -> RunnableGenerator[AIMessage, AIMessage]:
    """:func:`raise_on_refusal` as a step that passes a stream through chunk by chunk, so the
    output parser after it still yields growing partial objects."""
    return RunnableGenerator(_check_refusals, _acheck_refusals, name="raise_on_refusal")


# ------------------------------------------------------------------ wire -> LangChain


def usage_to_metadata(usage: Usage) -> UsageMetadata:
    """LangChain's usage record; the details appear only when the server reported them."""
    # cast: langchain-core marks the detail keys with typing.NotRequired, which mypy's
    # Python 3.10 target does not know, so it would demand them.
    meta = cast(
        UsageMetadata,
        {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
    )
    if usage.cached_input_tokens is not None:
        meta["input_token_details"] = InputTokenDetails(cache_read=usage.cached_input_tokens)
    if usage.reasoning_output_tokens is not None:
        meta["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning_output_tokens)
    return meta


def choice_to_message(
    choice: Choice, completion: Completion, usage: UsageMetadata | None = None
) -> AIMessage:
    """One parsed choice as an ``AIMessage``; broken tool-call JSON becomes an invalid call."""
    extra: JSONDict = {}
    if choice.reasoning_content:
        extra["reasoning_content"] = choice.reasoning_content
    if choice.refusal:
        extra["refusal"] = choice.refusal
    if choice.parsed is not None:
        extra["parsed"] = choice.parsed  # a per-call response_format class, as ChatOpenAI does
    calls, invalid = [], []
    for tc in choice.tool_calls:
        if tc.args is None:
            invalid.append(
                invalid_tool_call(name=tc.name, args=tc.arguments, id=tc.id, error=tc.error)
            )
        else:
            calls.append(tool_call(name=tc.name, args=tc.args, id=tc.id))
    metadata: JSONDict = {
        "model_name": completion.model,
        "finish_reason": choice.finish_reason,
        "id": completion.id,
        "system_fingerprint": completion.system_fingerprint,
        "model_provider": PROVIDER,
    }
    if choice.logprobs is not None:
        metadata["logprobs"] = choice.logprobs
    if completion.rate_limit is not None:
        metadata["rate_limit"] = completion.rate_limit
    return AIMessage(
        content=choice.content or "",
        additional_kwargs=extra,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage,
        response_metadata=metadata,
    )


def completion_to_result(completion: Completion) -> ChatResult:
    """A parsed chat completion as LangChain's ``ChatResult`` (one generation per choice).

    Usage covers the whole request, so only the first generation carries it: summing the
    generations' usage then gives the true total.
    """
    usage = usage_to_metadata(completion.usage) if completion.usage else None
    generations = []
    for i, choice in enumerate(completion.choices):
        info: JSONDict = {"finish_reason": choice.finish_reason}
        if choice.logprobs is not None:
            info["logprobs"] = choice.logprobs
        message = choice_to_message(choice, completion, usage if i == 0 else None)
        generations.append(ChatGeneration(message=message, generation_info=info))
    raw_usage = (completion.raw or {}).get("usage")
    llm_output: JSONDict = {
        "token_usage": raw_usage,
        "model_name": completion.model,
        "system_fingerprint": completion.system_fingerprint,
    }
    return ChatResult(generations=generations, llm_output=llm_output)


class GenerationChunkSink:
    """One stream's LangChain chunks, read from the core's fold (the engine's ``ChunkSink``).

    Deltas that add nothing (the opening role-only delta) are skipped. Usage is emitted once, in
    the last chunk, so a server repeating cumulative usage on several chunks is not summed
    twice; a refusal (which stream deltas do not expose) rides on that chunk too.

    Tool-call chunks carry the call's place in the answer as the fold numbers it (0, 1, ... in
    order of arrival: OpenAI's own index, and a number for servers that send none). With
    ``output_version="v1"`` langchain-core uses that number as the content-block index too, and
    numbers text and reasoning blocks from 0 in arrival order; a tool call streamed after some
    text would then share the text block's index and merge into it. So for v1, tool calls are
    numbered after the reasoning/text blocks that came before the first of them.
    """

    __slots__ = ("_completion", "_v1")

    def __init__(self, *, v1_blocks: bool = False) -> None:
        self._v1 = v1_blocks
        self._completion: Completion | None = None

    def chunk(self, fold: StreamFold, deltas: list[ChunkDelta]) -> list[ChatGenerationChunk]:
        """LangChain chunks for one raw stream chunk."""
        return [self._chunk(fold, d) for d in deltas if not d.empty]

    def _chunk(self, fold: StreamFold, delta: ChunkDelta) -> ChatGenerationChunk:
        base = 0
        if self._v1 and delta.tool_calls:
            blocks = fold.blocks(delta.index)
            base = blocks.index("tool_call")  # the blocks that came before any tool call
        message = AIMessageChunk(
            content=delta.content or "",
            additional_kwargs=(
                {"reasoning_content": delta.reasoning_content} if delta.reasoning_content else {}
            ),
            tool_call_chunks=[
                tool_call_chunk(name=t.name, args=t.arguments, id=t.id, index=t.index + base)
                for t in delta.tool_calls
            ],
            response_metadata={"model_provider": PROVIDER},
        )
        info: JSONDict | None = None
        if delta.finish_reason:
            info = {
                "finish_reason": delta.finish_reason,
                "model_name": fold.model,
                "id": fold.id,
                "system_fingerprint": fold.system_fingerprint,
            }
        if delta.logprobs:
            info = {**(info or {}), "logprobs": delta.logprobs}
        return ChatGenerationChunk(message=message, generation_info=info)

    def end(self, fold: StreamFold, completion: Completion) -> list[ChatGenerationChunk]:
        """One last chunk with what only the whole answer knows: usage, a refusal, the
        answer parsed into a per-call response_format class."""
        self._completion = completion
        choice = completion.choices[0]
        extra: JSONDict = {}
        if choice.refusal:
            extra["refusal"] = choice.refusal
        if choice.parsed is not None:
            extra["parsed"] = choice.parsed
        metadata: JSONDict = {"model_provider": PROVIDER}
        if completion.rate_limit is not None:
            metadata["rate_limit"] = completion.rate_limit
        if completion.usage is None and not extra and len(metadata) == 1:
            return []
        message = AIMessageChunk(
            content="",
            additional_kwargs=extra,
            usage_metadata=usage_to_metadata(completion.usage) if completion.usage else None,
            response_metadata=metadata,
        )
        return [ChatGenerationChunk(message=message)]

    def result(self) -> Completion:
        """The whole answer, once the stream has ended."""
        if self._completion is None:
            raise RuntimeError("the stream has not ended yet")
        return self._completion
