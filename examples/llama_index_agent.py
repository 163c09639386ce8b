"""A LlamaIndex FunctionAgent on Runcrate with a real tool round trip.

    python examples/llama_index_agent.py

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/llama_index_agent.yaml
(offline). Its first line, on stderr, says which and, live, the URLs and models. Settings:
    RUNCRATE_BASE_URL             chat (default https://api.runcrate.ai/v1)
    RUNCRATE_EMBEDDINGS_BASE_URL  embeddings (default: RUNCRATE_BASE_URL; unused here)
    RUNCRATE_REASONING_BASE_URL   reasoning models (default: RUNCRATE_BASE_URL; unused here)
    RUNCRATE_MODEL                chat model (default deepseek/deepseek-v3.2)
    RUNCRATE_EMBEDDING_MODEL      embedding model (default BAAI/bge-m3; unused here)
"""

from __future__ import annotations

import asyncio

from _replay import base_url, chat_model, session
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool

from llama_index_runcrate import RuncrateLLM


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return int(a) * int(b)  # small models sometimes send numbers as strings


async def run() -> None:
    agent = FunctionAgent(
        # return_direct: the tool's result is the answer, so the agent stops after one round
        # (small models otherwise tend to call the same tool again and again).
        tools=[FunctionTool.from_defaults(fn=multiply, return_direct=True)],
        llm=RuncrateLLM(model=chat_model(), base_url=base_url(), temperature=0, max_tokens=200),
        system_prompt="Use the multiply tool for arithmetic, then answer briefly.",
    )
    handler = agent.run("What is 12 times 34?")
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            print(f"tool call: {event.tool_name}({event.tool_kwargs}) -> {event.tool_output}")
    response = await handler
    print("answer:", str(response).strip())


def main() -> None:
    with session("llama_index_agent"):
        asyncio.run(run())


if __name__ == "__main__":
    main()
