"""Function calling against a real server: tool_choice, streamed and parallel calls, an agent.

The recording model is small; these tests check what the client did with what the server
sent, read back from the cassette (:mod:`tests.recorded.answers`): every tool call in the raw
answer became a ``ToolSelection`` with the same id, name and arguments, streamed fragments
merged, the tool's result went back. Whether the model chose well is not checked; while
recording, ``needs`` makes ``scripts/record`` retry a test whose answer lacks what it is about.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool

from llama_index_runcrate import RuncrateLLM

from ..answers import Answer, answers, last, needs
from .conftest import MakeLLM


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 degrees Celsius in {city}."


def get_time(city: str) -> str:
    """Get the current local time in a city."""
    return f"It is 10:00 in {city}."


WEATHER = FunctionTool.from_defaults(fn=get_weather)
TIME = FunctionTool.from_defaults(fn=get_time)
WEATHER_QUESTION = "What is the weather in Paris?"
# Worded so that the small recording model reliably lists one call per city.
PARALLEL_QUESTION = (
    "What is the weather in Paris and in Tokyo? Call get_weather once for each city."
)


def _check(
    llm: RuncrateLLM, response: ChatResponse, raw: Answer, *, keep: int | None = None
) -> list[ToolSelection]:
    """Each tool call of ``raw`` (the first ``keep``) is a ``ToolSelection``: same id, name, args.

    A call whose arguments are not a JSON object makes the strict reading fail, naming the tool.
    """
    sent = raw.tool_calls[:keep]
    broken = [c for c in sent if c.args is None]
    if broken:
        with pytest.raises(ValueError, match=broken[0].name):
            llm.get_tool_calls_from_response(response, error_on_invalid_args=True)
        return []
    selections = llm.get_tool_calls_from_response(
        response, error_on_no_tool_call=False, error_on_invalid_args=True
    )
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in selections] == [
        (c.id, c.name, c.args) for c in sent
    ]
    assert response.additional_kwargs["finish_reason"] == raw.finish_reason
    return selections


def test_tool_choice_auto(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    response = model.chat_with_tools([WEATHER], user_msg=WEATHER_QUESTION)
    raw = last(vcr)
    needs(raw.tool_calls, "a call to get_weather")
    assert "tool_choice" not in raw.request
    assert raw.request["parallel_tool_calls"] is False
    _check(model, response, raw, keep=1)


def test_no_tool_call_when_not_needed(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    response = model.chat_with_tools([WEATHER], user_msg="Hi! How are you?")
    raw = last(vcr)
    needs(not raw.tool_calls and raw.content, "a text answer without a tool call")
    _check(model, response, raw, keep=1)
    assert response.message.content == raw.content


def test_tool_required(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    response = model.chat_with_tools(
        [WEATHER, TIME], user_msg="Tell me about Paris.", tool_required=True
    )
    raw = last(vcr)
    assert raw.request["tool_choice"] == "required"
    needs(raw.tool_calls, "a tool call (tool_choice=required)")
    _check(model, response, raw, keep=1)


def test_tool_choice_named(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    response = model.chat_with_tools(
        [WEATHER, TIME], user_msg="What time is it in Tokyo?", tool_choice="get_time"
    )
    raw = last(vcr)
    assert raw.request["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    needs(raw.tool_calls, "a call to get_time")
    _check(model, response, raw, keep=1)


def test_tool_choice_named_forces_a_call(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    response = model.chat_with_tools([TIME], user_msg="Hi there!", tool_choice="get_time")
    raw = last(vcr)
    assert raw.request["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    needs(raw.tool_calls, "a call to get_time")
    _check(model, response, raw, keep=1)


def _check_stream(llm: RuncrateLLM, responses: list[ChatResponse], raw: Answer) -> None:
    needs(
        raw.tool_calls and raw.tool_calls[0].fragments > 1,
        "a streamed tool call whose arguments arrive in several fragments",
    )
    # Mid-stream, a call so far reads as partial JSON (a dict); at the end it is whole.
    for response in responses:
        partial = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
        assert all(isinstance(s.tool_kwargs, dict) for s in partial)
    _check(llm, responses[-1], raw)
    if raw.usage:
        assert responses[-1].additional_kwargs["total_tokens"] == raw.usage["total_tokens"]


def test_streamed_tool_call_is_merged(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    stream = model.stream_chat_with_tools(
        [WEATHER], user_msg=WEATHER_QUESTION, tool_choice="get_weather"
    )
    _check_stream(model, list(stream), last(vcr))


async def test_astreamed_tool_call_is_merged(llm: MakeLLM, vcr: Any) -> None:
    model = llm()
    stream = await model.astream_chat_with_tools(
        [WEATHER], user_msg=WEATHER_QUESTION, tool_choice="get_weather"
    )
    _check_stream(model, [r async for r in stream], last(vcr))


def test_parallel_tool_calls(llm: MakeLLM, vcr: Any) -> None:
    # The model lists calls until max_tokens; 60 tokens hold two whole ones.
    model = llm(max_tokens=60)
    response = model.chat_with_tools(
        [WEATHER],
        user_msg=PARALLEL_QUESTION,
        tool_required=True,
        allow_parallel_tool_calls=True,
    )
    raw = last(vcr)
    assert raw.request["parallel_tool_calls"] is True
    needs(len(raw.tool_calls) >= 2, "two or more tool calls in one answer")
    _check(model, response, raw)  # every call kept, in order, each with its own id


def test_one_tool_call_unless_parallel_allowed(llm: MakeLLM, vcr: Any) -> None:
    # The same question without allow_parallel_tool_calls sends parallel_tool_calls=false;
    # should the server still send several calls, the adapter keeps the first only.
    model = llm(max_tokens=60)
    response = model.chat_with_tools([WEATHER], user_msg=PARALLEL_QUESTION, tool_required=True)
    raw = last(vcr)
    assert raw.request["parallel_tool_calls"] is False
    needs(raw.tool_calls, "a tool call (tool_choice=required)")
    _check(model, response, raw, keep=1)


def test_predict_and_call_runs_the_tool(llm: MakeLLM, vcr: Any) -> None:
    output = llm().predict_and_call(
        [WEATHER], user_msg=WEATHER_QUESTION, error_on_no_tool_call=False
    )
    raw = last(vcr)
    needs(
        raw.tool_calls and raw.tool_calls[0].args == {"city": "Paris"},
        "a call to get_weather for Paris",
    )
    if not raw.tool_calls:
        assert output.response == (raw.content or "")
        return
    call = raw.tool_calls[0]  # predict_and_call keeps one call
    assert [s.tool_name for s in output.sources] == [call.name]
    # llama-index-core 0.14.25 calls a one-argument tool with keywords; earlier releases (still
    # supported) pass it positionally: either way the tool got the call's arguments.
    raw_input = output.sources[0].raw_input
    assert raw_input["kwargs"] == call.args or (
        list(raw_input["args"]) == list((call.args or {}).values()) and not raw_input["kwargs"]
    )
    assert output.response == output.sources[0].content
    if call.args is not None and set(call.args) == {"city"}:
        assert output.response == get_weather(**call.args)


# llama-index-core's own noise: its agent steps read a deprecated Context property, and its
# workflow inspects the agent's pydantic attributes.
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
async def test_function_agent_round_trip(llm: MakeLLM, vcr: Any) -> None:
    """``FunctionAgent``: the model calls the tool, the tool runs, its result goes back.

    With ``max_iterations=2`` and ``early_stopping_method="generate"`` the agent gets at most
    two model turns with tools, then asks for a final answer without them. Checked against the
    cassette: the first answer's calls ran with the server's arguments, their results went back
    in the next request linked by id, and the agent's answer is the last answer's text.
    """
    runs: list[str] = []

    def weather(city: str) -> str:
        """Get the current weather in a city."""
        runs.append(city)
        return get_weather(city)

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=weather)], llm=llm(max_tokens=60))
    result = await agent.run(
        user_msg=WEATHER_QUESTION, max_iterations=2, early_stopping_method="generate"
    )
    found = answers(vcr)
    first = found[0]
    needs(
        first.tool_calls and first.tool_calls[0].args == {"city": "Paris"},
        "a first answer that calls the weather tool for Paris",
    )
    # The tool ran with the arguments the server sent, and the next request carried each
    # result linked to its call by the server's id.
    cities = [str((c.args or {}).get("city")) for c in first.tool_calls]
    assert runs[: len(cities)] == cities
    if first.tool_calls:
        results = [m for m in found[1].request["messages"] if m["role"] == "tool"]
        assert [(m["tool_call_id"], m["content"]) for m in results] == [
            (c.id, get_weather(city)) for c, city in zip(first.tool_calls, cities, strict=True)
        ]
    # The agent's answer is the text of the last answer.
    assert isinstance(result.response, ChatMessage)
    assert result.response.role == MessageRole.ASSISTANT
    assert (result.response.content or "").strip() == (found[-1].content or "").strip()
