"""ChatRuncrate answers, streams and usage, replayed from a real server's exchanges."""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage

from .conftest import MakeChat

PROMPT = "Say hello in five words."


def _check_usage(message: AIMessage) -> None:
    usage = message.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def _check_answer(message: AIMessage) -> None:
    assert isinstance(message.content, str)
    assert message.content.strip()
    meta = message.response_metadata
    assert meta["model_provider"] == "runcrate"
    assert meta["finish_reason"] in ("stop", "length")
    assert isinstance(meta["model_name"], str)
    assert meta["model_name"]
    assert meta["id"]
    _check_usage(message)
    assert message.tool_calls == []


def test_invoke(chat: MakeChat) -> None:
    answer = chat().invoke([SystemMessage("You are terse."), HumanMessage(PROMPT)])
    assert isinstance(answer, AIMessage)
    _check_answer(answer)


async def test_ainvoke(chat: MakeChat) -> None:
    answer = await chat().ainvoke(PROMPT)
    _check_answer(answer)


def test_max_tokens_cuts_the_answer(chat: MakeChat) -> None:
    answer = chat(max_tokens=3).invoke("Count from one to twenty in words.")
    assert answer.response_metadata["finish_reason"] == "length"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] <= 3


def _fold(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def _check_stream(chunks: list[AIMessageChunk]) -> None:
    assert len(chunks) > 3, "a streamed answer arrives in pieces"
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    text_pieces = [c.content for c in chunks if c.content]
    assert len(text_pieces) > 1
    # Usage is reported once, at the end, so summing chunks does not double it.
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1
    full = _fold(chunks)
    assert full.content == "".join(str(p) for p in text_pieces)
    assert full.response_metadata["finish_reason"] in ("stop", "length")
    assert full.response_metadata["model_name"]
    _check_usage(full)
    assert full.usage_metadata == with_usage[0].usage_metadata


def test_stream_with_usage(chat: MakeChat) -> None:
    _check_stream(list(chat().stream(PROMPT)))


async def test_astream_with_usage(chat: MakeChat) -> None:
    _check_stream([c async for c in chat().astream(PROMPT)])


def test_stream_without_usage(chat: MakeChat) -> None:
    # stream_usage=False sends no stream_options (the cassette's request body proves it).
    chunks = list(chat(stream_usage=False).stream(PROMPT))
    assert all(c.usage_metadata is None for c in chunks)
    assert _fold(chunks).content


def test_streaming_flag_makes_invoke_stream(chat: MakeChat) -> None:
    tokens: list[str] = []

    class Collect(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            tokens.append(token)

    answer = chat(streaming=True).invoke(PROMPT, config={"callbacks": [Collect()]})
    assert isinstance(answer.content, str)
    assert "".join(tokens) == answer.content
    assert len([t for t in tokens if t]) > 1
    _check_usage(answer)


def test_logprobs(chat: MakeChat) -> None:
    answer = chat(max_tokens=5, logprobs=True, top_logprobs=2).invoke("Say hi.")
    logprobs = answer.response_metadata["logprobs"]["content"]
    assert answer.usage_metadata is not None
    assert len(logprobs) == answer.usage_metadata["output_tokens"]
    for entry in logprobs:
        assert isinstance(entry["token"], str)
        assert entry["logprob"] <= 0
        assert 1 <= len(entry["top_logprobs"]) <= 2


def test_batch_keeps_order(chat: MakeChat) -> None:
    answers = chat(max_tokens=10).batch(["Say one.", "Say two.", "Say three."])
    assert len(answers) == 3
    assert all(isinstance(a, AIMessage) and a.content for a in answers)
