"""Tool calling against a real server: tool_choice, streamed and parallel calls, an agent loop.

The recording model is small; these tests check what the client did with what the server
sent, read back from the cassette (:mod:`tests.recorded.answers`): every tool call in the raw
answer became a tool call with the same id, name and arguments (or an invalid tool call with
the text), streamed fragments merged, the tool's result went back. Whether the model chose well
is not checked; while recording, ``needs`` makes ``scripts/record`` retry a test whose answer
lacks what it is about.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ToolCallLimitMiddleware
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from ..answers import Answer, answers, last, needs
from .conftest import MakeChat


class get_weather(BaseModel):  # lower-case: the class name is the tool name the model sees
    """Get the current weather in a city."""

    city: str = Field(description="The city name")


class get_time(BaseModel):
    """Get the current local time in a city."""

    city: str = Field(description="The city name")


WEATHER_QUESTION = "What is the weather in Paris?"
# Worded so that the small recording model reliably lists one call per city.
PARALLEL_QUESTION = (
    "What is the weather in Paris and in Tokyo? Call get_weather once for each city."
)


def _check(message: AIMessage, raw: Answer) -> None:
    """Each tool call of ``raw`` is in ``message``, same id, name and parsed arguments.

    A call whose arguments are not a JSON object is an invalid tool call carrying the text.
    """
    assert message.tool_calls == [
        tool_call(name=c.name, args=c.args, id=c.id) for c in raw.tool_calls if c.args is not None
    ]
    assert [(c["id"], c["name"], c["args"]) for c in message.invalid_tool_calls] == [
        (c.id, c.name, c.arguments) for c in raw.tool_calls if c.args is None
    ]
    assert message.response_metadata["finish_reason"] == raw.finish_reason


def test_tool_choice_auto(chat: MakeChat, vcr: Any) -> None:
    answer = chat().bind_tools([get_weather], tool_choice="auto").invoke(WEATHER_QUESTION)
    raw = last(vcr)
    assert raw.request["tool_choice"] == "auto"
    needs(raw.tool_calls, "a call to get_weather")
    _check(answer, raw)


def test_no_tool_call_when_not_needed(chat: MakeChat, vcr: Any) -> None:
    answer = chat().bind_tools([get_weather]).invoke("Hi! How are you?")
    raw = last(vcr)
    needs(not raw.tool_calls and raw.content, "a text answer without a tool call")
    _check(answer, raw)
    assert answer.content == (raw.content or "")


def test_tool_choice_required(chat: MakeChat, vcr: Any) -> None:
    llm = chat().bind_tools([get_weather, get_time], tool_choice="required")
    answer = llm.invoke("Tell me about Paris.")
    raw = last(vcr)
    assert raw.request["tool_choice"] == "required"
    needs(raw.tool_calls, "a tool call (tool_choice=required)")
    _check(answer, raw)


def test_tool_choice_any_means_required(chat: MakeChat, vcr: Any) -> None:
    answer = chat().bind_tools([get_weather], tool_choice="any").invoke("Tell me about Paris.")
    raw = last(vcr)
    assert raw.request["tool_choice"] == "required"
    needs(raw.tool_calls, "a tool call (tool_choice=required)")
    _check(answer, raw)


def test_tool_choice_named(chat: MakeChat, vcr: Any) -> None:
    llm = chat().bind_tools([get_weather, get_time], tool_choice="get_time")
    answer = llm.invoke("What time is it in Tokyo?")
    raw = last(vcr)
    assert raw.request["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    needs(raw.tool_calls, "a call to get_time")
    _check(answer, raw)


def test_tool_choice_named_forces_a_call(chat: MakeChat, vcr: Any) -> None:
    # A greeting needs no tool; the named choice makes the server call it anyway.
    answer = chat().bind_tools([get_time], tool_choice="get_time").invoke("Hi there!")
    raw = last(vcr)
    assert raw.request["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    needs(raw.tool_calls, "a call to get_time")
    _check(answer, raw)


def _merged(chunks: list[AIMessageChunk], raw: Answer) -> AIMessageChunk:
    """The chunks added up; each call's fragments joined into the text the server sent."""
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert [(c["index"], c["id"], c["name"], c["args"]) for c in full.tool_call_chunks] == [
        (i, c.id, c.name, c.arguments) for i, c in enumerate(raw.tool_calls)
    ]
    _check(full, raw)
    if raw.usage:
        assert full.usage_metadata is not None
        assert full.usage_metadata["total_tokens"] == raw.usage["total_tokens"]
    return full


