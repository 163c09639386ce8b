"""A wrong key gets a real 401 from the server, raised as the typed authentication error.

Keys are never matched (nor recorded), so in replay the request body finds the recorded 401.
"""

from __future__ import annotations

import openai
import pytest
from langchain_core.exceptions import ModelAuthenticationError

from langchain_runcrate import ChatRuncrate, RuncrateAuthenticationError, RuncrateEmbeddings
from runcrate_integrations import AuthenticationError

from .conftest import MakeChat

WRONG_KEY = "rc_live_wrong_key_for_the_401_test"


def _check(error: RuncrateAuthenticationError) -> None:
    assert isinstance(error, AuthenticationError)
    assert isinstance(error, openai.AuthenticationError)
    assert isinstance(error, ModelAuthenticationError)
    assert error.status_code == 401
    assert "RUNCRATE_API_KEY" in str(error)
    assert WRONG_KEY not in str(error)
    assert error.is_retryable is False


def test_wrong_key_invoke(chat: MakeChat) -> None:
    llm: ChatRuncrate = chat(api_key=WRONG_KEY)
    with pytest.raises(RuncrateAuthenticationError) as info:
        llm.invoke("Hello")
    _check(info.value)


def test_wrong_key_stream(chat: MakeChat) -> None:
    with pytest.raises(RuncrateAuthenticationError) as info:
        list(chat(api_key=WRONG_KEY).stream("Hello"))
    _check(info.value)


async def test_wrong_key_ainvoke(chat: MakeChat) -> None:
    with pytest.raises(RuncrateAuthenticationError) as info:
        await chat(api_key=WRONG_KEY).ainvoke("Hello again")
    _check(info.value)


def test_wrong_key_embeddings(embedding_model_id: str, embeddings_url: str | None) -> None:
    embeddings = RuncrateEmbeddings(
        model=embedding_model_id, base_url=embeddings_url, api_key=WRONG_KEY, max_retries=0
    )
    with pytest.raises(RuncrateAuthenticationError) as info:
        embeddings.embed_query("Hello")
    _check(info.value)
