"""bind_tools: the tools / tool_choice / parallel_tool_calls / strict sent, and calls parsed."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from tests.helpers import completion_body, sse, text_chunks, tool_call

from .conftest import MakeChat


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")
    age: int


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def search(query: str) -> str:
    """Search the web."""
    return query


PERSON = {
    "type": "function",
    "function": {
        "name": "Person",
        "description": "A person.",
        "parameters": {
            "properties": {
                "name": {"description": "Full name", "type": "string"},
                "age": {"type": "integer"},
            },
            "required": ["name", "age"],
            "type": "object",
        },
    },
}
MULTIPLY = {
    "type": "function",
    "function": {
        "name": "multiply",
        "description": "Multiply two integers.",
        "parameters": {
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "type": "object",
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "type": "object",
        },
    },
}
ANSWER_SCHEMA = {
    "title": "Answer",
    "description": "An answer",
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
ANSWER = {
    "type": "function",
    "function": {
        "name": "Answer",
        "description": "An answer",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
}


def test_every_kind_of_tool_is_converted(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()])
    bound = llm.bind_tools([Person, multiply, search, ANSWER_SCHEMA, MULTIPLY])
    bound.invoke("hi")
    assert rec.body == {
        "model": "deepseek/deepseek-v3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [PERSON, MULTIPLY, SEARCH, ANSWER, MULTIPLY],
    }


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        (True, "required"),
        ("multiply", {"type": "function", "function": {"name": "multiply"}}),
        (
            {"type": "function", "function": {"name": "search"}},
            {"type": "function", "function": {"name": "search"}},
        ),
    ],
)
async def test_tool_choice_spellings(make_chat: MakeChat, choice: Any, sent: Any) -> None:
    llm, rec = make_chat([completion_body(), completion_body()])
    bound = llm.bind_tools([multiply, search], tool_choice=choice)
    bound.invoke("hi")
    assert rec.body["tool_choice"] == sent
    await bound.ainvoke("hi")
    assert rec.body["tool_choice"] == sent


def test_unknown_tool_choice_fails_at_bind_time(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    with pytest.raises(ValueError, match=r"'divide' is neither .* \(bound: multiply, search\)"):
        llm.bind_tools([multiply, search], tool_choice="divide")
    assert rec.requests == []


def test_parallel_tool_calls_and_strict(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()])
    llm.bind_tools([Person], strict=True, parallel_tool_calls=False).invoke("hi")
    assert rec.body["parallel_tool_calls"] is False
    assert rec.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Person",
                "description": "A person.",
                "parameters": {
                    "properties": {
                        "name": {"description": "Full name", "type": "string"},
                        "age": {"type": "integer"},
                    },
                    "required": ["name", "age"],
                    "type": "object",
                    "additionalProperties": False,
                },
                "strict": True,
            },
        }
    ]


def test_parallel_tool_calls_dropped_without_tools(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()])
    llm.invoke("hi", parallel_tool_calls=True)
    assert "parallel_tool_calls" not in rec.body


def test_per_call_tools_are_converted_too(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()])
    llm.invoke("hi", tools=[multiply], tool_choice="any")
    assert rec.body["tools"] == [MULTIPLY]
    assert rec.body["tool_choice"] == "required"


def test_tool_calls_in_the_answer(make_chat: MakeChat) -> None:
    answer = completion_body(
        None,
        tool_calls=[
            tool_call("multiply", {"a": 6, "b": 7}, "call_1"),
            tool_call("search", '{"query": "unterminated', "call_2"),
            tool_call("search", "", "call_3"),
        ],
    )
    llm, _ = make_chat([answer])
    message = llm.bind_tools([multiply, search]).invoke("hi")
    assert message.content == ""
    assert message.tool_calls == [
        {"name": "multiply", "args": {"a": 6, "b": 7}, "id": "call_1", "type": "tool_call"},
        {"name": "search", "args": {}, "id": "call_3", "type": "tool_call"},
    ]
    (bad,) = message.invalid_tool_calls
    assert (bad["name"], bad["id"], bad["args"]) == ("search", "call_2", '{"query": "unterminated')
    assert bad["error"] and "not valid JSON" in bad["error"]
    assert message.content_blocks[0] == {
        "type": "tool_call",
        "name": "multiply",
        "args": {"a": 6, "b": 7},
        "id": "call_1",
    }


def test_disable_streaming_for_tool_calls(make_chat: MakeChat) -> None:
    llm, rec = make_chat(
        [completion_body("plain"), sse(text_chunks(["streamed"]))],
        disable_streaming="tool_calling",
    )
    list(llm.bind_tools([multiply]).stream("hi"))
    assert "stream" not in rec.body
    list(llm.stream("hi"))
    assert rec.body["stream"] is True


def test_langchain_agent_loop(make_chat: MakeChat) -> None:
    from langchain.agents import create_agent

    llm, rec = make_chat(
        [
            completion_body(None, tool_calls=[tool_call("multiply", {"a": 6, "b": 7}, "call_1")]),
            completion_body("6 x 7 = 42."),
        ]
    )
    agent = create_agent(llm, tools=[multiply], system_prompt="Use tools.")
    result = agent.invoke({"messages": [{"role": "user", "content": "6 times 7?"}]})
    assert result["messages"][-1].content == "6 x 7 = 42."
    assert rec.bodies[1]["messages"][1:] == [
        {"role": "user", "content": "6 times 7?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "multiply", "arguments": '{"a": 6, "b": 7}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    assert rec.bodies[1]["tools"] == [MULTIPLY]
