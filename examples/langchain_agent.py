"""A LangChain tool-calling agent on Runcrate: the model calls a tool, reads the result, answers.

    python examples/langchain_agent.py
"""

from __future__ import annotations

from _replay import chat_model, session
from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_runcrate import ChatRuncrate


@tool
def get_order_status(order_id: str) -> str:
    """Look up the shipping status of an order by its id."""
    statuses = {"A-1001": "shipped on 2026-11-20, arriving 2026-11-27"}
    return statuses.get(order_id, "no such order")


def main() -> None:
    with session("langchain_agent"):
        llm = ChatRuncrate(model=chat_model(), temperature=0, max_tokens=200)
        agent = create_agent(llm, tools=[get_order_status],
                             system_prompt="Answer using the tools. Be brief.")
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
