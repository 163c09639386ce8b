"""Pure conversions in ``langchain_runcrate._messages``, on plain dicts (no HTTP)."""

from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_runcrate._messages import (
    GenerationChunkSink,
    block_to_part,
    completion_to_result,
    message_to_dict,
    to_openai_messages,
    usage_to_metadata,
)
from runcrate_integrations import StreamInterruptedError
from runcrate_integrations.chat.answer import StreamFold, Usage, parse_completion
from tests.helpers import (
    completion_body,
    feed,
    finish,
    text_chunks,
    tool_call,
    tool_call_chunks,
)

PNG = "iVBORw0KGgoAAAANSUhEUg"


# ------------------------------------------------------------------ messages -> wire


def test_roles_names_and_tool_messages() -> None:
    history = [
        SystemMessage("Be brief.", name="rules"),
        HumanMessage("What is 2+2?", name="ada"),
        AIMessage(
            "",
            name="bot",
            tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call_1"}],
        ),
        ToolMessage("4", tool_call_id="call_1", name="add"),
        AIMessage("It is 4."),
        ChatMessage(role="developer", content="Answer in French."),
    ]
    assert to_openai_messages(history) == [
        {"role": "system", "content": "Be brief.", "name": "rules"},
        {"role": "user", "content": "What is 2+2?", "name": "ada"},
        {
            "role": "assistant",
            "content": None,
            "name": "bot",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "developer", "content": "Answer in French."},
    ]


def test_assistant_keeps_text_and_sends_invalid_calls_back_verbatim() -> None:
    message = AIMessage(
        "Let me check.",
        invalid_tool_calls=[
            {"name": "lookup", "args": '{"q": "x"', "id": "call_9", "error": "bad json"}
        ],
    )
    assert message_to_dict(message) == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"'},
            }
        ],
    }


def test_assistant_v1_blocks_keep_only_text() -> None:
    # History produced with output_version="v1": reasoning and tool_call blocks in content.
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "hmm"},
            {"type": "text", "text": "Sure: "},
            {"type": "text", "text": "done."},
            {"type": "tool_call", "name": "f", "args": {}, "id": "c1"},
        ],
        tool_calls=[{"name": "f", "args": {}, "id": "c1"}],
    )
    assert message_to_dict(message) == {
        "role": "assistant",
        "content": "Sure: done.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


def test_unicode_tool_arguments_are_not_escaped() -> None:
    message = AIMessage("", tool_calls=[{"name": "say", "args": {"t": "héllo"}, "id": "c"}])
    assert message_to_dict(message)["tool_calls"][0]["function"]["arguments"] == '{"t": "héllo"}'


def test_function_message_answers_the_call_it_follows() -> None:
    history = [
        HumanMessage("2+2?"),
        AIMessage(
            "",
            additional_kwargs={"function_call": {"name": "add", "arguments": '{"a": 2, "b": 2}'}},
        ),
        FunctionMessage(content="4", name="add"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 1}, "id": "call_9"}]),
        FunctionMessage(content="2", name="add"),
    ]
    assert to_openai_messages(history)[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_add_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_add_1", "content": "4"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1, "b": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "2"},
    ]


def test_function_message_without_a_call_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="answers no earlier call"):
        to_openai_messages([HumanMessage("hi"), FunctionMessage(content="1", name="f")])
    with pytest.raises(ValueError, match="use to_openai_messages"):
        message_to_dict(FunctionMessage(content="1", name="f"))


# ------------------------------------------------------------------ content blocks


@pytest.mark.parametrize(
    ("block", "part"),
    [
        ("plain", {"type": "text", "text": "plain"}),
        (
            {"type": "text", "text": "hi", "id": "b1", "annotations": []},
            {"type": "text", "text": "hi"},
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png", "detail": "low"}},
        ),
        (
            {"type": "image_url", "image_url": "https://x.test/cat.png"},
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
        ),
        (
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ),
        # LangChain v1 standard blocks
        (
            {"type": "image", "url": "https://x.test/dog.jpg"},
            {"type": "image_url", "image_url": {"url": "https://x.test/dog.jpg"}},
        ),
        (
            {"type": "image", "base64": PNG, "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ),
        # LangChain v0 blocks (still accepted by langchain-core)
        (
            {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ),
        # Anthropic-format blocks (kept in histories of apps mixing providers)
        (
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG},
            },
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
        ),
        (
            {"type": "image", "source": {"type": "url", "url": "https://x.test/owl.webp"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/owl.webp"}},
        ),
        (
            {"type": "audio", "base64": "UklGR", "mime_type": "audio/wav"},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        ),
        (
            {
                "type": "file",
                "base64": "JVBER",
                "mime_type": "application/pdf",
                "filename": "a.pdf",
            },
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"},
            },
        ),
        (
            {"type": "non_standard", "value": {"type": "video_url", "video_url": {"url": "u"}}},
            {"type": "video_url", "video_url": {"url": "u"}},
        ),
    ],
)
def test_block_to_part(block: object, part: dict[str, object]) -> None:
    assert block_to_part(block) == part  # type: ignore[arg-type]  # str or dict blocks


@pytest.mark.parametrize("kind", ["video", "reasoning", "tool_use", "mystery"])
def test_unsupported_block_names_its_type(kind: str) -> None:
    with pytest.raises(ValueError, match=f"Content block type '{kind}' is not supported"):
        message_to_dict(HumanMessage(content=[{"type": kind, "url": "https://x.test/v"}]))


def test_image_without_url_or_data_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Unsupported source type"):
        block_to_part({"type": "image", "file_id": "file-1"})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "base64", "data": PNG}, "has no 'media_type' in its base64 source"),
        ({"type": "base64", "media_type": "image/png"}, "has no 'data' in its base64 source"),
        ({"type": "base64"}, "has no 'media_type' and no 'data' in its base64 source"),
        ({"type": "url"}, "has no 'url' in its url source"),
        ({"type": "file", "file_id": "file_1"}, "source type 'file' cannot be sent"),
    ],
)
def test_malformed_anthropic_image_names_what_is_missing(
    source: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=f"Anthropic-format image (block )?{message}"):
        block_to_part({"type": "image", "source": source})


