"""LlamaIndex models wired for recording (the recording server) and replay (the default URL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM

MakeLLM = Callable[..., RuncrateLLM]


@pytest.fixture
def llm(chat_model_id: str, chat_url: str | None) -> MakeLLM:
    """``llm(**fields)``: a deterministic, short-answer RuncrateLLM on the chat server.

    No retries: a missing cassette then fails at once instead of after back-off.
    """

    def make(**fields: Any) -> RuncrateLLM:
        defaults: dict[str, Any] = {
            "model": chat_model_id,
            "base_url": chat_url,
            "temperature": 0,
            "max_tokens": 40,
            "max_retries": 0,
        }
        return RuncrateLLM(**{**defaults, **fields})

    return make


@pytest.fixture
def reasoning_llm(reasoning_model_id: str, reasoning_url: str | None) -> RuncrateLLM:
    return RuncrateLLM(
        model=reasoning_model_id,
        base_url=reasoning_url,
        temperature=0,
        max_tokens=120,
        max_retries=0,
    )


@pytest.fixture
def embed_model(embedding_model_id: str, embeddings_url: str | None) -> RuncrateEmbedding:
    return RuncrateEmbedding(model=embedding_model_id, base_url=embeddings_url, max_retries=0)
