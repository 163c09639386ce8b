"""A LangChain agent that draws a picture on Runcrate, then its answer is read aloud; both files
are saved.

    python examples/langchain_media_agent.py

The agent (``ChatRuncrate`` with ``RuncrateToolkit``'s image tool) calls the tool; the tool's
message to the model is text (the picture's size, file and URL), and the chat model sees the
pixels only if the catalog says it reads images. The answer is then spoken by the toolkit's
speech tool. Files go to a fresh temporary folder, printed at the end.

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/langchain_media_agent.yaml
(offline; the images there are the local media server's stand-ins, the speech a real voice).
Settings: RUNCRATE_BASE_URL (chat), RUNCRATE_MEDIA_BASE_URL (images and speech; default:
RUNCRATE_BASE_URL), RUNCRATE_MODEL (chat model, default deepseek/deepseek-v3.2).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from _replay import base_url, chat_model, session
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import HumanMessage

from langchain_runcrate import ChatRuncrate, RuncrateToolkit

REQUEST = "Draw a lighthouse on a cliff at dusk, in watercolour."


@wrap_model_call
def one_drawing_then_words(
    request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
) -> ModelResponse:
    """Draw first, then answer in words: one tool round is all this task needs (small models,
    like the 0.5B one the replayed exchanges were recorded with, may otherwise skip the tool or
    call it again and again)."""
    if request.messages and request.messages[-1].type == "tool":
        nudge = HumanMessage("Now tell me in one short sentence what you drew.")
        return handler(request.override(tools=[], messages=[*request.messages, nudge]))
    return handler(request.override(tool_choice="generate_image"))


def main() -> None:
    folder = tempfile.mkdtemp(prefix="runcrate-media-agent-")
    os.chdir(folder)  # "out/...": the same file names (and requests) on every machine
    with session("langchain_media_agent", media=True):
        toolkit = RuncrateToolkit(base_url=base_url("media"), save_dir="out")
        tools = {tool.name: tool for tool in toolkit.get_tools()}
        llm = ChatRuncrate(model=chat_model(), base_url=base_url(), temperature=0, max_tokens=120)
        agent = create_agent(
            llm,
            tools=[tools["generate_image"]],
            system_prompt="You draw what the user asks for with the generate_image tool. Be brief.",
            middleware=[one_drawing_then_words],
        )
        result = agent.invoke({"messages": [{"role": "user", "content": REQUEST}]})
        for message in result["messages"]:
            for call in getattr(message, "tool_calls", None) or ():
                print(f"tool call: {call['name']}({call['args']})")
            if message.type == "tool":
                print(f"tool result: {message.content}")
        answer = str(result["messages"][-1].content).strip()
        print("answer:", answer)
        spoken = tools["text_to_speech"].invoke(
            {"type": "tool_call", "id": "speak", "name": "text_to_speech", "args": {"text": answer}}
        )
        print("read aloud:", spoken.content)
    for name in sorted(os.listdir(os.path.join(folder, "out"))):
        print("saved:", os.path.join(folder, "out", name))


if __name__ == "__main__":
    main()
