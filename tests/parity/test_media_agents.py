"""An agent turn in which the model draws a picture and then answers, in both frameworks,
against a scripted chat server that also serves the media routes.

LangChain: ``create_agent`` with ``ChatRuncrate`` and ``RuncrateToolkit``'s tools;
LlamaIndex: a ``FunctionAgent`` with ``RuncrateLLM`` and ``RuncrateToolSpec``. Both follow the
one rule for media in agent loops: the tool message is text, and the pixels reach a vision
model as a user message right after it (a text-only model gets the description alone). Both
send the same second chat request.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from llama_index.core.agent.workflow import FunctionAgent

from langchain_runcrate import ChatRuncrate, RuncrateToolkit
from llama_index_runcrate import RuncrateLLM, RuncrateToolSpec
from tests.support import fake_media
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Spec,
    chat_completion,
    chat_stream,
    tool_call,
)

KEY = "rc_live_AGENT_MEDIA_KEY_31"
VISION = "Qwen/Qwen2.5-VL-72B-Instruct"  # the fault server's catalog: reads images
TEXT_ONLY = "deepseek-ai/DeepSeek-V3"  # the catalog: text only
CALL = tool_call("generate_image", {"prompt": "a red fox in snow", "seed": 3}, id="call_fox")
ANSWER = "Here is your fox in the snow."
INTRO = "The tool results above returned these images:"


def _script(server: FakeOpenAIServer) -> Iterator[None]:
    """Chat: first a call of the image tool, then the answer; media and the catalog: echo."""
    answers = [([], [CALL]), ([ANSWER], [])]

    def respond(request: RecordedRequest) -> Spec:
        path = request.path.split("?")[0]
        if path.endswith("/chat/completions"):
            text, calls = answers.pop(0)
            body = request.body if isinstance(request.body, dict) else {}
            if body.get("stream"):
                return chat_stream(text, tool_calls=calls or None)
            return chat_completion("".join(text) or None, tool_calls=calls or None)
        if path.endswith("/models"):
            return JSONResponse({"object": "list", "data": server.models})
        media = fake_media.echo(server.media, request, f"http://127.0.0.1:{server.port}")
        assert media is not None, request.path
        return media

    server.default = respond
    yield
    assert answers == [], "the agent did not finish its turn"


def _chat_bodies(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


def _image_posts(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path.endswith("/images/generations")]


async def run_langchain(server: FakeOpenAIServer, model: str) -> str:
    common = {"api_key": KEY, "base_url": server.base_url, "max_retries": 0}
    tools = RuncrateToolkit(**common).get_tools()
    agent = create_agent(ChatRuncrate(model=model, **common), tools)
    state = await agent.ainvoke({"messages": [("user", "Draw a red fox in the snow.")]})
    return str(state["messages"][-1].content)


async def run_llama_index(server: FakeOpenAIServer, model: str) -> str:
    common = {"api_key": KEY, "base_url": server.base_url, "max_retries": 0}
    tools = RuncrateToolSpec(**common).to_tool_list()
    agent = FunctionAgent(tools=tools, llm=RuncrateLLM(model=model, **common))
    result = await agent.run("Draw a red fox in the snow.")
    return str(result)


RUNNERS = {"langchain": run_langchain, "llama_index": run_llama_index}


def _tool_text(messages: list[dict[str, Any]]) -> str:
    (tool,) = [m for m in messages if m["role"] == "tool"]
    assert isinstance(tool["content"], str)  # text, never parts
    assert tool["tool_call_id"] == "call_fox"
    return tool["content"]


@pytest.mark.parametrize("framework", list(RUNNERS))
async def test_a_vision_model_sees_the_drawing_as_a_user_image(
    fake_server: FakeOpenAIServer, framework: str
) -> None:
    script = _script(fake_server)
    next(script)
    answer = await RUNNERS[framework](fake_server, VISION)
    next(script, None)
    assert answer == ANSWER
    assert _image_posts(fake_server) == [
        {"model": "black-forest-labs/FLUX.1-schnell", "prompt": "a red fox in snow", "seed": 3}
    ]
    _, second = _chat_bodies(fake_server)
    messages = second["messages"]
    assert [m["role"] for m in messages][-3:] == ["assistant", "tool", "user"]
    text = _tool_text(messages)
    png = fake_media.tiny_png(64, 64, 3)
    assert text.startswith("Made an image with black-forest-labs/FLUX.1-schnell: 64x64 PNG")
    assert text.endswith(f"[image (image/png, {len(png)} B); shown in the next message]")
    assert messages[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": INTRO},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
            },
        ],
    }


@pytest.mark.parametrize("framework", list(RUNNERS))
async def test_a_text_only_model_gets_the_description_only(
    fake_server: FakeOpenAIServer, framework: str
) -> None:
    script = _script(fake_server)
    next(script)
    assert await RUNNERS[framework](fake_server, TEXT_ONLY) == ANSWER
    next(script, None)
    messages = _chat_bodies(fake_server)[1]["messages"]
    assert messages[-1]["role"] == "tool"
    size = len(fake_media.tiny_png(64, 64, 3))
    assert _tool_text(messages).endswith(
        f"[image (image/png, {size} B); not shown: this model reads no images]"
    )
    assert "image_url" not in json.dumps(messages)


async def test_both_frameworks_send_the_same_second_request(
    fake_server: FakeOpenAIServer,
) -> None:
    sent = {}
    for framework, run in RUNNERS.items():
        fake_server.reset()
        script = _script(fake_server)
        next(script)
        await run(fake_server, VISION)
        next(script, None)
        body = _chat_bodies(fake_server)[1]
        # What legitimately differs: the temporary URL's random name, and each framework's
        # own request extras (LangChain streams nothing here; LlamaIndex's agent streams).
        text = re.sub(
            r"/v1/files/[0-9a-f]+\.png", "/v1/files/<id>.png", json.dumps(body["messages"])
        )
        sent[framework] = (json.loads(text), [t["function"]["name"] for t in body["tools"]])
    assert sent["langchain"] == sent["llama_index"]
