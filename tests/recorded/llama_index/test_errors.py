"""A wrong key gets a real 401 from the server, raised as the typed authentication error.

Keys are never matched (nor recorded), so in replay the request body finds the recorded 401.
"""

from __future__ import annotations

import openai
import pytest
from llama_index.core.llms import ChatMessage

from llama_index_runcrate import RuncrateEmbedding
from runcrate_integrations import AuthenticationError

from .conftest import MakeLLM

WRONG_KEY = "rc_live_wrong_key_for_the_401_test"
HELLO = [ChatMessage(role="user", content="Hello")]


def _check(error: AuthenticationError) -> None:
    assert isinstance(error, openai.AuthenticationError)
    assert error.status_code == 401
    assert "RUNCRATE_API_KEY" in str(error)
    assert WRONG_KEY not in str(error)


def test_wrong_key_chat(llm: MakeLLM) -> None:
    with pytest.raises(AuthenticationError) as info:
        llm(api_key=WRONG_KEY).chat(HELLO)
    _check(info.value)


def test_wrong_key_stream_chat(llm: MakeLLM) -> None:
    with pytest.raises(AuthenticationError) as info:
        list(llm(api_key=WRONG_KEY).stream_chat(HELLO))
    _check(info.value)


async def test_wrong_key_achat(llm: MakeLLM) -> None:
    with pytest.raises(AuthenticationError) as info:
        await llm(api_key=WRONG_KEY).achat([ChatMessage(role="user", content="Hello again")])
    _check(info.value)


def test_wrong_key_embedding(embedding_model_id: str, embeddings_url: str | None) -> None:
    model = RuncrateEmbedding(
        model=embedding_model_id, base_url=embeddings_url, api_key=WRONG_KEY, max_retries=0
    )
    with pytest.raises(AuthenticationError) as info:
        model.get_query_embedding("Hello")
    _check(info.value)
