"""LlamaIndex messages and blocks <-> OpenAI wire dicts, and parsed answers -> ``ChatResponse``.

Pure functions (no HTTP): :class:`~llama_index_runcrate.llms.RuncrateLLM` converts its input with
:func:`to_openai_messages` and its output with :func:`chat_response` / :class:`ChatResponseSink`.
The wire itself (bodies, choices, stream deltas, tool-call arguments) is parsed by
:mod:`runcrate_integrations.wire`; this module only maps it onto LlamaIndex's types.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import filetype  # type: ignore[import-untyped]  # ships no type hints
from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    ChatResponse,
    ImageBlock,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from pydantic import BaseModel

from runcrate_integrations.chat.answer import (
    Choice,
    ChunkDelta,
    Completion,
    StreamFold,
    ToolCall,
    Usage,
    parse_arguments,
)

JSONDict = dict[str, Any]

_SUPPORTED_BLOCKS = (
    "TextBlock, ImageBlock, AudioBlock, VideoBlock, ThinkingBlock, ToolCallBlock, CachePoint"
)


# ---------------------------------------------------------------------------- to the wire


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[JSONDict]:
    """OpenAI ``messages`` for a sequence of LlamaIndex chat messages."""
    return [to_openai_message(m) for m in messages]


def to_openai_message(message: ChatMessage) -> JSONDict:
    """One LlamaIndex ``ChatMessage`` as an OpenAI message dict.

    Text-only content becomes a string (what every OpenAI-compatible server accepts); images
    and audio make it a list of parts (``image_url``, ``input_audio``), as LangChain's blocks
    do; a video only in a tool message (``video_url``). In a tool message those parts are
    what a tool returned: the chat engine turns them into
    text and shows images to a vision model in a user message (one rule for both frameworks,
    :mod:`runcrate_integrations.chat.media`). Thinking blocks are not sent back: servers
    reject or ignore them.
    """
    role = message.role.value
    parts: list[JSONDict] = []
    calls: list[JSONDict] = []
    has_media = False
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, VideoBlock) and role != "tool":
            raise ValueError(
                f"VideoBlock is not supported in a {role} message sent to Runcrate (chat models "
                "read text, images and some audio; a video a tool returned is described to the "
                "model in its tool message)"
            )
        elif isinstance(block, (ImageBlock, AudioBlock, VideoBlock)):
            parts.append(media_part(block))
            has_media = True
        elif isinstance(block, ToolCallBlock):
            calls.append(_call_from_block(block))
        elif isinstance(block, (ThinkingBlock, CachePoint)):
            continue
        else:
            raise ValueError(
                f"{type(block).__name__} is not supported in a {role} message sent to Runcrate; "
                f"supported blocks: {_SUPPORTED_BLOCKS}"
            )
    content: Any = parts if has_media else "\n".join(p["text"] for p in parts)
    out: JSONDict = {"role": role, "content": content}
    extra = message.additional_kwargs
    if role == "assistant":
        if not calls and extra.get("tool_calls"):
            calls = [_wire_call(c) for c in extra["tool_calls"]]
        if calls:
            out["tool_calls"] = calls
            if content == "":
                out["content"] = None
    elif role == "tool":
        call_id = extra.get("tool_call_id")
        if not call_id:
            raise ValueError(
                "A tool message needs additional_kwargs['tool_call_id'] (the id of the tool call "
                "it answers)"
            )
        out["tool_call_id"] = call_id
    name = extra.get("name")
    if name and role != "tool":
        out["name"] = name
    return out


def media_part(block: ImageBlock | AudioBlock | VideoBlock) -> JSONDict:
    """The OpenAI content part of a media block."""
    if isinstance(block, ImageBlock):
        return image_part(block)
    if isinstance(block, AudioBlock):
        return audio_part(block)
    return video_part(block)


def _read(block: AudioBlock | VideoBlock, what: str) -> bytes:
    try:
        stream = (
            block.resolve_audio(as_base64=False)
            if isinstance(block, AudioBlock)
            else block.resolve_video(as_base64=False)
        )
        data: bytes = stream.read()
        return data
    except OSError as exc:
        raise ValueError(
            f"Cannot read {what} file {str(block.path)!r}: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:  # resolve_* refuses empty data
        raise ValueError(f"Cannot send {what}: {exc}") from exc


def audio_part(block: AudioBlock) -> JSONDict:
    """An ``input_audio`` part (base64 and its format), as OpenAI's audio-input models take."""
    if block.audio is None and block.path is None:
        raise ValueError("AudioBlock has no audio or path to send (a URL cannot be inlined)")
    data = _read(block, "audio")
    fmt = (block.format or Path(str(block.path or "")).suffix.lstrip(".") or "mp3").lower()
    return {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(data).decode("ascii"), "format": fmt},
    }


