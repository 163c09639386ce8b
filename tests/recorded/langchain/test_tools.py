"""Tool calling against a real server: tool_choice, streamed and parallel calls, an agent loop.

The recording model is small; these tests check what the client does with what the server
sent (a call arrived, its arguments parsed into a dict, streamed fragments merged), not
whether the model chose wisely.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ToolCallLimitMiddleware
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from .conftest import MakeChat


class get_weather(BaseModel):  # lower-case: the class name is the tool name the model sees
    """Get the current weather in a city."""

    city: str = Field(description="The city name")


class get_time(BaseModel):
    """Get the current local time in a city."""

    city: str = Field(description="The city name")


WEATHER_QUESTION = "What is the weather in Paris?"


def _one_call(message: AIMessage, name: str) -> dict[str, Any]:
    assert message.invalid_tool_calls == []
    assert len(message.tool_calls) >= 1
    call = message.tool_calls[0]
    assert call["name"] == name
    assert isinstance(call["args"], dict)
    assert isinstance(call["id"], str)
    assert call["id"]
    assert call["type"] == "tool_call"
    return call["args"]


def test_tool_choice_auto(chat: MakeChat) -> None:
    answer = chat().bind_tools([get_weather], tool_choice="auto").invoke(WEATHER_QUESTION)
    args = _one_call(answer, "get_weather")
    assert isinstance(args.get("city"), str)
    assert answer.response_metadata["finish_reason"] == "tool_calls"


def test_no_tool_call_when_not_needed(chat: MakeChat) -> None:
    answer = chat().bind_tools([get_weather]).invoke("Hi! How are you?")
    assert answer.tool_calls == []
    assert isinstance(answer.content, str)
    assert answer.content


def test_tool_choice_required(chat: MakeChat) -> None:
    llm = chat().bind_tools([get_weather, get_time], tool_choice="required")
    answer = llm.invoke("Tell me about Paris.")
    assert answer.tool_calls
    assert answer.tool_calls[0]["name"] in ("get_weather", "get_time")
    assert isinstance(answer.tool_calls[0]["args"], dict)


def test_tool_choice_any_means_required(chat: MakeChat) -> None:
    # "any" is sent as "required" (the recorded request body says so).
    answer = chat().bind_tools([get_weather], tool_choice="any").invoke("Tell me about Paris.")
    _one_call(answer, "get_weather")


def test_tool_choice_named(chat: MakeChat) -> None:
    # Sent as {"type": "function", "function": {"name": "get_time"}} (the recorded body).
    llm = chat().bind_tools([get_weather, get_time], tool_choice="get_time")
    _one_call(llm.invoke("What time is it in Tokyo?"), "get_time")


def test_tool_choice_named_forces_a_call(chat: MakeChat) -> None:
    # A greeting needs no tool; the named choice makes the server call it anyway.
    answer = chat().bind_tools([get_time], tool_choice="get_time").invoke("Hi there!")
    _one_call(answer, "get_time")


def _streamed_call(chunks: list[AIMessageChunk], name: str) -> None:
    with_fragments = [c for c in chunks if c.tool_call_chunks]
    assert len(with_fragments) > 1, "the arguments arrive in several fragments"
    assert with_fragments[0].tool_call_chunks[0]["id"]
    assert with_fragments[0].tool_call_chunks[0]["name"] == name
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    args = _one_call(full, name)
    text = "".join(str(c.tool_call_chunks[0]["args"]) for c in with_fragments)
    assert full.tool_call_chunks[0]["args"] == text
    assert isinstance(args.get("city"), str)
    assert full.response_metadata["finish_reason"] == "tool_calls"
    assert full.usage_metadata is not None


def test_streamed_tool_call_is_merged(chat: MakeChat) -> None:
    llm = chat().bind_tools([get_weather], tool_choice="get_weather")
    _streamed_call(list(llm.stream(WEATHER_QUESTION)), "get_weather")


async def test_astreamed_tool_call_is_merged(chat: MakeChat) -> None:
    llm = chat().bind_tools([get_weather], tool_choice="get_weather")
    _streamed_call([c async for c in llm.astream(WEATHER_QUESTION)], "get_weather")


def test_parallel_tool_calls(chat: MakeChat) -> None:
    # The model lists calls until max_tokens; 60 tokens hold two whole ones.
    llm = chat(max_tokens=60).bind_tools(
        [get_weather], tool_choice="required", parallel_tool_calls=True
    )
    answer = llm.invoke("Weather in Paris and Tokyo, please.")
    assert len(answer.tool_calls) >= 2
    assert [c["name"] for c in answer.tool_calls] == ["get_weather"] * len(answer.tool_calls)
    assert all(isinstance(c["args"].get("city"), str) for c in answer.tool_calls)
    ids = [c["id"] for c in answer.tool_calls]
    assert len(set(ids)) == len(ids), "each call has its own id"


def test_parallel_tool_calls_streamed(chat: MakeChat) -> None:
    llm = chat(max_tokens=60).bind_tools(
        [get_weather], tool_choice="required", parallel_tool_calls=True
    )
    full = None
    for chunk in llm.stream("Weather in Paris and Tokyo, please."):
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    assert len(full.tool_calls) >= 2
    assert {c["index"] for c in full.tool_call_chunks} == set(range(len(full.tool_call_chunks)))
    assert all(isinstance(c["args"].get("city"), str) for c in full.tool_calls)


def test_tool_result_round_trip(chat: MakeChat) -> None:
    """A tool call, its result sent back as a ToolMessage, and the model's next answer."""
    llm = chat().bind_tools([get_weather])
    question = HumanMessage(WEATHER_QUESTION)
    first = llm.invoke([question])
    call = first.tool_calls[0]
    result = ToolMessage("Sunny, 21 degrees Celsius.", tool_call_id=call["id"])
    second = llm.invoke([question, first, result])
    assert isinstance(second, AIMessage)
    assert second.response_metadata["finish_reason"] in ("stop", "tool_calls", "length")


@tool
def weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 degrees Celsius in {city}."


def test_agent_loop_with_a_real_tool(chat: MakeChat) -> None:
    """``create_agent``: the model calls the tool, the tool runs, its result goes back.

    The small recording model asks for the tool again after seeing its result, so the agent
    is allowed one tool run and ends when the model asks for a second.
    """
    agent = create_agent(
        chat(),
        tools=[weather],
        middleware=[ToolCallLimitMiddleware(run_limit=1, exit_behavior="end")],
    )
    state = agent.invoke({"messages": [HumanMessage(WEATHER_QUESTION)]})
    messages = state["messages"]
    calls = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    results = [m for m in messages if isinstance(m, ToolMessage) and m.status == "success"]
    assert calls, "the model asked for the tool"
    assert calls[0].tool_calls[0]["name"] == "weather"
    assert len(results) == 1
    assert results[0].tool_call_id == calls[0].tool_calls[0]["id"]
    assert "sunny" in str(results[0].content)
    # The model was asked again with the tool's result in its history.
    answers = [m for m in messages if isinstance(m, AIMessage)]
    assert len(answers) >= 2
    assert messages.index(answers[1]) > messages.index(results[0])
