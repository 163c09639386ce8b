"""Fixtures of the fault-injection suite: a real HTTP server on 127.0.0.1 and the call paths.

The server (``tests/support/fake_openai_server.py``, the ``fake_server`` fixture of
``tests/conftest.py``) runs in a daemon thread on an ephemeral port, one per test module, reset
before and after each test. It is bounded: a connection idle or stuck mid-request longer than
``SERVER_READ_TIMEOUT`` is dropped, and every adapter built by ``cases`` has a finite client
timeout.
"""

from __future__ import annotations

import pytest

from tests.reliability.cases import METHODS, ChatCase, EmbedCase, Framework, Mode
from tests.support.fake_openai_server import FakeOpenAIServer

FRAMEWORKS: tuple[Framework, ...] = ("langchain", "llama_index")
MODES: tuple[Mode, ...] = ("invoke", "ainvoke", "stream", "astream")


# openai's first retry waits 0.5 s (less up to 25% jitter), doubling after. Retry tests here
# check what is retried and when the server's hints are honoured, not openai's numbers, so
# the backoff is shortened; tests about the backoff itself are marked real_backoff.
FAST_BACKOFF = 0.02


@pytest.fixture(autouse=True)
def _fast_backoff(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_backoff") is None:
        import openai._base_client

        monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", FAST_BACKOFF)


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None) -> None:
    """Nothing here may come from the caller's environment."""


def _chat_ids(params: tuple[Framework, Mode]) -> str:
    framework, mode = params
    return f"{framework}.{METHODS[framework][mode]}"


@pytest.fixture(params=[(f, m) for f in FRAMEWORKS for m in MODES], ids=_chat_ids)
def chat(request: pytest.FixtureRequest, fake_server: FakeOpenAIServer) -> ChatCase:
    """Every chat call path: {ChatRuncrate, RuncrateLLM} x {sync, async} x {stream, not}."""
    framework, mode = request.param
    return ChatCase(framework, mode, fake_server)


@pytest.fixture(params=[(f, m) for f in FRAMEWORKS for m in ("stream", "astream")], ids=_chat_ids)
def stream_chat(request: pytest.FixtureRequest, fake_server: FakeOpenAIServer) -> ChatCase:
    """The streaming chat call paths only."""
    framework, mode = request.param
    return ChatCase(framework, mode, fake_server)


@pytest.fixture(params=[(f, m) for f in FRAMEWORKS for m in ("invoke", "ainvoke")], ids=_chat_ids)
def whole_chat(request: pytest.FixtureRequest, fake_server: FakeOpenAIServer) -> ChatCase:
    """The non-streaming chat call paths only."""
    framework, mode = request.param
    return ChatCase(framework, mode, fake_server)


@pytest.fixture(
    params=[(f, m) for f in FRAMEWORKS for m in ("sync", "async")],
    ids=lambda p: f"{'RuncrateEmbeddings' if p[0] == 'langchain' else 'RuncrateEmbedding'}.{p[1]}",
)
def embed(request: pytest.FixtureRequest, fake_server: FakeOpenAIServer) -> EmbedCase:
    """Both embeddings classes, sync and async."""
    framework, mode = request.param
    return EmbedCase(framework, mode, fake_server)
