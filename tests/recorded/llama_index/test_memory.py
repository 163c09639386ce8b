"""LlamaIndex memory sized from the server's real window (8,192 tokens locally), with
``RuncrateLLM.tokenizer`` as its tokenizer.

``RuncrateLLM.metadata.context_window`` comes from the catalog (``GET /models`` in the
cassette), so ``ChatMemoryBuffer.from_defaults(llm=llm)`` keeps 6,144 tokens and a chat engine
sends a prompt that fits; a ``FunctionAgent`` whose conversation outgrows the window keeps
working, its ``Memory`` dropping the oldest turns. Checked against the cassette
(:mod:`tests.recorded.answers`): what each request carried and the server's
``usage.prompt_tokens``, not what the small recording model answered.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.tools import FunctionTool

from runcrate_integrations import ContextLengthExceededError

from ..answers import CITIES, GOODS, ROADS, Answer, answers, catalog_windows, last
from .conftest import MakeLLM

SYSTEM = "You are a terse logistics assistant."
QUESTION = "Reply with one word: done."
# The serving window of the local server (llama.cpp's meta.n_ctx); the catalog must say so.
WINDOW = 8192


def _entry(i: int) -> str:
    """One line of a depot log (~35 tokens), different for every ``i``."""
    return (
        f"Entry {i}: the {CITIES[i % 11]} depot shipped {(17 + 13 * i) % 90 + 10} crates of "
        f"{GOODS[i % 7]} on day {i % 28 + 1}; the driver reported {ROADS[i % 5]} roads and "
        f"a delay of {i % 6} hours."
    )


def _log(part: int, lines: int) -> str:
    start = part * lines
    body = "\n".join(_entry(i) for i in range(start, start + lines))
    return f"Log part {part + 1}:\n{body}"


def _chat_history() -> list[ChatMessage]:
    """Ten logged turns (~1,070 tokens each) and their acknowledgements: ~10,800 tokens."""
    history = []
    for k in range(10):
        history.append(ChatMessage(role=MessageRole.USER, content=_log(k, 30)))
        history.append(ChatMessage(role=MessageRole.ASSISTANT, content=f"Noted log part {k + 1}."))
    return history


def _agent_inputs() -> list[str]:
    """Four turns for the agent (~2,250 tokens each): together more than the window."""
    return [
        f"{_log(k, 62)}\nQuestion: which goods did entry {k * 62 + 5} mention? A few words."
        for k in range(4)
    ]


def _sent(answer: Answer) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in answer.request["messages"]]


def _wire(messages: list[ChatMessage]) -> list[tuple[str, str]]:
    return [(m.role.value, m.content or "") for m in messages]


# ---------------------------------------------------------------------------- the control


@pytest.mark.parametrize("conversation", ["chat_history", "agent_inputs"])
def test_the_conversations_overflow_the_window_whole(llm: MakeLLM, conversation: str) -> None:
    """The control for the tests below: sent whole, each conversation is a context overflow
    (the server counts it, in the recorded 400, above the window)."""
    if conversation == "chat_history":
        messages = [*_chat_history(), ChatMessage(role=MessageRole.USER, content=QUESTION)]
    else:
        messages = [ChatMessage(role=MessageRole.USER, content=t) for t in _agent_inputs()]
    with pytest.raises(ContextLengthExceededError) as info:
        llm(max_tokens=16).chat(messages)
    body = info.value.body
    assert isinstance(body, dict)
    assert body["n_prompt_tokens"] > WINDOW >= body["n_ctx"]


# ---------------------------------------------------------------------------- ChatMemoryBuffer


def test_chat_memory_buffer_is_sized_from_the_servers_window(llm: MakeLLM, vcr: Any) -> None:
    """``ChatMemoryBuffer.from_defaults(llm=llm, tokenizer_fn=llm.tokenizer)``: 3/4 of the
    catalog's 8,192 tokens (not the 32,768 fallback, which would overflow), so a chat engine
    over a ~10,800-token history sends the latest turns that fit, and the server counts the
    prompt above half the window and below the window."""
    model = llm(max_tokens=16)
    history = _chat_history()
    memory = ChatMemoryBuffer.from_defaults(
        chat_history=list(history), llm=model, tokenizer_fn=model.tokenizer
    )
    # The window was read from the catalog to size the memory: GET /models is recorded.
    assert catalog_windows(vcr) == [WINDOW]
    assert model.metadata.context_window == WINDOW
    assert memory.token_limit == WINDOW * 3 // 4
    whole = len(model.tokenizer(" ".join(m.content or "" for m in history)))
    assert whole > WINDOW

    engine = SimpleChatEngine.from_defaults(llm=model, memory=memory, system_prompt=SYSTEM)
    response = engine.chat(QUESTION)

    raw = last(vcr)
    assert len(answers(vcr)) == 1
    sent = _sent(raw)
    # The system prompt, then the latest turns of the history (from a user turn), then the
    # question: what the memory kept, the older turns dropped.
    kept = len(sent) - 2
    assert sent[0] == ("system", SYSTEM)
    assert sent[-1] == ("user", QUESTION)
    assert 2 <= kept < len(history)
    assert sent[1:-1] == _wire(history[-kept:])
    assert sent[1][0] == "user"
    assert raw.usage is not None
    prompt_tokens = raw.usage["prompt_tokens"]
    assert WINDOW // 2 < prompt_tokens < WINDOW, prompt_tokens
    assert response.response == (raw.content or "")
    # Calibrated by the answer, the model's count of what was sent follows the server's.
    sent_messages = [ChatMessage(role=r, content=c) for r, c in sent]
    assert abs(model.count_tokens(sent_messages) - prompt_tokens) <= 0.05 * prompt_tokens


# ---------------------------------------------------------------------------- FunctionAgent


def depot_phone(city: str) -> str:
    """The phone number of a depot."""
    return f"The {city} depot answers on +33 1 00 00 00 00."


# llama-index-core's own noise: its agent steps read a deprecated Context property, and its
# workflow inspects the agent's pydantic attributes.
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
async def test_function_agent_keeps_working_past_the_window(llm: MakeLLM, vcr: Any) -> None:
    """A ``FunctionAgent`` with ``Memory`` sized as LlamaIndex's chat engines size it
    (``context_window - 256``, from the catalog; flushes of a tenth of that) and
    ``tokenizer_fn=llm.tokenizer``, run four turns whose inputs add up to more than the window
    (see the control above): the memory carries the previous turn while it fits, then archives
    the oldest ones; every request succeeds, fits the window by the server's count, and each
    turn's answer is the text the server sent last. Whether the model calls the tool is its
    choice; checked either way."""
    model = llm(max_tokens=48)
    window = model.metadata.context_window
    assert window == WINDOW
    assert catalog_windows(vcr) == [WINDOW]
    # Memory.from_defaults's flush size (3,000) is 10 % of its default limit (30,000), not of
    # the limit given: sized from the window too, a flush drops a turn, not three.
    limit = window - 256
    memory = Memory.from_defaults(
        token_limit=limit, token_flush_size=limit // 10, tokenizer_fn=model.tokenizer
    )
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=depot_phone)], llm=model, system_prompt=SYSTEM
    )
    inputs = _agent_inputs()
    assert sum(len(model.tokenizer(text)) for text in inputs) > WINDOW

    turns: list[list[Answer]] = []
    for text in inputs:
        before = len(answers(vcr))
        result = await agent.run(
            user_msg=text, memory=memory, max_iterations=3, early_stopping_method="generate"
        )
        turn = answers(vcr)[before:]
        turns.append(turn)
        assert turn
        # The turn's answer is the text of the server's last answer in it.
        assert (result.response.content or "").strip() == (turn[-1].content or "").strip()

    # Which inputs each request carried: the previous turn while both fit in the memory's
    # share of the window (70 % of window - 256), then the oldest are dropped.
    carried = [
        [[inputs.index(c) for r, c in _sent(a) if r == "user" and c in inputs] for a in turn]
        for turn in turns
    ]
    assert carried == [
        [[0]] * len(turns[0]),
        [[0, 1]] * len(turns[1]),
        [[1, 2]] * len(turns[2]),
        [[2, 3]] * len(turns[3]),
    ]
    for answer in (a for turn in turns for a in turn):
        assert _sent(answer)[0] == ("system", SYSTEM)
        assert [t["function"]["name"] for t in answer.request["tools"]] == ["depot_phone"]
        assert answer.usage is not None
        assert answer.usage["prompt_tokens"] < WINDOW
    # The memory archived what it dropped; what it holds is the last two turns.
    archived = await memory.sql_store.get_messages(memory.session_id, status=MessageStatus.ARCHIVED)
    active = await memory.aget()
    assert [m.content for m in archived if m.role == MessageRole.USER] == inputs[:2]
    assert [m.content for m in active if m.role == MessageRole.USER] == inputs[2:]