def _streamed_call(chunks: list[AIMessageChunk], raw: Answer) -> None:
    needs(
        raw.tool_calls and raw.tool_calls[0].fragments > 1,
        "a streamed tool call whose arguments arrive in several fragments",
    )
    with_fragments = [c for c in chunks if c.tool_call_chunks]
    assert len(with_fragments) == sum(c.fragments for c in raw.tool_calls)
    _merged(chunks, raw)


def test_streamed_tool_call_is_merged(chat: MakeChat, vcr: Any) -> None:
    llm = chat().bind_tools([get_weather], tool_choice="get_weather")
    _streamed_call(list(llm.stream(WEATHER_QUESTION)), last(vcr))


async def test_astreamed_tool_call_is_merged(chat: MakeChat, vcr: Any) -> None:
    llm = chat().bind_tools([get_weather], tool_choice="get_weather")
    _streamed_call([c async for c in llm.astream(WEATHER_QUESTION)], last(vcr))


def test_parallel_tool_calls(chat: MakeChat, vcr: Any) -> None:
    # The model lists calls until max_tokens; 60 tokens hold two whole ones.
    llm = chat(max_tokens=60).bind_tools(
        [get_weather], tool_choice="required", parallel_tool_calls=True
    )
    answer = llm.invoke(PARALLEL_QUESTION)
    raw = last(vcr)
    assert raw.request["parallel_tool_calls"] is True
    needs(len(raw.tool_calls) >= 2, "two or more tool calls in one answer")
    _check(answer, raw)  # every call kept, in order, each with its own id


def test_parallel_tool_calls_streamed(chat: MakeChat, vcr: Any) -> None:
    llm = chat(max_tokens=60).bind_tools(
        [get_weather], tool_choice="required", parallel_tool_calls=True
    )
    chunks = list(llm.stream(PARALLEL_QUESTION))
    raw = last(vcr)
    needs(len(raw.tool_calls) >= 2, "two or more streamed tool calls in one answer")
    _merged(chunks, raw)  # each call's fragments joined under its own index


def test_tool_result_round_trip(chat: MakeChat, vcr: Any) -> None:
    """A tool call, its result sent back as a ToolMessage, and the model's next answer."""
    llm = chat().bind_tools([get_weather])
    question = HumanMessage(WEATHER_QUESTION)
    first = llm.invoke([question])
    raw_first = last(vcr)
    needs(raw_first.tool_calls, "a first answer that calls get_weather")
    _check(first, raw_first)
    if not first.tool_calls:
        return
    results = [
        ToolMessage("Sunny, 21 degrees Celsius.", tool_call_id=c["id"]) for c in first.tool_calls
    ]
    second = llm.invoke([question, first, *results])
    raw_second = last(vcr)
    # The request repeated the server's calls and linked each result to its call by id.
    sent = raw_second.request["messages"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == [c.id for c in raw_first.tool_calls]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [
        (c.id, "Sunny, 21 degrees Celsius.") for c in raw_first.tool_calls
    ]
    _check(second, raw_second)


@tool
def weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 degrees Celsius in {city}."


def test_agent_loop_with_a_real_tool(chat: MakeChat, vcr: Any) -> None:
    """``create_agent``: the model calls the tool, the tool runs, its result goes back.

    The agent is allowed one tool run and ends when the model asks for more. Checked against
    the cassette: the first answer's call ran with the server's arguments and its result went
    back in the next request, linked by the server's id.
    """
    agent = create_agent(
        chat(),
        tools=[weather],
        middleware=[ToolCallLimitMiddleware(run_limit=1, exit_behavior="end")],
    )
    state = agent.invoke({"messages": [HumanMessage(WEATHER_QUESTION)]})
    messages = state["messages"]
    found = answers(vcr)
    first = found[0]
    needs(
        first.tool_calls and first.tool_calls[0].args == {"city": "Paris"},
        "a first answer that calls the weather tool for Paris",
    )
    ai = [m for m in messages if isinstance(m, AIMessage)]
    _check(ai[0], first)
    if not first.tool_calls:
        return
    call = first.tool_calls[0]
    results = [m for m in messages if isinstance(m, ToolMessage) and m.status == "success"]
    assert [(m.tool_call_id, m.content) for m in results] == [
        (call.id, weather.invoke(call.args or {}))
    ]
    sent = found[1].request["messages"]
    assert [(m["tool_call_id"], m["content"]) for m in sent if m["role"] == "tool"] == [
        (call.id, weather.invoke(call.args or {}))
    ]
