"""Code written for Runcrate's 0.1 wrappers runs unchanged on this project.

``langchain-runcrate`` 0.1.0 and ``llama-index-llms-runcrate`` 0.1.0 were thin wrappers over
``langchain-openai`` and ``OpenAILike``; this project is their next release under the same
names. Each example below is quoted from the README of a 0.1 wrapper and run as is, with the
environment a 0.1 user has (``RUNCRATE_API_KEY``, and ``RUNCRATE_API_BASE`` pointing at the local
fake server: the 0.1 name of the base-URL variable, so every request landing there proves it is
read). The server answers like Runcrate: tool calls when tools are offered, a forced call for
structured output, reasoning for the R1 model.
"""

from __future__ import annotations

import ast
import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Spec,
    chat_completion,
    chat_stream,
    tool_call,
)

REASONING_MODEL = "deepseek-ai/DeepSeek-R1-0528"
# What the fake Runcrate calls each tool with.
TOOL_ARGUMENTS = {
    "gpu_price": {"gpu": "H100"},
    "multiply": {"a": 1234, "b": 4567},
    "Summary": {"title": "GPU clouds", "bullets": ["GPUs by the hour", "no hardware to buy"]},
}

# ---------------------------------------------------------------- langchain-runcrate 0.1.0

# The 0.1 README's example, "Chat".
LANGCHAIN_CHAT = """
from langchain_runcrate import ChatRuncrate

llm = ChatRuncrate(model="deepseek-ai/DeepSeek-V3.2", temperature=0)
print(llm.invoke("Explain LoRA fine-tuning in one sentence.").content)

for chunk in llm.stream("Write a haiku about GPUs."):
    print(chunk.text, end="", flush=True)
"""

# The 0.1 README's example, "Tool calling and structured output" (after "Chat").
LANGCHAIN_TOOLS = '''
from pydantic import BaseModel
from langchain_core.tools import tool


@tool
def gpu_price(gpu: str) -> str:
    """Return the hourly price of a GPU."""
    return "see https://www.runcrate.ai/api/gpu-pricing"


llm_with_tools = llm.bind_tools([gpu_price])
print(llm_with_tools.invoke("What does an H100 cost per hour?").tool_calls)


class Summary(BaseModel):
    title: str
    bullets: list[str]


print(llm.with_structured_output(Summary).invoke("Summarize what a GPU cloud is."))
'''

# The 0.1 README's example, "Agents (LangGraph / create_agent)" (after the two above).
LANGCHAIN_AGENT = """
from langchain.agents import create_agent

agent = create_agent(ChatRuncrate(model="Qwen/Qwen3-235B-A22B-Instruct-2507"), tools=[gpu_price])
agent.invoke({"messages": [{"role": "user", "content": "Price an H100 for 10 hours."}]})
"""

# ---------------------------------------------------------------- llama-index-llms-runcrate 0.1.0

# The 0.1 README's example, "Use".
LLAMA_INDEX_USE = """
from llama_index.llms.runcrate import Runcrate
from llama_index.core.llms import ChatMessage

llm = Runcrate(model="deepseek-ai/DeepSeek-V3.2")

print(llm.complete("Explain LoRA fine-tuning in one sentence."))
print(llm.chat([ChatMessage(role="user", content="Name three uses of an H100.")]))

for chunk in llm.stream_complete("Write a haiku about GPUs."):
    print(chunk.delta, end="")
"""

# The 0.1 README's example, "As the default LLM for RAG and agents"; its last line is a comment
# there (`# response = await agent.run(...)`), run here too, as its reader would.
LLAMA_INDEX_AGENT = '''
from llama_index.core import Settings, VectorStoreIndex, SimpleDirectoryReader
from llama_index.core.agent.workflow import FunctionAgent

Settings.llm = Runcrate(model="Qwen/Qwen3-235B-A22B-Instruct-2507", context_window=131072)

def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b

agent = FunctionAgent(tools=[multiply], llm=Settings.llm)
response = await agent.run("What is 1234 * 4567?")
'''


# ---------------------------------------------------------------- the fake Runcrate


