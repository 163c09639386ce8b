"""One way to drive every adapter call path against the fake server, so each fault is tested
the same way for ``ChatRuncrate`` and ``RuncrateLLM`` (sync, async, streaming and not) and for
both embeddings classes (sync and async).

    case = ChatCase("langchain", "stream", server)
    llm = case.model(max_retries=1)
    assert await case.ask(llm, "marker-1") == "marker-1"  # the server echoes the prompt
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import openai
import pytest
from llama_index.core.llms import ChatMessage

import langchain_runcrate as lc
import runcrate_integrations as core
from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Responder,
    Spec,
    chat_completion,
    chat_stream,
)

# Recognisable, so a leak anywhere is easy to find; never a real key.
KEY = "rc_live_SECRETSECRET1234"
MODEL = "deepseek-ai/DeepSeek-V3"
EMBED_MODEL = "BAAI/bge-m3"
# Every model gets a finite timeout, so a regression fails a test instead of hanging it.
CALL_TIMEOUT = 5.0

Framework = Literal["langchain", "llama_index"]
Mode = Literal["invoke", "ainvoke", "stream", "astream"]

# The method each mode calls, per framework (used in test ids).
METHODS: dict[Framework, dict[Mode, str]] = {
    "langchain": {
        "invoke": "invoke",
        "ainvoke": "ainvoke",
        "stream": "stream",
        "astream": "astream",
    },
    "llama_index": {
        "invoke": "chat",
        "ainvoke": "achat",
        "stream": "stream_chat",
        "astream": "astream_chat",
    },
}

# What LangChain raises for each core error: the dual-hierarchy twin (a subclass of both).
_LANGCHAIN_TWINS: dict[type[Exception], type[Exception]] = {
    core.AuthenticationError: lc.RuncrateAuthenticationError,
    core.InsufficientCreditsError: lc.RuncrateInsufficientCreditsError,
    core.RateLimitError: lc.RuncrateRateLimitError,
    core.InternalServerError: lc.RuncrateInternalServerError,
    core.ResponseFormatError: lc.RuncrateResponseFormatError,
    core.StreamInterruptedError: lc.RuncrateStreamInterruptedError,
    openai.APITimeoutError: lc.RuncrateTimeoutError,
    openai.APIConnectionError: lc.RuncrateConnectionError,
    core.APITimeoutError: lc.RuncrateTimeoutError,
    core.APIConnectionError: lc.RuncrateConnectionError,
    core.NotFoundError: lc.RuncrateNotFoundError,
    core.StructuredOutputError: lc.RuncrateStructuredOutputError,
}


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@dataclass(frozen=True)
class ChatCase:
    """One chat adapter called one way."""

    framework: Framework
    mode: Mode
    server: FakeOpenAIServer

    def __str__(self) -> str:
        return f"{self.framework}.{METHODS[self.framework][self.mode]}"

    @property
    def streaming(self) -> bool:
        return self.mode in ("stream", "astream")

    def model(self, **fields: Any) -> Any:
        """The adapter pointed at the fake server; no retries unless asked for."""
        fields.setdefault("max_retries", 0)
        fields.setdefault("timeout", CALL_TIMEOUT)
        fields.setdefault("api_key", KEY)
        fields.setdefault("base_url", self.server.base_url)
        cls = ChatRuncrate if self.framework == "langchain" else RuncrateLLM
        return cls(model=MODEL, **fields)

    def error(self, core_cls: type[Exception]) -> type[Exception]:
        """The class this adapter raises for ``core_cls`` (LangChain adds its own base)."""
        return _LANGCHAIN_TWINS[core_cls] if self.framework == "langchain" else core_cls

    def reply(self, text: str, **kwargs: Any) -> Spec:
        """A successful answer of the right kind (JSON or SSE) for this mode."""
        if self.streaming:
            return chat_stream([text[: len(text) // 2], text[len(text) // 2 :]], **kwargs)
        return chat_completion(text, **kwargs)

    async def ask(self, llm: Any, prompt: str | list[Any] = "hello", **kwargs: Any) -> str:
        """Send ``prompt`` (text, or the framework's messages); the final answer's text.

        A stream must run to its end and deliver its finish_reason to count as an answer.
        """
        if self.framework == "langchain":
            return await _ask_langchain(llm, self.mode, prompt, kwargs)
        return await _ask_llama_index(llm, self.mode, prompt, kwargs)

    async def partial(self, llm: Any, text: str = "hello") -> tuple[list[str], BaseException]:
        """Iterate a stream that must fail: (the pieces yielded before the error, the error)."""
        assert self.streaming
        pieces: list[str] = []
        try:
            if self.framework == "langchain":
                if self.mode == "stream":
                    for chunk in llm.stream(text):
                        pieces.append(chunk.content)
                else:
                    async for chunk in llm.astream(text):
                        pieces.append(chunk.content)
            elif self.mode == "stream":
                for response in llm.stream_chat(user(text)):
                    pieces.append(response.delta)
            else:
                async for response in await llm.astream_chat(user(text)):
                    pieces.append(response.delta)
        except Exception as exc:
            return pieces, exc
        raise AssertionError(f"{self}: the stream ended without an error; got {pieces!r}")


async def _ask_langchain(
    llm: Any, mode: Mode, prompt: str | list[Any], kwargs: dict[str, Any]
) -> str:
    if mode == "invoke":
        return str(llm.invoke(prompt, **kwargs).content)
    if mode == "ainvoke":
        return str((await llm.ainvoke(prompt, **kwargs)).content)
    if mode == "stream":
        chunks = list(llm.stream(prompt, **kwargs))
    else:
        chunks = [chunk async for chunk in llm.astream(prompt, **kwargs)]
    finished = [c for c in chunks if c.response_metadata.get("finish_reason")]
    assert finished, "a stream that returns normally must have delivered its finish_reason"
    return "".join(str(c.content) for c in chunks)


async def _ask_llama_index(
    llm: Any, mode: Mode, prompt: str | list[Any], kwargs: dict[str, Any]
) -> str:
    messages = user(prompt) if isinstance(prompt, str) else prompt
    if mode == "invoke":
        return str(llm.chat(messages, **kwargs).message.content)
    if mode == "ainvoke":
        return str((await llm.achat(messages, **kwargs)).message.content)
    if mode == "stream":
        responses = list(llm.stream_chat(messages, **kwargs))
    else:
        responses = [r async for r in await llm.astream_chat(messages, **kwargs)]
    final = responses[-1]
    assert final.delta == "" and final.additional_kwargs.get("finish_reason"), (
        "a stream that returns normally must end with the whole, finished answer"
    )
    return str(final.message.content)


EmbedMode = Literal["sync", "async"]


@dataclass(frozen=True)
class EmbedCase:
    """One embeddings adapter called one way (documents, i.e. a batch of texts)."""

    framework: Framework
    mode: EmbedMode
    server: FakeOpenAIServer

    def __str__(self) -> str:
        cls = "RuncrateEmbeddings" if self.framework == "langchain" else "RuncrateEmbedding"
        return f"{cls}.{self.mode}"

    def model(self, **fields: Any) -> Any:
        fields.setdefault("max_retries", 0)
        fields.setdefault("timeout", CALL_TIMEOUT)
        fields.setdefault("api_key", KEY)
        fields.setdefault("base_url", self.server.base_url)
        if self.framework == "langchain":
            return RuncrateEmbeddings(model=EMBED_MODEL, **fields)
        return RuncrateEmbedding(model_name=EMBED_MODEL, **fields)

    def error(self, core_cls: type[Exception]) -> type[Exception]:
        return _LANGCHAIN_TWINS[core_cls] if self.framework == "langchain" else core_cls

    async def embed(self, emb: Any, texts: list[str]) -> list[list[float]]:
        if self.framework == "langchain":
            if self.mode == "sync":
                return list(emb.embed_documents(texts))
            return list(await emb.aembed_documents(texts))
        if self.mode == "sync":
            return list(emb.get_text_embedding_batch(texts))
        return list(await emb.aget_text_embedding_batch(texts))


class Arrivals:
    """Wraps specs in responders that note when each request reached the server."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, spec: Spec | Responder) -> Responder:
        def respond(request: RecordedRequest) -> Spec:
            self.times.append(time.monotonic())
            return spec if isinstance(spec, Spec) else spec(request)

        return respond

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive requests: the client's wait before each retry."""
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def one(framework: Framework, mode: str) -> Any:
    """A single explicit (framework, mode) parameter, with the same id as the fixtures use."""
    # Embeddings modes ("sync", "async") have no method name of their own.
    method = next((m for name, m in METHODS[framework].items() if name == mode), mode)
    return pytest.param(framework, mode, id=f"{framework}.{method}")


def paths(framework: Framework) -> list[Any]:
    """Every chat call path of one framework, as ``(framework, mode)`` parameters."""
    return [one(framework, mode) for mode in METHODS[framework]]
