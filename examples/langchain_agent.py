"""A LangChain tool-calling agent on Runcrate: the model calls a tool, reads the result, answers.

    python examples/langchain_agent.py

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/langchain_agent.yaml
(offline). Its first line, on stderr, says which and, live, the URLs and models. Settings:
    RUNCRATE_BASE_URL             chat (default https://api.runcrate.ai/v1)
    RUNCRATE_EMBEDDINGS_BASE_URL  embeddings (default: RUNCRATE_BASE_URL; unused here)
    RUNCRATE_REASONING_BASE_URL   reasoning models (default: RUNCRATE_BASE_URL; unused here)
    RUNCRATE_MODEL                chat model (default deepseek/deepseek-v3.2)
    RUNCRATE_EMBEDDING_MODEL      embedding model (default BAAI/bge-m3; unused here)
"""

from __future__ import annotations

from collections.abc import Callable

from _replay import base_url, chat_model, session
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_runcrate import ChatRuncrate


@tool
def get_order_status(order_id: str) -> str:
    """Look up the shipping status of an order by its id."""
    statuses = {"A-1001": "Order A-1001 shipped on 2026-11-20 and arrives on 2026-11-27."}
    return statuses.get(order_id, "no such order")


@wrap_model_call
def answer_after_tool_result(
    request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
) -> ModelResponse:
    """Once a tool result is in, ask for the answer in words, without tools.

    Small models (like the 0.5B one the replayed exchanges were recorded with) tend to call the
    same tool again and again; one tool round is all this task needs.
    """
    if request.messages and request.messages[-1].type == "tool":
        nudge = HumanMessage("Now answer my question in one plain sentence, without JSON.")
        request = request.override(tools=[], messages=[*request.messages, nudge])
    return handler(request)


def main() -> None:
    with session("langchain_agent"):
        llm = ChatRuncrate(model=chat_model(), base_url=base_url(), temperature=0, max_tokens=200)
        agent = create_agent(
            llm,
            tools=[get_order_status],
            system_prompt="Answer using the tools. Be brief.",
            middleware=[answer_after_tool_result],
        )
        result = agent.invoke(
            {"messages": [{"role": "user", "content": "Where is my order A-1001?"}]}
        )
        for message in result["messages"]:
            calls = getattr(message, "tool_calls", None)
            if calls:
                for call in calls:
                    print(f"tool call: {call['name']}({call['args']})")
            elif message.type == "tool":
                print(f"tool result: {message.content}")
        print("answer:", result["messages"][-1].content)


if __name__ == "__main__":
    main()