def _answer(server: FakeOpenAIServer) -> Any:
    def respond(request: RecordedRequest) -> Spec:
        if request.method == "GET":
            return JSONResponse({"object": "list", "data": server.models})
        body: dict[str, Any] = request.body
        stream = bool(body.get("stream"))
        last = body["messages"][-1]
        if body["model"] == REASONING_MODEL:
            if stream:
                return chat_stream(["Paris."], reasoning_pieces=["The capital ", "of France."])
            return chat_completion("Paris.", reasoning_content="The capital of France.")
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        if tools and last["role"] != "tool":
            forced = body.get("tool_choice")
            name = forced["function"]["name"] if isinstance(forced, dict) else tools[0]
            calls = [tool_call(name, TOOL_ARGUMENTS[name])]
            return (
                chat_stream([], tool_calls=calls)
                if stream
                else chat_completion(None, tool_calls=calls)
            )
        text = f"answer to: {last['content'] if isinstance(last['content'], str) else '...'}"
        return chat_stream([text[:10], text[10:]]) if stream else chat_completion(text)

    return respond


@pytest.fixture
def user_env(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAIServer:
    """A 0.1 user's environment: the key, and the base URL under its 0.1 name only."""
    monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_0_1_user")
    monkeypatch.setenv("RUNCRATE_API_BASE", fake_server.base_url)
    fake_server.default = _answer(fake_server)
    return fake_server


@contextlib.contextmanager
def _printed() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        yield out


def _run(code: str, namespace: dict[str, Any], name: str) -> str:
    with _printed() as out:
        exec(compile(code, f"<0.1 README: {name}>", "exec"), namespace)
    return out.getvalue()


def _chat_bodies(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


# ---------------------------------------------------------------- LangChain


def test_langchain_readme_examples_run_unchanged(user_env: FakeOpenAIServer) -> None:
    ns: dict[str, Any] = {}
    printed = _run(LANGCHAIN_CHAT, ns, "Chat")
    assert printed == (
        "answer to: Explain LoRA fine-tuning in one sentence.\nanswer to: Write a haiku about GPUs."
    )
    first = _chat_bodies(user_env)[0]
    assert first["model"] == "deepseek-ai/DeepSeek-V3.2"
    assert first["temperature"] == 0
    assert user_env.last_request.headers["authorization"] == "Bearer rc_live_0_1_user"

    printed = _run(LANGCHAIN_TOOLS, ns, "Tool calling and structured output")
    tool_calls_line, summary_line = printed.splitlines()
    calls = ast.literal_eval(tool_calls_line)
    assert [(c["name"], c["args"]) for c in calls] == [("gpu_price", {"gpu": "H100"})]
    assert summary_line == "title='GPU clouds' bullets=['GPUs by the hour', 'no hardware to buy']"

    before = len(_chat_bodies(user_env))
    _run(LANGCHAIN_AGENT, ns, "Agents")
    agent_turns = _chat_bodies(user_env)[before:]
    assert [b["model"] for b in agent_turns] == ["Qwen/Qwen3-235B-A22B-Instruct-2507"] * 2
    tool_answer = agent_turns[1]["messages"][-1]
    assert tool_answer["role"] == "tool"
    assert tool_answer["content"] == "see https://www.runcrate.ai/api/gpu-pricing"


def test_langchain_reasoning_in_additional_kwargs(user_env: FakeOpenAIServer) -> None:
    # The 0.1 README: reasoning models "return their reasoning in
    # message.additional_kwargs["reasoning_content"], both in invoke and in stream".
    from langchain_runcrate import ChatRuncrate

    llm = ChatRuncrate(model=REASONING_MODEL)
    answer = llm.invoke("What is the capital of France?")
    assert answer.additional_kwargs["reasoning_content"] == "The capital of France."
    assert answer.content == "Paris."
    streamed = [c.additional_kwargs.get("reasoning_content", "") for c in llm.stream("Again?")]
    assert "".join(streamed) == "The capital of France."


def test_langchain_0_1_arguments(user_env: FakeOpenAIServer) -> None:
    # The 0.1 class's fields were model_name (alias model) and api_base (alias base_url), its
    # variables RUNCRATE_API_KEY and RUNCRATE_API_BASE; ChatOpenAI's other arguments passed on.
    from langchain_runcrate import ChatRuncrate

    by_field = ChatRuncrate(
        model_name="m",
        api_base=user_env.base_url,
        api_key="rc_live_k",
        max_tokens=5,
        timeout=30,
        max_retries=1,
        streaming=True,
        model_kwargs={"top_k": 3},
    )
    assert (by_field.model, by_field.base_url) == ("m", user_env.base_url)
    by_field.invoke("hi")
    body = _chat_bodies(user_env)[-1]
    assert (body["model"], body["max_tokens"], body["top_k"], body["stream"]) == ("m", 5, 3, True)
    from_env = ChatRuncrate(model="m")
    assert from_env.base_url == user_env.base_url
    assert from_env.engine.clients.settings.base_url == user_env.base_url


# ---------------------------------------------------------------- LlamaIndex


@pytest.fixture
def llama_index_settings() -> Iterator[None]:
    """LlamaIndex's global ``Settings`` as they were (the example assigns ``Settings.llm``)."""
    from llama_index.core import Settings

    saved = dict(vars(Settings))
    yield
    vars(Settings).clear()
    vars(Settings).update(saved)


@pytest.mark.usefixtures("llama_index_settings")
async def test_llama_index_readme_examples_run_unchanged(user_env: FakeOpenAIServer) -> None:
    ns: dict[str, Any] = {}
    printed = _run(LLAMA_INDEX_USE, ns, "Use")
    assert printed.splitlines() == [
        "answer to: Explain LoRA fine-tuning in one sentence.",
        "assistant: answer to: Name three uses of an H100.",
        "answer to: Write a haiku about GPUs.",
    ]
    assert {b["model"] for b in _chat_bodies(user_env)} == {"deepseek-ai/DeepSeek-V3.2"}

    code = compile(
        LLAMA_INDEX_AGENT,
        "<0.1 README: RAG and agents>",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    with _printed():
        await eval(code, ns)
    assert ns["Settings"].llm.metadata.context_window == 131072
    assert "answer to:" in str(ns["response"])
    agent_turns = [
        b for b in _chat_bodies(user_env) if b["model"] == "Qwen/Qwen3-235B-A22B-Instruct-2507"
    ]
    assert [t["function"]["name"] for t in agent_turns[0]["tools"]] == ["multiply"]
    result = agent_turns[-1]["messages"][-1]
    assert (result["role"], result["content"]) == ("tool", str(1234 * 4567))


def test_llama_index_0_1_arguments(user_env: FakeOpenAIServer) -> None:
    # The 0.1 README's "Arguments": model, api_key (RUNCRATE_API_KEY), api_base (RUNCRATE_API_BASE
    # or Runcrate's URL), context_window (32768), is_function_calling_model (True); other
    # OpenAILike arguments (temperature, max_tokens, timeout, additional_kwargs) pass through.
    from llama_index.llms.runcrate import Runcrate, RuncrateLLM

    assert Runcrate is RuncrateLLM
    defaults = Runcrate(model="m")
    assert defaults.engine.clients.settings.base_url == user_env.base_url
    assert defaults.metadata.context_window == 32768  # m is not in the catalog
    assert defaults.metadata.is_function_calling_model is True
    llm = Runcrate(
        "m",
        api_key="rc_live_k",
        api_base=user_env.base_url,
        is_chat_model=True,
        is_function_calling_model=False,
        context_window=4096,
        temperature=0.5,
        max_tokens=7,
        timeout=30,
        additional_kwargs={"top_k": 3},
    )
    assert (llm.metadata.context_window, llm.metadata.is_function_calling_model) == (4096, False)
    llm.complete("hi")
    body = _chat_bodies(user_env)[-1]
    assert (body["temperature"], body["max_tokens"], body["top_k"]) == (0.5, 7, 3)
    assert user_env.last_request.headers["authorization"] == "Bearer rc_live_k"
    assert Runcrate(model_name="m2").model == "m2"
    with pytest.raises(ValueError, match="is_chat_model=False"):
        Runcrate("m", is_chat_model=False)


def test_both_base_url_variables_set_and_different(
    user_env: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_runcrate import ChatRuncrate
    from llama_index.llms.runcrate import Runcrate

    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://127.0.0.1:9/v1")
    for make in (lambda: ChatRuncrate(model="m"), lambda: Runcrate(model="m")):
        with pytest.raises(ValueError, match=r"RUNCRATE_BASE_URL=.*RUNCRATE_API_BASE=.*differ"):
            make()
    assert not _chat_bodies(user_env)  # nothing was sent