def test_mixed_user_content() -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What is this?"},
            {"type": "image", "url": "https://x.test/a.png"},
        ]
    )
    assert message_to_dict(message) == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        ],
    }


# ------------------------------------------------------------------ wire -> LangChain


def test_usage_details_only_when_reported() -> None:
    assert usage_to_metadata(Usage(3, 4, 7)) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    detailed = Usage(30, 40, 70, cached_input_tokens=8, reasoning_output_tokens=9)
    assert usage_to_metadata(detailed) == {
        "input_tokens": 30,
        "output_tokens": 40,
        "total_tokens": 70,
        "input_token_details": {"cache_read": 8},
        "output_token_details": {"reasoning": 9},
    }


def test_completion_to_result_full_message() -> None:
    body = completion_body(
        "",
        tool_calls=[
            tool_call("get_weather", {"city": "Oslo"}, "call_a"),
            tool_call("get_time", '{"tz": ', "call_b"),
        ],
        reasoning_content="Need the weather.",
        logprobs={"content": [{"token": "x", "logprob": -0.1, "top_logprobs": []}]},
    )
    body["choices"][0]["message"]["refusal"] = None
    result = completion_to_result(parse_completion(body))
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    assert message.content == ""
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_a", "type": "tool_call"}
    ]
    assert len(message.invalid_tool_calls) == 1
    bad = message.invalid_tool_calls[0]
    assert (bad["name"], bad["args"], bad["id"]) == ("get_time", '{"tz": ', "call_b")
    assert "not valid JSON" in (bad["error"] or "")
    assert message.additional_kwargs == {"reasoning_content": "Need the weather."}
    assert message.response_metadata == {
        "model_name": "deepseek/deepseek-v3.2",
        "finish_reason": "tool_calls",
        "id": "chatcmpl-123",
        "system_fingerprint": "fp_rc1",
        "model_provider": "runcrate",
        "logprobs": {"content": [{"token": "x", "logprob": -0.1, "top_logprobs": []}]},
    }
    assert message.usage_metadata == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        "model_name": "deepseek/deepseek-v3.2",
        "system_fingerprint": "fp_rc1",
    }


def test_refusal_is_kept() -> None:
    body = completion_body(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    message = completion_to_result(parse_completion(body)).generations[0].message
    assert message.additional_kwargs == {"refusal": "I can't help with that."}


def test_usage_goes_on_the_first_of_several_choices_only() -> None:
    body = completion_body("a")
    body["choices"].append(
        {**body["choices"][0], "index": 1, "message": {"role": "assistant", "content": "b"}}
    )
    result = completion_to_result(parse_completion(body))
    assert [g.message.content for g in result.generations] == ["a", "b"]
    first, second = (g.message for g in result.generations)
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert first.usage_metadata is not None
    assert second.usage_metadata is None


def test_stream_chunks_fold_text_and_finish_then_usage() -> None:
    acc, sink = StreamFold(), GenerationChunkSink()
    out = feed(sink, acc, text_chunks(["Hel", "lo"]))
    # the role-only opening delta and the usage-only chunk add nothing here
    assert [c.message.content for c in out] == ["Hel", "lo", ""]
    assert out[-1].generation_info == {
        "finish_reason": "stop",
        "model_name": "deepseek/deepseek-v3.2",
        "id": "chatcmpl-123",
        "system_fingerprint": "fp_rc1",
    }
    assert all(c.message.response_metadata == {"model_provider": "runcrate"} for c in out)
    (usage,) = finish(sink, acc)
    assert isinstance(usage.message, AIMessageChunk)
    assert usage.message.usage_metadata == {
        "input_tokens": 12,
        "output_tokens": 5,
        "total_tokens": 17,
    }


def test_stream_tool_call_fragments_become_tool_call_chunks() -> None:
    acc, sink = StreamFold(), GenerationChunkSink()
    raws = tool_call_chunks("add", ['{"a": 1, ', '"b": 2}'])
    out = feed(sink, acc, raws)
    assert [c.message.tool_call_chunks for c in out[:3]] == [  # type: ignore[attr-defined]
        [{"name": "add", "args": "", "id": "call_1", "index": 0, "type": "tool_call_chunk"}],
        [{"name": None, "args": '{"a": 1, ', "id": None, "index": 0, "type": "tool_call_chunk"}],
        [{"name": None, "args": '"b": 2}', "id": None, "index": 0, "type": "tool_call_chunk"}],
    ]
    merged = out[0].message + out[1].message + out[2].message + out[3].message
    assert merged.tool_calls == [  # type: ignore[attr-defined]
        {"name": "add", "args": {"a": 1, "b": 2}, "id": "call_1", "type": "tool_call"}
    ]
    assert finish(sink, acc) == []  # no usage chunk arrived


def test_stream_end_raises_when_no_finish_reason_arrived() -> None:
    acc, sink = StreamFold(), GenerationChunkSink()
    feed(sink, acc, text_chunks(["cut"], usage=False)[:-1])  # the finish chunk never comes
    with pytest.raises(StreamInterruptedError, match="no finish_reason"):
        finish(sink, acc)
