"""Token counts mean the same in both frameworks: same messages, same count, no request; and
each real answer's usage calibrates the count for every instance of that model."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import trim_messages
from langchain_core.tools import tool
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool

from langchain_runcrate import ChatRuncrate
from llama_index_runcrate import RuncrateLLM
from runcrate_integrations import tokens
from tests.helpers import Recorder, completion_body

from .conftest import BASE_URL, KEY, MODEL, Adapter

CODE = "def area(r: float) -> float:\n    return 3.14159 * r ** 2\n" * 8
PROSE = (
    "The committee met on Tuesday to discuss the budget for the coming year, and after a "
    "long debate it agreed to fund the new library. "
) * 6


@pytest.fixture(autouse=True)
def _fresh_counters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tokens, "_registry", OrderedDict())
    yield


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _langchain_history() -> list[Any]:
    return [
        SystemMessage("You are terse."),
        HumanMessage(PROSE),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1"}]),
        ToolMessage("5", tool_call_id="call_1"),
        HumanMessage(CODE),
    ]


def _llama_index_history() -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="user", content=PROSE),
        ChatMessage(
            role="assistant",
            content="",
            additional_kwargs={
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
                    }
                ]
            },
        ),
        ChatMessage(role="tool", content="5", additional_kwargs={"tool_call_id": "call_1"}),
        ChatMessage(role="user", content=CODE),
    ]


def test_same_messages_same_count_and_no_request(pair: tuple[Adapter, Adapter]) -> None:
    lc, li = pair
    chat, llm = lc.model(), li.model()
    lc_count = chat.get_num_tokens_from_messages(_langchain_history())
    li_count = llm.count_tokens(_llama_index_history())
    assert lc_count == li_count > 0
    # Tools count as the schema each framework sends (LangChain's and LlamaIndex's schema of
    # the same function differ: LlamaIndex puts the signature in the description).
    assert chat.get_num_tokens_from_messages(_langchain_history(), tools=[tool(add)]) > lc_count
    assert llm.count_tokens(_llama_index_history(), tools=[FunctionTool.from_defaults(add)]) > (
        li_count
    )
    assert chat.get_num_tokens(CODE) == len(llm.tokenizer(CODE)) > 0
    assert lc.recorder.requests == li.recorder.requests == []


def test_code_counts_denser_than_prose_of_the_same_length(pair: tuple[Adapter, Adapter]) -> None:
    chat = pair[0].model()
    code, prose = CODE[:400], PROSE[:400]
    assert chat.get_num_tokens(code) > chat.get_num_tokens(prose) > 400 / 6


@pytest.mark.parametrize("first", ["langchain", "llama_index"])
async def test_usage_of_either_adapter_calibrates_both(first: str) -> None:
    chat = ChatRuncrate(model=MODEL, api_key=KEY, base_url=BASE_URL)
    llm = RuncrateLLM(model=MODEL, api_key=KEY, base_url=BASE_URL)
    before = chat.get_num_tokens_from_messages([HumanMessage(PROSE)])
    truth = before * 2  # the server says the prompt was twice what we estimated
    usage = {"prompt_tokens": truth, "completion_tokens": 1, "total_tokens": truth + 1}
    rec = Recorder([completion_body("ok", usage=usage)] * 3)
    if first == "langchain":
        caller = ChatRuncrate(model=MODEL, api_key=KEY, base_url=BASE_URL, http_client=rec.client())
        for _ in range(3):
            caller.invoke(PROSE)
    else:
        li_caller = RuncrateLLM(
            model=MODEL, api_key=KEY, base_url=BASE_URL, async_http_client=rec.async_client()
        )
        for _ in range(3):
            await li_caller.achat([ChatMessage(role="user", content=PROSE)])
    # Other instances of the same model learn too, in both frameworks.
    after_lc = chat.get_num_tokens_from_messages([HumanMessage(PROSE)])
    after_li = llm.count_tokens([ChatMessage(role="user", content=PROSE)])
    assert after_lc == after_li
    assert abs(after_lc - truth) < abs(before - truth) / 4  # moved most of the way


def test_trim_messages_uses_the_model_as_token_counter(pair: tuple[Adapter, Adapter]) -> None:
    chat = pair[0].model()
    history = [SystemMessage("You are terse.")] + [
        HumanMessage(f"question {i}: {PROSE}") if i % 2 == 0 else AIMessage(f"answer {i}")
        for i in range(20)
    ]
    budget = chat.get_num_tokens_from_messages(history) // 4
    kept = trim_messages(
        history,
        max_tokens=budget,
        token_counter=chat,
        strategy="last",
        include_system=True,
        start_on="human",
    )
    assert 1 < len(kept) < len(history)
    assert isinstance(kept[0], SystemMessage)
    assert chat.get_num_tokens_from_messages(kept) <= budget
    assert pair[0].recorder.requests == []


def test_chat_memory_buffer_counts_with_the_models_tokenizer(
    pair: tuple[Adapter, Adapter],
) -> None:
    llm = pair[1].model(context_window=2000)
    memory = ChatMemoryBuffer.from_defaults(llm=llm, tokenizer_fn=llm.tokenizer)
    assert memory.token_limit == 1500  # 75% of the model's window
    for i in range(40):
        memory.put(ChatMessage(role="user", content=f"{i}: {PROSE}"))
    kept = memory.get()
    assert 0 < len(kept) < 40
    assert sum(len(llm.tokenizer(str(m.content))) for m in kept) <= 1500


def test_get_token_ids_says_what_to_use_instead(pair: tuple[Adapter, Adapter]) -> None:
    with pytest.raises(NotImplementedError, match="get_num_tokens"):
        pair[0].model().get_token_ids("hi")