def video_part(block: VideoBlock) -> JSONDict:
    """A ``video_url`` part: a URL as is, bytes or a file as a data URI."""
    if block.video is None and block.path is None:
        if block.url is None:
            raise ValueError("VideoBlock has no video, path or url to send")
        return {"type": "video_url", "video_url": {"url": str(block.url)}}
    data = _read(block, "video")
    mime = block.video_mimetype or "video/mp4"
    return {
        "type": "video_url",
        "video_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"},
    }


def image_part(block: ImageBlock) -> JSONDict:
    """An ``image_url`` part: URLs go as they are, files and bytes as base64 data URIs."""
    if block.image is not None or block.path is not None:
        url = _data_uri(block)
    elif block.url is not None:
        url = str(block.url)
    else:
        raise ValueError("ImageBlock has no image, path or url to send")
    image_url: JSONDict = {"url": url}
    if block.detail:
        image_url["detail"] = block.detail
    return {"type": "image_url", "image_url": image_url}


def _data_uri(block: ImageBlock) -> str:
    where = f"image file {str(block.path)!r}" if block.path is not None else "image bytes"
    try:
        data = block.resolve_image(as_base64=False).read()
    except OSError as exc:
        raise ValueError(f"Cannot read {where}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # resolve_image refuses empty data
        raise ValueError(f"Cannot send {where}: {exc}") from exc
    mime = block.image_mimetype or _guess_image_mime(data, block.path)
    if mime is None:
        raise ValueError(
            f"Cannot tell the image type of {where}; pass image_mimetype='image/png' (or the "
            "right type) to ImageBlock"
        )
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _guess_image_mime(data: bytes, path: object) -> str | None:
    kind = filetype.guess(data)
    if kind is not None and str(kind.mime).startswith("image/"):
        return str(kind.mime)
    if path is not None:
        guessed, _ = mimetypes.guess_type(str(path))
        if guessed and guessed.startswith("image/"):
            return guessed
    return None


def _call_from_block(block: ToolCallBlock) -> JSONDict:
    if not block.tool_call_id:
        raise ValueError(
            f"ToolCallBlock for tool {block.tool_name!r} has no tool_call_id; the API needs it to "
            "match the tool's answer to the call"
        )
    args = block.tool_kwargs
    return _call_dict(block.tool_call_id, block.tool_name, args)


def _call_dict(call_id: str, name: str, arguments: str | Mapping[str, Any]) -> JSONDict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def _wire_call(call: Any) -> JSONDict:
    """A tool call from ``additional_kwargs['tool_calls']``: a dict or an openai object."""
    if isinstance(call, BaseModel):
        call = call.model_dump()
    if not isinstance(call, Mapping):
        raise ValueError(f"Unsupported entry in additional_kwargs['tool_calls']: {call!r}")
    fn = call.get("function") or {}
    return _call_dict(
        str(call.get("id") or ""), str(fn.get("name") or ""), fn.get("arguments") or ""
    )


# ---------------------------------------------------------------------------- from the wire


def _wire_calls(calls: Sequence[ToolCall]) -> list[JSONDict]:
    return [_call_dict(c.id, c.name, c.arguments) for c in calls]


def message_from_choice(choice: Choice, usage: Usage | None = None) -> ChatMessage:
    """The assistant ``ChatMessage`` of a parsed choice.

    Reasoning becomes a ``ThinkingBlock`` and ``additional_kwargs['reasoning_content']``; tool
    calls become ``ToolCallBlock``s (arguments parsed into a dict, or kept as the raw text when
    the JSON is broken) and ``additional_kwargs['tool_calls']`` (OpenAI dicts).
    """
    blocks: list[Any] = []
    extra: JSONDict = {}
    if choice.reasoning_content:
        tokens = usage.reasoning_output_tokens if usage is not None else None
        blocks.append(ThinkingBlock(content=choice.reasoning_content, num_tokens=tokens))
        extra["reasoning_content"] = choice.reasoning_content
    blocks.append(TextBlock(text=choice.content or ""))
    if choice.tool_calls:
        blocks.extend(
            ToolCallBlock(
                tool_call_id=c.id or None,
                tool_name=c.name,
                tool_kwargs=c.args if c.args is not None else c.arguments,
            )
            for c in choice.tool_calls
        )
        extra["tool_calls"] = _wire_calls(choice.tool_calls)
    if choice.refusal:
        extra["refusal"] = choice.refusal
    if choice.parsed is not None:
        extra["parsed"] = choice.parsed  # the answer as a per-call response_format class
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)


def usage_kwargs(usage: Usage | None) -> JSONDict:
    """Token counts under the keys LlamaIndex's token counter and users read."""
    if usage is None:
        return {}
    out: JSONDict = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None:
        out["cached_tokens"] = usage.cached_input_tokens
    if usage.reasoning_output_tokens is not None:
        out["reasoning_tokens"] = usage.reasoning_output_tokens
    return out


