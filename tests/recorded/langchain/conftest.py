"""LangChain models wired for recording (the recording server) and replay (the default URL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings

MakeChat = Callable[..., ChatRuncrate]


@pytest.fixture
def chat(chat_model_id: str, chat_url: str | None) -> MakeChat:
    """``chat(**fields)``: a deterministic, short-answer ChatRuncrate on the chat server.

    No retries: a missing cassette then fails at once instead of after back-off.
    """

    def make(**fields: Any) -> ChatRuncrate:
        defaults: dict[str, Any] = {
            "model": chat_model_id,
            "base_url": chat_url,
            "temperature": 0,
            "max_tokens": 40,
            "max_retries": 0,
        }
        return ChatRuncrate(**{**defaults, **fields})

    return make


@pytest.fixture
def reasoning_chat(reasoning_model_id: str, reasoning_url: str | None) -> ChatRuncrate:
    return ChatRuncrate(
        model=reasoning_model_id,
        base_url=reasoning_url,
        temperature=0,
        max_tokens=120,
        max_retries=0,
    )


@pytest.fixture
def embeddings(embedding_model_id: str, embeddings_url: str | None) -> RuncrateEmbeddings:
    return RuncrateEmbeddings(model=embedding_model_id, base_url=embeddings_url, max_retries=0)
