"""RuncrateLLM chat, completion and streams against a real server, with usage."""

from __future__ import annotations

import itertools

from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.llms import ChatMessage, MessageRole

from .conftest import MakeLLM

PROMPT = "Say hello in five words."
MESSAGES = [
    ChatMessage(role=MessageRole.SYSTEM, content="You are terse."),
    ChatMessage(role=MessageRole.USER, content=PROMPT),
]


def _check_usage(extra: dict[str, object]) -> None:
    prompt, completion, total = (
        extra["prompt_tokens"],
        extra["completion_tokens"],
        extra["total_tokens"],
    )
    assert isinstance(prompt, int)
    assert isinstance(completion, int)
    assert prompt > 0
    assert completion > 0
    assert total == prompt + completion


def _check_answer(response: ChatResponse) -> None:
    assert response.message.role == MessageRole.ASSISTANT
    assert isinstance(response.message.content, str)
    assert response.message.content.strip()
    assert response.additional_kwargs["finish_reason"] in ("stop", "length")
    _check_usage(response.additional_kwargs)
    assert isinstance(response.raw, dict)
    assert response.raw["choices"]


def test_chat(llm: MakeLLM) -> None:
    _check_answer(llm().chat(MESSAGES))


async def test_achat(llm: MakeLLM) -> None:
    _check_answer(await llm().achat(MESSAGES))


def test_complete(llm: MakeLLM) -> None:
    response = llm().complete(PROMPT)
    assert response.text.strip()
    _check_usage(response.additional_kwargs)


async def test_acomplete(llm: MakeLLM) -> None:
    response = await llm().acomplete(PROMPT)
    assert response.text.strip()


def _check_stream(responses: list[ChatResponse]) -> None:
    assert len(responses) > 3, "a streamed answer arrives in pieces"
    deltas = [r.delta for r in responses if r.delta]
    assert len(deltas) > 1
    final = responses[-1]
    # Each response holds the text so far; the last one the whole answer and the usage.
    assert final.message.content == "".join(deltas)
    for earlier, later in itertools.pairwise(responses):
        assert (later.message.content or "").startswith(earlier.message.content or "")
    assert final.additional_kwargs["finish_reason"] in ("stop", "length")
    _check_usage(final.additional_kwargs)


def test_stream_chat_with_usage(llm: MakeLLM) -> None:
    _check_stream(list(llm().stream_chat(MESSAGES)))


async def test_astream_chat_with_usage(llm: MakeLLM) -> None:
    _check_stream([r async for r in await llm().astream_chat(MESSAGES)])


def test_stream_complete(llm: MakeLLM) -> None:
    responses = list(llm().stream_complete(PROMPT))
    assert len(responses) > 3
    assert responses[-1].text == "".join(r.delta or "" for r in responses)
    assert responses[-1].text.strip()


async def test_astream_complete(llm: MakeLLM) -> None:
    responses = [r async for r in await llm().astream_complete(PROMPT)]
    assert responses[-1].text == "".join(r.delta or "" for r in responses)


def test_max_tokens_cuts_the_answer(llm: MakeLLM) -> None:
    response = llm(max_tokens=3).chat(
        [ChatMessage(role=MessageRole.USER, content="Count from one to twenty in words.")]
    )
    assert response.additional_kwargs["finish_reason"] == "length"
    assert response.additional_kwargs["completion_tokens"] <= 3


def test_logprobs(llm: MakeLLM) -> None:
    response = llm(max_tokens=5, logprobs=True, top_logprobs=2).chat(
        [ChatMessage(role=MessageRole.USER, content="Say hi.")]
    )
    assert response.logprobs is not None
    assert len(response.logprobs) == response.additional_kwargs["completion_tokens"]
    for alternatives in response.logprobs:
        assert 1 <= len(alternatives) <= 2
        assert all(isinstance(a.token, str) and a.logprob <= 0 for a in alternatives)
