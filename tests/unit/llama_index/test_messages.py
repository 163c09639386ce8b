"""Pure conversions: LlamaIndex messages/blocks <-> OpenAI dicts, and wire -> ChatResponse."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from pydantic import BaseModel

from llama_index_runcrate._messages import (
    ChatResponseSink,
    chat_response,
    force_single_tool_call,
    message_from_choice,
    to_logprobs,
    to_openai_message,
    to_openai_messages,
    tool_selections,
    usage_kwargs,
)
from runcrate_integrations import StreamInterruptedError
from runcrate_integrations.chat.answer import StreamFold, parse_completion
from runcrate_integrations.chat.request import response_format_for
from tests.helpers import chunk, completion_body, feed, finish, tool_call

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24


# ---------------------------------------------------------------------------- roles


def test_roles_become_openai_messages() -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
        ChatMessage(role=MessageRole.DEVELOPER, content="dev rules"),
        ChatMessage(role=MessageRole.USER, content="hi", additional_kwargs={"name": "ann"}),
        ChatMessage(role=MessageRole.ASSISTANT, content="hello"),
        ChatMessage(
            role=MessageRole.TOOL, content="42", additional_kwargs={"tool_call_id": "call_1"}
        ),
    ]
    assert to_openai_messages(messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "dev rules"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ]


def test_tool_message_without_tool_call_id_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tool_call_id"):
        to_openai_message(ChatMessage(role=MessageRole.TOOL, content="42"))


def test_several_text_blocks_join_like_chat_message_content() -> None:
    msg = ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")])
    assert to_openai_message(msg) == {"role": "user", "content": "a\nb"}
    assert to_openai_message(ChatMessage(role="user")) == {"role": "user", "content": ""}


def test_thinking_and_cache_point_blocks_are_not_sent() -> None:
    msg = ChatMessage(
        role="assistant",
        blocks=[
            ThinkingBlock(content="hmm"),
            TextBlock(text="done"),
            CachePoint(cache_control=CacheControl(type="ephemeral")),
        ],
    )
    assert to_openai_message(msg) == {"role": "assistant", "content": "done"}


@pytest.mark.parametrize(
    "block",
    [
        DocumentBlock(data=b"%PDF-1.4 hello", document_mimetype="application/pdf"),
    ],
)
def test_unsupported_block_is_named(block: object) -> None:
    msg = ChatMessage(role="user", blocks=[TextBlock(text="see"), block])
    with pytest.raises(ValueError, match=type(block).__name__) as info:
        to_openai_message(msg)
    assert "user message" in str(info.value)


# ---------------------------------------------------------------------------- tool calls


def test_assistant_tool_call_blocks_become_tool_calls() -> None:
    msg = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text=""),
            ToolCallBlock(tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 1, "b": 2}),
            ToolCallBlock(tool_call_id="call_2", tool_name="echo", tool_kwargs='{"x": "y"}'),
        ],
    )
    assert to_openai_message(msg) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            tool_call("add", '{"a": 1, "b": 2}', "call_1"),
            tool_call("echo", '{"x": "y"}', "call_2"),
        ],
    }


def test_tool_call_block_without_id_is_refused() -> None:
    msg = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="add")])
    with pytest.raises(ValueError, match=r"'add' has no tool_call_id"):
        to_openai_message(msg)


def test_assistant_tool_calls_from_additional_kwargs_dicts_and_openai_objects() -> None:
    as_object = ChatCompletionMessageFunctionToolCall.model_validate(tool_call("b", "{}", "call_2"))
    msg = ChatMessage(
        role="assistant",
        content="working",
        additional_kwargs={"tool_calls": [tool_call("a", {"q": 1}), as_object]},
    )
    assert to_openai_message(msg) == {
        "role": "assistant",
        "content": "working",
        "tool_calls": [tool_call("a", '{"q": 1}', "call_1"), tool_call("b", "{}", "call_2")],
    }


def test_assistant_answer_round_trips_to_the_wire() -> None:
    wire = completion_body(
        None,
        tool_calls=[tool_call("add", {"a": 1}), tool_call("mul", {"b": 2}, "call_2")],
        reasoning_content="think",
    )
    message = message_from_choice(parse_completion(wire).choice)
    expected = dict(wire["choices"][0]["message"])
    del expected["reasoning_content"]  # reasoning is not sent back
    assert to_openai_message(message) == expected


# ---------------------------------------------------------------------------- images


def test_image_from_url_with_detail() -> None:
    msg = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="what is it?"),
            ImageBlock(url="https://example.com/cat.jpg", detail="low"),
        ],
    )
    assert to_openai_message(msg) == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is it?"},
            {
                "type": "image_url",
                "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
            },
        ],
    }


def test_image_from_path_is_a_base64_data_uri_with_its_mime_type(tmp_path: Path) -> None:
    png, jpg, unknown = tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "c.bin"
    png.write_bytes(PNG)
    jpg.write_bytes(JPEG)
    unknown.write_bytes(JPEG)  # no useful suffix: the bytes tell
    parts = [
        to_openai_message(ChatMessage(role="user", blocks=[ImageBlock(path=p)]))["content"][0]
        for p in (png, jpg, unknown)
    ]
    assert parts == [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
        {
            "type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()},
        },
        {
            "type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()},
        },
    ]


def test_image_from_raw_bytes() -> None:
    part = to_openai_message(ChatMessage(role="user", blocks=[ImageBlock(image=PNG)]))
    assert part["content"] == [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        }
    ]


def test_unreadable_image_path_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    path.write_bytes(PNG)
    block = ImageBlock(path=path)
    path.unlink()
    with pytest.raises(ValueError, match=r"Cannot read image file .*gone\.png"):
        to_openai_message(ChatMessage(role="user", blocks=[block]))


def test_image_of_unknown_type_asks_for_the_mime_type(tmp_path: Path) -> None:
    path = tmp_path / "blob.dat"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"image_mimetype="):
        to_openai_message(ChatMessage(role="user", blocks=[ImageBlock(path=path)]))


def test_media_blocks_in_a_tool_message_become_parts_for_the_engine_to_place() -> None:
    # What a tool returned stays in its tool message here; the chat engine's one rule
    # (runcrate_integrations.chat.media) turns it into text before sending.
    audio = b"ID3\x04\x00fake mp3 frames \xff\xfb"
    msg = ChatMessage(
        role="tool",
        blocks=[
            TextBlock(text="made it"),
            ImageBlock(image=PNG),
            AudioBlock(audio=audio, format="mp3"),
        ],
        additional_kwargs={"tool_call_id": "c"},
    )
    wire = to_openai_message(msg)
    assert wire["role"] == "tool" and wire["tool_call_id"] == "c"
    assert wire["content"] == [
        {"type": "text", "text": "made it"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
        {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(audio).decode(), "format": "mp3"},
        },
    ]


def test_a_tools_video_block_becomes_a_video_url_part_and_a_users_is_refused() -> None:
    def tool(block: VideoBlock) -> ChatMessage:
        return ChatMessage(role="tool", blocks=[block], additional_kwargs={"tool_call_id": "c"})

    url = to_openai_message(tool(VideoBlock(url="https://cdn.example/clip.mp4")))["content"]
    assert url == [{"type": "video_url", "video_url": {"url": "https://cdn.example/clip.mp4"}}]
    clip = b"\x00\x00\x00\x18ftypmp42 frames"
    inline = to_openai_message(tool(VideoBlock(video=clip, video_mimetype="video/mp4")))
    data = base64.b64encode(clip).decode()
    assert inline["content"] == [
        {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}
    ]
    with pytest.raises(ValueError, match="VideoBlock is not supported in a user message"):
        to_openai_message(ChatMessage(role="user", blocks=[VideoBlock(video=clip)]))


# ---------------------------------------------------------------------------- answers


def test_answer_with_reasoning_and_tool_calls_becomes_blocks_and_kwargs() -> None:
    wire = completion_body(
        "ok",
        reasoning_content="because",
        tool_calls=[tool_call("add", {"a": 1}), tool_call("bad", "{oops", "call_2")],
        usage={
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    response = chat_response(parse_completion(wire))
    msg = response.message
    assert msg.role == MessageRole.ASSISTANT
    assert msg.content == "ok"
    assert msg.blocks == [
        ThinkingBlock(content="because", num_tokens=2),
        TextBlock(text="ok"),
        ToolCallBlock(tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 1}),
        ToolCallBlock(tool_call_id="call_2", tool_name="bad", tool_kwargs="{oops"),
    ]
    assert msg.additional_kwargs == {
        "reasoning_content": "because",
        "tool_calls": [tool_call("add", '{"a": 1}'), tool_call("bad", "{oops", "call_2")],
    }
    assert response.additional_kwargs == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "reasoning_tokens": 2,
        "finish_reason": "tool_calls",
    }
    assert response.raw == wire


def test_usage_kwargs() -> None:
    assert usage_kwargs(None) == {}
    usage = parse_completion(
        completion_body(
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 8},
            }
        )
    ).usage
    assert usage_kwargs(usage) == {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "total_tokens": 12,
        "cached_tokens": 8,
    }


def test_logprobs_conversion() -> None:
    wire = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": -2.5, "bytes": None},
                ],
            },
            {"token": "!", "logprob": -0.01, "bytes": [33], "top_logprobs": []},
        ]
    }
    result = to_logprobs(wire)
    assert result is not None
    assert [[(lp.token, lp.logprob, lp.bytes) for lp in tok] for tok in result] == [
        [("Hi", -0.1, [72, 105]), ("Yo", -2.5, [])],
        [("!", -0.01, [33])],
    ]
    assert to_logprobs(None) is None
    assert to_logprobs({"content": None}) is None


# ---------------------------------------------------------------------------- streams


def test_stream_sink_cumulative_text_reasoning_and_tool_calls() -> None:
    fold, sink = StreamFold(), ChatResponseSink()
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "let me "}),
        chunk({"reasoning_content": "see"}),
        chunk({"content": "Calling"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, finish_reason="tool_calls"),
        chunk(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    ]
    responses = feed(sink, fold, chunks)
    assert [r.delta for r in responses] == ["", "", "Calling", "", "", ""]
    assert [r.additional_kwargs for r in responses[:3]] == [
        {"thinking_delta": "let me "},
        {"thinking_delta": "see"},
        {},
    ]
    assert responses[1].message.blocks[0] == ThinkingBlock(content="let me see")
    assert responses[1].message.additional_kwargs == {"reasoning_content": "let me see"}
    assert [r.message.content for r in responses] == [
        "",
        "",
        "Calling",
        "Calling",
        "Calling",
        "Calling",
    ]
    # Each response holds the calls so far, and later fragments do not rewrite earlier ones.
    assert [r.message.additional_kwargs["tool_calls"] for r in responses[3:]] == [
        [tool_call("add", "", "call_1")],
        [tool_call("add", '{"a": ', "call_1")],
        [tool_call("add", '{"a": 1}', "call_1")],
    ]
    assert responses[4].message.blocks[-1] == ToolCallBlock(
        tool_call_id="call_1", tool_name="add", tool_kwargs='{"a": '
    )
    (final,) = finish(sink, fold)
    assert final.delta == ""
    assert final.message.content == "Calling"
    assert final.message.blocks[-1] == ToolCallBlock(
        tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 1}
    )
    assert final.additional_kwargs == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "finish_reason": "tool_calls",
    }
    assert final.raw == chunks[-1]


def test_stream_sink_refuses_a_stream_that_never_finished() -> None:
    fold, sink = StreamFold(), ChatResponseSink()
    assert feed(sink, fold, [chunk({"content": "partial"})]) != []
    with pytest.raises(StreamInterruptedError, match="finish_reason"):
        finish(sink, fold)


# ---------------------------------------------------------------------------- selections


def _assistant(*blocks: object, **kwargs: object) -> ChatMessage:
    return ChatMessage(
        role="assistant", blocks=[TextBlock(text=""), *blocks], additional_kwargs=dict(kwargs)
    )


def test_tool_selections_from_blocks() -> None:
    msg = _assistant(
        ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1}),
        ToolCallBlock(tool_call_id="c2", tool_name="mul", tool_kwargs='{"b": 2}'),
    )
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in tool_selections(msg)] == [
        ("c1", "add", {"a": 1}),
        ("c2", "mul", {"b": 2}),
    ]


def test_tool_selections_from_additional_kwargs_only() -> None:
    msg = _assistant(tool_calls=[tool_call("add", {"a": 1})])
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in tool_selections(msg)] == [
        ("call_1", "add", {"a": 1})
    ]


def test_no_tool_call_raises_or_returns_empty() -> None:
    msg = ChatMessage(role="assistant", content="just text")
    with pytest.raises(ValueError, match=r"Expected at least one tool call.*just text"):
        tool_selections(msg)
    assert tool_selections(msg, error_on_no_tool_call=False) == []


def test_malformed_arguments_default_to_partial_or_empty_like_openai_integration() -> None:
    msg = _assistant(
        ToolCallBlock(tool_call_id="c1", tool_name="cut", tool_kwargs='{"city": "Paris"'),
        ToolCallBlock(tool_call_id="c2", tool_name="junk", tool_kwargs="not json"),
        ToolCallBlock(tool_call_id="c3", tool_name="list", tool_kwargs="[1, 2]"),
        ToolCallBlock(tool_call_id="c4", tool_name="empty", tool_kwargs=""),
    )
    assert [s.tool_kwargs for s in tool_selections(msg)] == [{"city": "Paris"}, {}, {}, {}]


def test_malformed_arguments_raise_when_asked() -> None:
    msg = _assistant(ToolCallBlock(tool_call_id="c1", tool_name="junk", tool_kwargs="{oops"))
    with pytest.raises(ValueError, match=r"tool 'junk' with invalid arguments.*not valid JSON"):
        tool_selections(msg, error_on_invalid_args=True)


def test_force_single_tool_call_trims_blocks_and_kwargs() -> None:
    wire = completion_body(None, tool_calls=[tool_call("a", {}), tool_call("b", {}, "call_2")])
    response = chat_response(parse_completion(wire))
    force_single_tool_call(response)
    assert [s.tool_name for s in tool_selections(response.message)] == ["a"]
    assert response.message.additional_kwargs["tool_calls"] == [tool_call("a", {})]


# ---------------------------------------------------------------------------- schema


class Weather(BaseModel):
    """Weather in a city."""

    city: str
    celsius: float | None = None


def test_response_format_for_plain_and_strict() -> None:
    assert response_format_for(Weather) == {
        "type": "json_schema",
        "json_schema": {
            "name": "Weather",
            "description": "Weather in a city.",
            "schema": Weather.model_json_schema(),
        },
    }
    strict = response_format_for(Weather, strict=True)["json_schema"]
    assert strict["strict"] is True
    assert strict["schema"]["additionalProperties"] is False
    assert sorted(strict["schema"]["required"]) == ["celsius", "city"]
    json.dumps(strict)