def to_logprobs(wire: object) -> list[list[LogProb]] | None:
    """LlamaIndex logprobs (per token: its top alternatives, else the token) from the wire."""
    if not isinstance(wire, Mapping):
        return None
    content = wire.get("content")
    if not content:
        return None
    out: list[list[LogProb]] = []
    for token in content:
        candidates = token.get("top_logprobs") or [token]
        out.append(
            [
                LogProb(
                    token=c.get("token") or "",
                    logprob=c.get("logprob") or 0.0,
                    bytes=c.get("bytes") or [],
                )
                for c in candidates
            ]
        )
    return out


def chat_response(completion: Completion, delta: str | None = None) -> ChatResponse:
    """The ``ChatResponse`` of a parsed or stream-folded completion (usage in additional_kwargs)."""
    choice = completion.choice
    extra = usage_kwargs(completion.usage)
    if choice.finish_reason:
        extra["finish_reason"] = choice.finish_reason
    if completion.rate_limit is not None:
        extra["rate_limit"] = completion.rate_limit
    return ChatResponse(
        message=message_from_choice(choice, completion.usage),
        raw=completion.raw,
        delta=delta,
        logprobs=to_logprobs(choice.logprobs),
        additional_kwargs=extra,
    )


class ChatResponseSink:
    """A stream's cumulative ``ChatResponse``s, read from the core's fold (the engine's sink).

    Each response carries the answer so far in ``message`` (text, reasoning as a
    ``ThinkingBlock``, tool calls as ``ToolCallBlock``s with their argument text so far and as
    OpenAI dicts in ``additional_kwargs['tool_calls']``), the new text in ``delta`` and the new
    reasoning in ``additional_kwargs['thinking_delta']``. The last response is the whole
    answer (``delta=""``), with parsed tool arguments and usage. LlamaIndex has one answer per
    call, so only the first choice is shown.
    """

    __slots__ = ()

    def chunk(self, fold: StreamFold, deltas: list[ChunkDelta]) -> list[ChatResponse]:
        for d in deltas:
            if d.index != 0 or not (d.content or d.reasoning_content or d.tool_calls):
                continue
            thought = d.reasoning_content or ""
            return [
                ChatResponse(
                    message=message_from_choice(fold.snapshot(0)),
                    delta=d.content or "",
                    raw=fold.last_chunk,
                    logprobs=to_logprobs(d.logprobs) if d.logprobs else None,
                    additional_kwargs={"thinking_delta": thought} if thought else {},
                )
            ]
        return []

    def end(self, fold: StreamFold, completion: Completion) -> list[ChatResponse]:
        return [chat_response(completion, delta="")]


# ---------------------------------------------------------------------------- tool selections


def tool_selections(
    message: ChatMessage,
    *,
    error_on_no_tool_call: bool = True,
    error_on_invalid_args: bool = False,
) -> list[ToolSelection]:
    """``ToolSelection``s for the tool calls of an assistant message.

    Arguments that are not a JSON object are read as partial JSON (a stream in progress), else
    as ``{}`` -- what LlamaIndex's OpenAI integration does -- unless ``error_on_invalid_args``,
    which raises a ``ValueError`` naming the tool and the JSON error instead.
    """
    calls = [
        (b.tool_call_id or "", b.tool_name, b.tool_kwargs)
        for b in message.blocks
        if isinstance(b, ToolCallBlock)
    ]
    if not calls:
        for raw in message.additional_kwargs.get("tool_calls") or ():
            wire = _wire_call(raw)
            fn = wire["function"]
            calls.append((wire["id"], fn["name"], fn["arguments"]))
    if not calls:
        if error_on_no_tool_call:
            answer = (message.content or "")[:200]
            raise ValueError(
                f"Expected at least one tool call, but got 0 tool calls; the model answered "
                f"with text: {answer!r}"
            )
        return []
    out = []
    for call_id, name, arguments in calls:
        args = (
            arguments
            if isinstance(arguments, dict)
            else _args(name, arguments, error_on_invalid_args)
        )
        out.append(ToolSelection(tool_id=call_id, tool_name=name, tool_kwargs=args))
    return out


def _args(name: str, text: str, strict: bool) -> JSONDict:
    args, error = parse_arguments(text)
    if args is not None:
        return args
    if strict:
        raise ValueError(
            f"The model called tool {name!r} with invalid arguments: {error}: {text[:200]!r}"
        )
    try:
        partial = parse_partial_json(text)
    except (ValueError, TypeError):
        return {}
    return partial if isinstance(partial, dict) else {}


def force_single_tool_call(response: ChatResponse) -> None:
    """Keep only the first tool call (blocks and ``additional_kwargs``) of a response."""
    message = response.message
    seen = False
    blocks = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            if seen:
                continue
            seen = True
        blocks.append(block)
    message.blocks = blocks
    calls = message.additional_kwargs.get("tool_calls")
    if isinstance(calls, list) and len(calls) > 1:
        message.additional_kwargs["tool_calls"] = calls[:1]
