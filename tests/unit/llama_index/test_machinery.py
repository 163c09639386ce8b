"""RuncrateLLM inside LlamaIndex's own machinery: agents, workflows, chat and query engines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.tools import FunctionTool

from tests.helpers import completion_body, sse, text_chunks, tool_call, tool_call_chunks

from .conftest import MODEL, MakeLLM


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD = FunctionTool.from_defaults(fn=add)
TOOL_TURN = {
    "role": "assistant",
    "content": None,
    "tool_calls": [tool_call("add", {"a": 2, "b": 3})],
}
TOOL_RESULT = {"role": "tool", "content": "5", "tool_call_id": "call_1"}


@pytest.fixture
def settings() -> Iterator[Any]:
    """LlamaIndex's global Settings, restored afterwards."""
    saved = (Settings._llm, Settings._embed_model)
    yield Settings
    Settings._llm, Settings._embed_model = saved


def _streamed_call() -> list[dict[str, object]]:
    return tool_call_chunks("add", ['"b": 3}'], first='{"a": 2, ')


async def test_function_agent_streaming_tool_round_trip(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(_streamed_call()), sse(text_chunks(["2+3 ", "is 5."]))])
    agent = FunctionAgent(tools=[ADD], llm=llm, system_prompt="Use tools.")
    result = await agent.run(user_msg="What is 2+3?")
    assert str(result) == "2+3 is 5."
    assert result.tool_calls[0].tool_output.content == "5"  # type: ignore[attr-defined]  # AgentOutput
    first, second = rec.bodies
    assert first["tools"] == [ADD.metadata.to_openai_tool()]
    assert first["parallel_tool_calls"] is True and first["stream"] is True
    assert second["messages"][-2:] == [TOOL_TURN, TOOL_RESULT]


async def test_function_agent_non_streaming_with_initial_tool_choice(make_llm: MakeLLM) -> None:
    llm, rec = make_llm(
        [
            completion_body(None, tool_calls=[tool_call("add", {"a": 2, "b": 3})]),
            completion_body("It is 5."),
        ]
    )
    agent = FunctionAgent(tools=[ADD], llm=llm, streaming=False, initial_tool_choice="add")
    result = await agent.run(user_msg="What is 2+3?")
    assert str(result) == "It is 5."
    first, second = rec.bodies
    assert first["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert "stream" not in first
    assert "tool_choice" not in second
    assert second["messages"][-2:] == [TOOL_TURN, TOOL_RESULT]


async def test_agent_workflow(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(_streamed_call()), sse(text_chunks(["5"]))])
    agent = FunctionAgent(name="math", description="Does sums.", tools=[ADD], llm=llm)
    workflow = AgentWorkflow(agents=[agent], root_agent="math")
    result = await workflow.run(user_msg="What is 2+3?")
    assert str(result) == "5"
    assert rec.bodies[-1]["messages"][-2:] == [TOOL_TURN, TOOL_RESULT]


async def test_react_agent(make_llm: MakeLLM) -> None:
    action = 'Thought: I need to add.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    answer = "Thought: I can answer without using any more tools.\nAnswer: 5"
    llm, rec = make_llm([sse(text_chunks([action])), sse(text_chunks([answer]))])
    agent = ReActAgent(tools=[ADD], llm=llm)
    result = await agent.run(user_msg="What is 2+3?")
    assert str(result) == "5"
    assert "tools" not in rec.bodies[0]  # ReAct describes tools in the prompt
    assert "Observation: 5" in json.dumps(rec.bodies[1]["messages"])


def test_simple_chat_engine(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("Hi there"), sse(text_chunks(["Still ", "here"]))])
    engine = SimpleChatEngine.from_defaults(llm=llm, system_prompt="Be kind.")
    assert str(engine.chat("hello")) == "Hi there"
    assert rec.body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hello"},
    ]
    streamed = engine.stream_chat("again?")
    assert "".join(streamed.response_gen) == "Still here"
    assert rec.body["messages"][-3:] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "again?"},
    ]


async def test_simple_chat_engine_async(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([completion_body("async hi")])
    engine = SimpleChatEngine.from_defaults(llm=llm)
    assert str(await engine.achat("hello")) == "async hi"


def test_summary_index_query_engine_with_settings_llm(make_llm: MakeLLM, settings: Any) -> None:
    llm, rec = make_llm([completion_body("Paris is the capital.")])
    settings.llm = llm
    settings.embed_model = MockEmbedding(embed_dim=8)
    index = SummaryIndex.from_documents([Document(text="The capital of France is Paris.")])
    response = index.as_query_engine().query("What is the capital of France?")
    assert str(response) == "Paris is the capital."
    sent = json.dumps(rec.body["messages"])
    assert "The capital of France is Paris." in sent and rec.body["model"] == MODEL


async def test_summary_index_streaming_query(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse(text_chunks(["Par", "is"]))])
    index = SummaryIndex.from_documents([Document(text="The capital of France is Paris.")])
    engine = index.as_query_engine(llm=llm, streaming=True)
    response = engine.query("Capital?")
    assert "".join(response.response_gen) == "Paris"  # type: ignore[union-attr,arg-type]  # streaming
