"""``reasoning_content`` from a reasoning model, in answers and in streams."""

from __future__ import annotations

from langchain_core.messages import AIMessageChunk

from langchain_runcrate import ChatRuncrate

QUESTION = "What is 2 + 3?"


def test_reasoning_content_in_answer(reasoning_chat: ChatRuncrate) -> None:
    answer = reasoning_chat.invoke(QUESTION)
    reasoning = answer.additional_kwargs["reasoning_content"]
    assert isinstance(reasoning, str)
    assert reasoning.strip()
    assert isinstance(answer.content, str)
    assert reasoning not in answer.content or not answer.content
    blocks = answer.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": reasoning}


def test_reasoning_content_streamed(reasoning_chat: ChatRuncrate) -> None:
    chunks = list(reasoning_chat.stream(QUESTION))
    pieces = [
        c.additional_kwargs["reasoning_content"]
        for c in chunks
        if c.additional_kwargs.get("reasoning_content")
    ]
    assert len(pieces) > 1, "reasoning arrives in pieces"
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert full.additional_kwargs["reasoning_content"] == "".join(pieces)
    assert full.usage_metadata is not None


async def test_reasoning_content_astreamed(reasoning_chat: ChatRuncrate) -> None:
    full = None
    async for chunk in reasoning_chat.astream(QUESTION):
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    assert full.additional_kwargs["reasoning_content"].strip()


def test_reasoning_as_v1_content_blocks(reasoning_chat: ChatRuncrate) -> None:
    answer = reasoning_chat.model_copy(update={"output_version": "v1"}).invoke(QUESTION)
    assert isinstance(answer.content, list)
    reasoning = [b for b in answer.content if isinstance(b, dict) and b["type"] == "reasoning"]
    assert len(reasoning) == 1
    assert reasoning[0]["reasoning"].strip()
