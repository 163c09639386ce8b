"""What agents need from ChatRuncrate, against a real server's window (8,192 tokens locally).

``trim_messages(token_counter=llm)`` cuts a long history to a budget with the model's own count,
and the server then takes it for what was counted; ``SummarizationMiddleware`` reads the
window from ``llm.profile`` (the catalog, ``GET /models``), summarises a history that would
overflow it and the agent goes on. Checked against the cassette (:mod:`tests.recorded.answers`):
the requests sent, their sizes and the server's ``usage.prompt_tokens``, never the quality of
what the small recording model says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware, ToolCallLimitMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import trim_messages
from langchain_core.tools import tool

from langchain_runcrate import RuncrateContextOverflowError

from ..answers import CITIES, GOODS, ROADS, answers, catalog_windows, last
from .conftest import MakeChat

SUMMARY_PREFIX = "Here is a summary of the conversation to date:\n\n"
TRIM_BUDGET = 800
# The serving window of the local server (llama.cpp's meta.n_ctx); the catalog must say so.
WINDOW = 8192


def _entry(i: int) -> str:
    """One line of a depot log (~35 tokens), different for every ``i``."""
    return (
        f"Entry {i}: the {CITIES[i % 11]} depot shipped {(17 + 13 * i) % 90 + 10} crates of "
        f"{GOODS[i % 7]} on day {i % 28 + 1}; the driver reported {ROADS[i % 5]} roads and "
        f"a delay of {i % 6} hours."
    )


def _log(start: int, lines: int) -> str:
    return "\n".join(_entry(i) for i in range(start, start + lines))


def _history(pairs: int, lines: int, question: str) -> list[BaseMessage]:
    """``pairs`` user turns of ``lines`` log lines, each acknowledged, then ``question``."""
    messages: list[BaseMessage] = []
    for k in range(pairs):
        messages.append(HumanMessage(f"Log part {k + 1}:\n{_log(k * lines, lines)}"))
        messages.append(AIMessage(f"Noted log part {k + 1}."))
    messages.append(HumanMessage(question))
    return messages


# ~10,000 tokens: more than the whole window, so it can only be sent summarised.
LONG_QUESTION = "Reply with one word: done."


def _long_history() -> list[BaseMessage]:
    return _history(pairs=7, lines=40, question=LONG_QUESTION)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else json.dumps(content)


# ---------------------------------------------------------------------------- trim_messages


def test_trim_messages_with_the_model_as_counter_fits_the_server(chat: MakeChat, vcr: Any) -> None:
    """``trim_messages(token_counter=llm, strategy="last")`` keeps the system message and the
    latest turns within the budget (by the model's count, no request), and the server's own
    ``prompt_tokens`` for what was kept stays within the budget plus 15 %. The answer's usage
    then calibrates the count: the same messages count within 5 % of the server's number."""
    llm = chat(max_tokens=16)
    history = [
        SystemMessage("You are a terse logistics assistant."),
        *_history(pairs=8, lines=6, question="How many crates did the last entry mention?"),
    ]
    assert llm.get_num_tokens_from_messages(history) > 2 * TRIM_BUDGET
    trimmed = trim_messages(
        history,
        token_counter=llm,
        max_tokens=TRIM_BUDGET,
        strategy="last",
        start_on="human",
        include_system=True,
    )
    # The system message, then a suffix of the conversation starting on a user turn.
    kept = len(trimmed) - 1
    assert trimmed[0] is history[0]
    assert 3 <= kept < len(history) - 1
    assert trimmed[1:] == history[-kept:]
    assert isinstance(trimmed[1], HumanMessage)
    estimate = llm.get_num_tokens_from_messages(trimmed)
    assert estimate <= TRIM_BUDGET
    # One more turn (the user message and answer before) would not have fitted.
    assert llm.get_num_tokens_from_messages([history[0], *history[-kept - 2 :]]) > TRIM_BUDGET

    answer = llm.invoke(trimmed)

    raw = last(vcr)
    assert len(answers(vcr)) == 1
    assert [(m["role"], _text(m)) for m in raw.request["messages"]] == [
        ("system", history[0].content),
        *[
            ("user" if isinstance(m, HumanMessage) else "assistant", m.content)
            for m in history[-kept:]
        ],
    ]
    assert raw.usage is not None
    prompt_tokens = raw.usage["prompt_tokens"]
    assert TRIM_BUDGET * 0.6 <= prompt_tokens <= TRIM_BUDGET * 1.15, (estimate, prompt_tokens)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == prompt_tokens
    # Calibrated by that one answer: the count now follows the server's tokenizer.
    calibrated = llm.get_num_tokens_from_messages(trimmed)
    assert abs(calibrated - prompt_tokens) <= 0.05 * prompt_tokens, (calibrated, prompt_tokens)


# ---------------------------------------------------------------------------- summarisation


def test_the_long_history_overflows_the_window_whole(chat: MakeChat) -> None:
    """The control for the next test: sent whole, its history is a context overflow (the
    server counts it, in the recorded 400, above the window), raised as the
    ``ContextOverflowError`` LangChain's middleware knows."""
    llm = chat(max_tokens=16)
    with pytest.raises(RuncrateContextOverflowError) as info:
        llm.invoke(_long_history())
    body = info.value.body
    assert isinstance(body, dict)
    assert body["n_prompt_tokens"] > WINDOW >= body["n_ctx"]
    assert llm.get_num_tokens_from_messages(_long_history()) > WINDOW


@tool
def depot_phone(city: str) -> str:
    """The phone number of a depot."""
    return f"The {city} depot answers on +33 1 00 00 00 00."


def test_summarization_middleware_summarises_instead_of_overflowing(
    chat: MakeChat, vcr: Any
) -> None:
    """``create_agent`` with ``SummarizationMiddleware(trigger=("fraction", 0.5))`` on a
    history larger than the window (see the test above): the window comes from the catalog
    (``GET /models`` in the cassette, 8,192), so the trigger is 4,096 tokens by the model's
    count; one summarisation request goes out (the latest history that fits its trim, in
    the summary prompt), its answer becomes the summary message, and the agent's requests
    then carry only the summary and the kept messages: every request succeeds and fits under
    the trigger, by the server's own ``prompt_tokens``. Whether the model calls the tool is
    its choice; each request is checked either way."""
    llm = chat(max_tokens=48)
    history = _long_history()
    summarization = SummarizationMiddleware(
        model=llm,
        trigger=("fraction", 0.5),
        keep=("messages", 2),
        token_counter=llm.get_num_tokens_from_messages,
        # What goes into the summary prompt, by the same count (the default, 4,000, makes a
        # prompt a 0.5B model on two cores takes a minute to read).
        trim_tokens_to_summarize=2000,
    )
    # The profile was read from the catalog to build the middleware: GET /models is recorded.
    assert llm.profile["max_input_tokens"] == WINDOW
    assert catalog_windows(vcr) == [WINDOW]
    total = llm.get_num_tokens_from_messages(history)
    assert total >= WINDOW // 2

    agent = create_agent(
        model=llm,
        tools=[depot_phone],
        system_prompt="You are a terse logistics assistant.",
        middleware=[summarization, ToolCallLimitMiddleware(run_limit=1, exit_behavior="end")],
    )
    state = agent.invoke({"messages": history})

    found = answers(vcr)
    # First the one summarisation request: the summary prompt as a single user message,
    # holding the latest of the summarised messages (the kept two are not in it).
    summary_call, *agent_calls = found
    [prompt] = summary_call.request["messages"]
    assert prompt["role"] == "user"
    assert "Context Extraction Assistant" in prompt["content"]
    assert history[-3].content[-200:] in prompt["content"]
    assert history[-2].content not in prompt["content"]
    assert "tools" not in summary_call.request
    assert summary_call.usage is not None
    assert summary_call.usage["prompt_tokens"] < WINDOW
    # Then the agent's requests (one, or two if the model called the tool), none summarised
    # again: each starts with the system prompt and the summary message, which is the
    # summarisation answer's text, followed by the kept messages.
    assert 1 <= len(agent_calls) <= 2
    summary_text = SUMMARY_PREFIX + (summary_call.content or "").strip()
    for call in agent_calls:
        sent = call.request["messages"]
        assert [m["role"] for m in sent[:2]] == ["system", "user"]
        assert sent[1]["content"] == summary_text
        assert [(m["role"], m["content"]) for m in sent[2:4]] == [
            ("assistant", history[-2].content),
            ("user", LONG_QUESTION),
        ]
        assert [t["function"]["name"] for t in call.request["tools"]] == ["depot_phone"]
        assert call.usage is not None
        assert call.usage["prompt_tokens"] < WINDOW // 2
    # The agent's state: the summary replaced everything but the kept messages, and the run
    # ended on the last answer.
    messages = state["messages"]
    assert isinstance(messages[0], HumanMessage)
    assert messages[0].content == summary_text
    assert [m.content for m in messages[1:3]] == [history[-2].content, LONG_QUESTION]
    assert llm.get_num_tokens_from_messages(messages) < total // 4
    final = messages[-1]
    assert isinstance(final, AIMessage)
    if not agent_calls[-1].tool_calls:
        assert final.content == (agent_calls[-1].content or "")
