"""Both chat adapters driven the same way, each over a recording transport.

``pair`` gives a LangChain and a LlamaIndex :class:`Adapter`; ``adapter.model(**fields)``
builds ``ChatRuncrate`` / ``RuncrateLLM`` whose sync and async HTTP go through the adapter's
:class:`AutoRecorder`, and ``await adapter.call(llm, mode, **kwargs)`` makes one call the way
a user of that framework would (streams are consumed to their end)::

    lc, li = pair
    await lc.call(lc.model(), "stream", seed=7)
    await li.call(li.model(), "stream", seed=7)
    assert lc.sent().body == li.sent().body

The error tests (``test_errors.py``) use a real loopback server instead: ``fake_server``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from llama_index.core.llms import ChatMessage

from langchain_runcrate import ChatRuncrate
from llama_index_runcrate import RuncrateLLM
from tests.helpers import Recorder, completion_body, sse, text_chunks
from tests.reliability.cases import Framework, Mode

FRAMEWORKS: tuple[Framework, ...] = ("langchain", "llama_index")
MODES: tuple[Mode, ...] = ("invoke", "ainvoke", "stream", "astream")
STREAMING: frozenset[str] = frozenset({"stream", "astream"})

KEY = "rc_live_PARITY_TEST_KEY_42"
BASE_URL = "http://runcrate.parity.test/v1"
MODEL = "deepseek/deepseek-v3.2"
PROMPT = "hello"


# Headers whose value is drawn fresh for every request (so two equal calls never match on
# them): the openai client sends an ``Idempotency-Key`` (a new uuid per request) when a client
# class enables one. Everything else, ``x-stainless-*`` and the timeout header included, must
# be equal between the adapters.
RANDOM_PER_REQUEST = frozenset({"idempotency-key"})


@dataclass
class Sent:
    """One recorded request: its JSON body, its headers (lower-case) and its timeout."""

    body: dict[str, Any]
    headers: dict[str, str]
    timeout: Any

    @property
    def comparable_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k not in RANDOM_PER_REQUEST}


class AutoRecorder(Recorder):
    """A :class:`~tests.helpers.Recorder` that answers every request from what it asks for:
    a stream for ``stream: true`` (to its finish_reason and usage), otherwise a completion
    with ``n`` choices; ``GET /models`` (the catalog, which an adapter may read for its
    metadata) gets an empty list and is not one of :attr:`chat_requests`."""

    @property
    def chat_requests(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path.endswith("/chat/completions")]

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.method == "GET":
            return httpx2.Response(200, json={"object": "list", "data": []})
        body = json.loads(request.content)
        if body.get("stream"):
            return sse(text_chunks(["Hel", "lo"]))
        data = completion_body("Hello")
        n = body.get("n") or 1
        data["choices"] = [{**data["choices"][0], "index": i} for i in range(n)]
        return httpx2.Response(200, json=data)


@dataclass
class Adapter:
    """One framework's chat model, built and called the way its users do."""

    framework: Framework
    recorder: AutoRecorder = field(default_factory=AutoRecorder)

    def __str__(self) -> str:
        return "ChatRuncrate" if self.framework == "langchain" else "RuncrateLLM"

    def model(self, **fields: Any) -> Any:
        fields.setdefault("model", MODEL)
        fields.setdefault("api_key", KEY)
        fields.setdefault("base_url", BASE_URL)
        fields.setdefault("max_retries", 0)
        clients = {
            "http_client": self.recorder.client(),
            "http_async_client": self.recorder.async_client(),
        }
        if self.framework == "langchain":
            return ChatRuncrate(**clients, **fields)
        return RuncrateLLM(**clients, **fields)

    async def call(self, llm: Any, mode: Mode, **kwargs: Any) -> Any:
        """One call with per-call ``kwargs``; a stream is read to its end (its final item)."""
        if self.framework == "langchain":
            if mode == "invoke":
                return llm.invoke(PROMPT, **kwargs)
            if mode == "ainvoke":
                return await llm.ainvoke(PROMPT, **kwargs)
            if mode == "stream":
                return list(llm.stream(PROMPT, **kwargs))[-1]
            return [c async for c in llm.astream(PROMPT, **kwargs)][-1]
        messages = [ChatMessage(role="user", content=PROMPT)]
        if mode == "invoke":
            return llm.chat(messages, **kwargs)
        if mode == "ainvoke":
            return await llm.achat(messages, **kwargs)
        if mode == "stream":
            return list(llm.stream_chat(messages, **kwargs))[-1]
        return [r async for r in await llm.astream_chat(messages, **kwargs)][-1]

    @property
    def count(self) -> int:
        """Chat requests sent so far."""
        return len(self.recorder.chat_requests)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat requests sent so far."""
        return [json.loads(r.content) for r in self.recorder.chat_requests]

    def sent(self) -> Sent:
        """The only chat request sent so far (a call must send exactly one)."""
        requests = self.recorder.chat_requests
        assert len(requests) == 1, f"{self}: expected one chat request, got {len(requests)}"
        request = requests[0]
        return Sent(
            json.loads(request.content),
            {k.lower(): v for k, v in request.headers.items()},
            request.extensions.get("timeout"),
        )


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None) -> None:
    """Nothing here may come from the caller's environment."""


@pytest.fixture
def pair() -> tuple[Adapter, Adapter]:
    """(LangChain, LlamaIndex), each with its own recorder."""
    return Adapter("langchain"), Adapter("llama_index")
