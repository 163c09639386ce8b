"""Function calling: tool schemas, tool_choice, parallel calls, streamed tool calls, selections."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool

from tests.helpers import chunk, completion_body, sse, tool_call

from .conftest import MODEL, MakeLLM


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


ADD, MUL = FunctionTool.from_defaults(fn=add), FunctionTool.from_defaults(fn=mul)
ADD_SPEC = ADD.metadata.to_openai_tool()
MUL_SPEC = MUL.metadata.to_openai_tool()
USER = {"role": "user", "content": "what is 2+3?"}


def _selections(llm: Any, response: Any, **kwargs: Any) -> list[tuple[str, str, Any]]:
    return [
        (s.tool_id, s.tool_name, s.tool_kwargs)
        for s in llm.get_tool_calls_from_response(response, **kwargs)
    ]


def test_chat_with_tools_sends_schemas_and_returns_selections(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(None, tool_calls=[tool_call("add", {"a": 2, "b": 3})])])
    response = llm.chat_with_tools([ADD, MUL], user_msg="what is 2+3?")
    assert rec.body == {
        "model": MODEL,
        "messages": [USER],
        "tools": [ADD_SPEC, MUL_SPEC],
        "parallel_tool_calls": False,
    }
    assert _selections(llm, response) == [("call_1", "add", {"a": 2, "b": 3})]


async def test_achat_with_tools_required_and_history(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(None, tool_calls=[tool_call("add", {"a": 1, "b": 1})])])
    history = [ChatMessage(role="system", content="use tools")]
    response = await llm.achat_with_tools(
        [ADD], chat_history=history, tool_required=True, user_msg="1+1?"
    )
    assert rec.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "use tools"},
            {"role": "user", "content": "1+1?"},
        ],
        "tools": [ADD_SPEC],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    assert len(history) == 1  # the caller's history is not mutated
    assert _selections(llm, response) == [("call_1", "add", {"a": 1, "b": 1})]


def test_tool_choice_by_name_and_unknown_name(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(None, tool_calls=[tool_call("mul", {"a": 1, "b": 2})])])
    llm.chat_with_tools([ADD, MUL], user_msg="x", tool_choice="mul")
    assert rec.body["tool_choice"] == {"type": "function", "function": {"name": "mul"}}
    with pytest.raises(ValueError, match=r"'div'.*bound: add, mul"):
        llm.chat_with_tools([ADD, MUL], user_msg="x", tool_choice="div")
    assert len(rec.requests) == 1


def test_parallel_tool_calls_allowed_or_trimmed(make_llm: MakeLLM) -> None:
    two = completion_body(
        None,
        tool_calls=[
            tool_call("add", {"a": 1, "b": 2}),
            tool_call("mul", {"a": 3, "b": 4}, "call_2"),
        ],
    )
    llm, rec = make_llm([two, two])
    both = llm.chat_with_tools([ADD, MUL], user_msg="x", allow_parallel_tool_calls=True)
    assert rec.body["parallel_tool_calls"] is True
    assert [s[1] for s in _selections(llm, both)] == ["add", "mul"]
    one = llm.chat_with_tools([ADD, MUL], user_msg="x")
    assert rec.body["parallel_tool_calls"] is False
    assert [s[1] for s in _selections(llm, one)] == ["add"]
    assert one.message.additional_kwargs["tool_calls"] == [tool_call("add", {"a": 1, "b": 2})]


def test_strict_tool_schemas(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("no"), completion_body("no")], strict=True)
    llm.chat_with_tools([ADD], user_msg="x")
    fn = rec.body["tools"][0]["function"]
    assert fn["strict"] is True and fn["parameters"]["additionalProperties"] is False
    llm.chat_with_tools([ADD], user_msg="x", strict=False)
    assert rec.body["tools"] == [ADD_SPEC]


STREAMED_CALLS = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": ""},
                }
            ],
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 2, '}}]}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "function": {"arguments": '"b": 3}'}},
                {
                    "index": 1,
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "mul", "arguments": '{"a": 4, "b": 5}'},
                },
            ]
        }
    ),
    chunk({}, finish_reason="tool_calls"),
    chunk(usage={"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}),
]


def _check_streamed(llm: Any, responses: list[Any]) -> None:
    partial = [_selections(llm, r, error_on_no_tool_call=False) for r in responses]
    assert partial == [
        [("call_1", "add", {})],
        [("call_1", "add", {"a": 2})],
        [("call_1", "add", {"a": 2, "b": 3}), ("call_2", "mul", {"a": 4, "b": 5})],
        [("call_1", "add", {"a": 2, "b": 3}), ("call_2", "mul", {"a": 4, "b": 5})],
    ]
    assert responses[-1].message.additional_kwargs["tool_calls"] == [
        tool_call("add", {"a": 2, "b": 3}),
        tool_call("mul", {"a": 4, "b": 5}, "call_2"),
    ]
    assert responses[1].message.additional_kwargs["tool_calls"] == [tool_call("add", '{"a": 2, ')]


def test_stream_chat_with_tools_accumulates_calls(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(STREAMED_CALLS)])
    responses = list(
        llm.stream_chat_with_tools([ADD, MUL], user_msg="x", allow_parallel_tool_calls=True)
    )
    assert rec.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [ADD_SPEC, MUL_SPEC],
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _check_streamed(llm, responses)


async def test_astream_chat_with_tools_accumulates_calls(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse(STREAMED_CALLS)])
    stream = await llm.astream_chat_with_tools([ADD, MUL], user_msg="x", tool_required=True)
    _check_streamed(llm, [r async for r in stream])


def test_no_tool_call_error_semantics(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([completion_body("I would rather not")])
    response = llm.chat_with_tools([ADD], user_msg="x")
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(response)
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []


def test_malformed_arguments_empty_by_default_error_when_asked(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([completion_body(None, tool_calls=[tool_call("add", '{"a": 1,, }')])])
    response = llm.chat_with_tools([ADD], user_msg="x")
    assert _selections(llm, response) == [("call_1", "add", {})]
    with pytest.raises(ValueError, match=r"tool 'add' with invalid arguments"):
        llm.get_tool_calls_from_response(response, error_on_invalid_args=True)


def test_predict_and_call_round_trip(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([completion_body(None, tool_calls=[tool_call("add", {"a": 2, "b": 3})])])
    result = llm.predict_and_call([ADD, MUL], user_msg="2+3?")
    assert result.response == "5"
    assert result.sources[0].tool_name == "add"


def test_tool_history_round_trips(make_llm: MakeLLM) -> None:
    """An answer with tool calls, then the tool's result, goes back exactly as OpenAI wants."""
    llm, rec = make_llm(
        [
            completion_body(None, tool_calls=[tool_call("add", {"a": 2, "b": 3})]),
            completion_body("5"),
        ]
    )
    first = llm.chat_with_tools([ADD], user_msg="2+3?")
    history = [
        ChatMessage(role="user", content="2+3?"),
        first.message,
        ChatMessage(role="tool", content="5", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    llm.chat_with_tools([ADD], chat_history=history)
    assert rec.body["messages"] == [
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("add", {"a": 2, "b": 3})]},
        {"role": "tool", "content": "5", "tool_call_id": "call_1"},
    ]
