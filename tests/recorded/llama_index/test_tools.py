"""Function calling against a real server: tool_choice, streamed and parallel calls, an agent.

The recording model is small; these tests check what the client does with what the server
sent (a call arrived, its arguments parsed into a dict, streamed fragments merged), not
whether the model chose wisely.
"""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool

from llama_index_runcrate import RuncrateLLM

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


def _selection(llm: RuncrateLLM, response: ChatResponse, name: str) -> ToolSelection:
    selections = llm.get_tool_calls_from_response(response, error_on_invalid_args=True)
    assert len(selections) >= 1
    selection = selections[0]
    assert selection.tool_name == name
    assert isinstance(selection.tool_kwargs, dict)
    assert isinstance(selection.tool_kwargs.get("city"), str)
    assert selection.tool_id
    return selection


def test_tool_choice_auto(llm: MakeLLM) -> None:
    model = llm()
    response = model.chat_with_tools([WEATHER], user_msg=WEATHER_QUESTION)
    _selection(model, response, "get_weather")
    assert response.additional_kwargs["finish_reason"] == "tool_calls"


def test_no_tool_call_when_not_needed(llm: MakeLLM) -> None:
    model = llm()
    response = model.chat_with_tools([WEATHER], user_msg="Hi! How are you?")
    assert model.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    assert response.message.content


def test_tool_required(llm: MakeLLM) -> None:
    model = llm()
    response = model.chat_with_tools(
        [WEATHER, TIME], user_msg="Tell me about Paris.", tool_required=True
    )
    selections = model.get_tool_calls_from_response(response)
    assert selections[0].tool_name in ("get_weather", "get_time")
    assert isinstance(selections[0].tool_kwargs, dict)


def test_tool_choice_named(llm: MakeLLM) -> None:
    model = llm()
    response = model.chat_with_tools(
        [WEATHER, TIME], user_msg="What time is it in Tokyo?", tool_choice="get_time"
    )
    _selection(model, response, "get_time")


def test_tool_choice_named_forces_a_call(llm: MakeLLM) -> None:
    model = llm()
    response = model.chat_with_tools([TIME], user_msg="Hi there!", tool_choice="get_time")
    _selection(model, response, "get_time")


def test_streamed_tool_call_is_merged(llm: MakeLLM) -> None:
    model = llm()
    stream = model.stream_chat_with_tools(
        [WEATHER], user_msg=WEATHER_QUESTION, tool_choice="get_weather"
    )
    responses = list(stream)
    assert len(responses) > 2, "the arguments arrive in several fragments"
    # Mid-stream, the call so far reads as partial JSON; at the end it is whole.
    partial = model.get_tool_calls_from_response(responses[1], error_on_no_tool_call=False)
    assert all(isinstance(s.tool_kwargs, dict) for s in partial)
    _selection(model, responses[-1], "get_weather")
    assert responses[-1].additional_kwargs["finish_reason"] == "tool_calls"
    assert responses[-1].additional_kwargs["total_tokens"] > 0


async def test_astreamed_tool_call_is_merged(llm: MakeLLM) -> None:
    model = llm()
    stream = await model.astream_chat_with_tools(
        [WEATHER], user_msg=WEATHER_QUESTION, tool_choice="get_weather"
    )
    responses = [r async for r in stream]
    _selection(model, responses[-1], "get_weather")


def test_parallel_tool_calls(llm: MakeLLM) -> None:
    # The model lists calls until max_tokens; 60 tokens hold two whole ones.
    model = llm(max_tokens=60)
    response = model.chat_with_tools(
        [WEATHER],
        user_msg="Weather in Paris and Tokyo, please.",
        tool_required=True,
        allow_parallel_tool_calls=True,
    )
    selections = model.get_tool_calls_from_response(response)
    assert len(selections) >= 2
    assert {s.tool_name for s in selections} == {"get_weather"}
    assert all(isinstance(s.tool_kwargs.get("city"), str) for s in selections)
    assert len({s.tool_id for s in selections}) == len(selections)


def test_one_tool_call_unless_parallel_allowed(llm: MakeLLM) -> None:
    # The same question without allow_parallel_tool_calls sends parallel_tool_calls=false
    # (the recorded body); one call comes back (the adapter would also drop any extra).
    model = llm(max_tokens=60)
    response = model.chat_with_tools(
        [WEATHER], user_msg="Weather in Paris and Tokyo, please.", tool_required=True
    )
    assert len(model.get_tool_calls_from_response(response)) == 1


def test_predict_and_call_runs_the_tool(llm: MakeLLM) -> None:
    output = llm().predict_and_call([WEATHER], user_msg=WEATHER_QUESTION)
    assert "sunny" in output.response


# llama-index-core's own noise: its agent steps read a deprecated Context property, and its
# workflow inspects the agent's pydantic attributes.
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
async def test_function_agent_round_trip(llm: MakeLLM) -> None:
    """``FunctionAgent``: the model calls the tool, the tool runs, its result goes back.

    The small recording model asks for the tool again after seeing its result, so the agent
    gets two model turns (the call; the turn after the result) and then
    ``early_stopping_method="generate"`` asks it for a final answer without tools. That the
    second request carried the tool's result is checked by replay itself: the recorded
    request body (with the tool message) must match.
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
    assert len(runs) == 1
    assert isinstance(runs[0], str)
    assert result.tool_calls[0].tool_name == "weather"
    assert result.tool_calls[0].tool_output.content == get_weather(runs[0])
    assert isinstance(result.response, ChatMessage)
    assert result.response.role == MessageRole.ASSISTANT
    assert (result.response.content or "").strip()
