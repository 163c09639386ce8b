"""``reasoning_content`` from a reasoning model: a ThinkingBlock, in answers and streams."""

from __future__ import annotations

from llama_index.core.base.llms.types import ThinkingBlock
from llama_index.core.llms import ChatMessage, MessageRole

from llama_index_runcrate import RuncrateLLM

QUESTION = [ChatMessage(role=MessageRole.USER, content="What is 2 + 3?")]


def _thinking(message: ChatMessage) -> str:
    blocks = [b for b in message.blocks if isinstance(b, ThinkingBlock)]
    assert len(blocks) == 1
    assert isinstance(blocks[0].content, str)
    return blocks[0].content


def test_reasoning_in_answer(reasoning_llm: RuncrateLLM) -> None:
    response = reasoning_llm.chat(QUESTION)
    thought = _thinking(response.message)
    assert thought.strip()
    assert response.message.additional_kwargs["reasoning_content"] == thought
    assert isinstance(response.message.content, str)


def test_reasoning_streamed(reasoning_llm: RuncrateLLM) -> None:
    responses = list(reasoning_llm.stream_chat(QUESTION))
    deltas = [
        r.additional_kwargs["thinking_delta"]
        for r in responses
        if r.additional_kwargs.get("thinking_delta")
    ]
    assert len(deltas) > 1, "reasoning arrives in pieces"
    final = responses[-1]
    assert _thinking(final.message) == "".join(deltas)
    assert final.additional_kwargs["total_tokens"] > 0


async def test_reasoning_astreamed(reasoning_llm: RuncrateLLM) -> None:
    responses = [r async for r in await reasoning_llm.astream_chat(QUESTION)]
    assert _thinking(responses[-1].message).strip()


def test_reasoning_history_round_trip(reasoning_llm: RuncrateLLM) -> None:
    """An answer with a ThinkingBlock goes back into the history without breaking the call."""
    first = reasoning_llm.chat(QUESTION)
    follow_up = ChatMessage(role=MessageRole.USER, content="And 3 + 4?")
    second = reasoning_llm.chat([*QUESTION, first.message, follow_up])
    assert _thinking(second.message).strip()
