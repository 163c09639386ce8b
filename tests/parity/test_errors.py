"""Every failure leaves both adapters typed the same way, against a real loopback server.

For an API status, a network failure, a timeout, a broken stream and a malformed answer, the
exception ``ChatRuncrate`` / ``RuncrateLLM`` (sync, async, streaming) and ``RuncrateEmbeddings``
/ ``RuncrateEmbedding`` (sync, async) raise is a ``runcrate_integrations.RuncrateError`` *and*
the matching ``openai`` class; in LangChain also the matching ``langchain_core.exceptions``
class. ``is_retryable`` means the same in both frameworks: False for what a retry cannot change
(malformed answers, 4xx but 408/409/429, 402), True for 408/409/429/5xx/network/timeout.
Every model has ``max_retries=0``, so each failure costs one request.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

import runcrate_integrations as core
from runcrate_integrations import errors as core_errors
from tests.reliability.cases import ChatCase, EmbedCase, Framework, paths
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    Spec,
    SSEResponse,
    chat_stream,
    error,
)

# One event loop for the module's async tests: its pooled async client is built once (each new
# loop builds its own, which costs tens of milliseconds), as in an application.
pytestmark = pytest.mark.asyncio(loop_scope="module")

CHAT_PATHS = paths("langchain") + paths("llama_index")
STREAM_PATHS = [p for p in CHAT_PATHS if p.values[1] in ("stream", "astream")]
WHOLE_PATHS = [p for p in CHAT_PATHS if p.values[1] in ("invoke", "ainvoke")]
EMBED_PATHS = [
    pytest.param(f, m, id=f"{cls}.{m}")
    for f, cls in (("langchain", "RuncrateEmbeddings"), ("llama_index", "RuncrateEmbedding"))
    for m in ("sync", "async")
]
# Short enough to keep the suite fast, far below the server's delay.
SHORT_TIMEOUT = 0.2
SLOW = 3.0


@dataclass(frozen=True)
class Expect:
    """What an error must be: the core class, the openai class, LangChain's class, and
    whether the same call may succeed if made again."""

    core: type[Exception]
    openai: type[Exception]
    langchain: type[Exception]
    retryable: bool


STATUSES: dict[int, Expect] = {
    400: Expect(core.BadRequestError, openai.BadRequestError, ModelInvalidRequestError, False),
    401: Expect(
        core.AuthenticationError, openai.AuthenticationError, ModelAuthenticationError, False
    ),
    # 402 has no openai class of its own; LangChain: the provider cannot serve the call
    # (ModelAPIError, for fallbacks) but retrying cannot help until someone adds credits.
    402: Expect(core.InsufficientCreditsError, openai.APIStatusError, ModelAPIError, False),
    403: Expect(
        core.PermissionDeniedError, openai.PermissionDeniedError, ModelPermissionDeniedError, False
    ),
    404: Expect(core.NotFoundError, openai.NotFoundError, ModelNotFoundError, False),
    # 408 has no openai class of its own; openai's client retries it, so it is retryable.
    408: Expect(core.APIStatusError, openai.APIStatusError, ModelAPIError, True),
    409: Expect(core.ConflictError, openai.ConflictError, ModelAPIError, True),
    422: Expect(
        core.UnprocessableEntityError,
        openai.UnprocessableEntityError,
        ModelInvalidRequestError,
        False,
    ),
    429: Expect(core.RateLimitError, openai.RateLimitError, ModelRateLimitError, True),
    500: Expect(core.InternalServerError, openai.InternalServerError, ModelAPIError, True),
    503: Expect(core.InternalServerError, openai.InternalServerError, ModelAPIError, True),
}
NETWORK = Expect(
    core_errors.APIConnectionError, openai.APIConnectionError, ModelConnectionError, True
)
TIMEOUT = Expect(core_errors.APITimeoutError, openai.APITimeoutError, ModelTimeoutError, True)
INTERRUPTED = Expect(
    core.StreamInterruptedError, openai.APIConnectionError, ModelConnectionError, True
)
ERROR_EVENT = Expect(core.StreamErrorEvent, openai.APIError, ModelAPIError, True)
MALFORMED = Expect(
    core.ResponseFormatError, openai.APIResponseValidationError, ModelAPIError, False
)


def check(err: BaseException, expect: Expect, framework: Framework) -> None:
    assert isinstance(err, core.RuncrateError), type(err).__mro__
    assert isinstance(err, expect.core), type(err).__mro__
    assert isinstance(err, expect.openai), (
        f"{type(err).__name__} is not an {expect.openai.__module__}.{expect.openai.__name__}: "
        "`except` clauses written for the openai client would miss it"
    )
    if framework == "langchain":
        assert isinstance(err, expect.langchain), type(err).__mro__
        assert isinstance(err, ModelError)
    assert err.is_retryable is expect.retryable  # type: ignore[attr-defined]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


# ---------------------------------------------------------------------- statuses


@pytest.mark.parametrize("status", list(STATUSES))
@pytest.mark.parametrize(("framework", "mode"), CHAT_PATHS)
async def test_chat_status_errors(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, status: int
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = error(status, "some_code", f"status {status}")
    with pytest.raises(core.RuncrateError) as info:
        await case.ask(case.model())
    check(info.value, STATUSES[status], framework)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert fake_server.request_count == 1


@pytest.mark.parametrize("status", list(STATUSES))
@pytest.mark.parametrize(("framework", "mode"), EMBED_PATHS)
async def test_embeddings_status_errors(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, status: int
) -> None:
    case = EmbedCase(framework, mode, fake_server)
    fake_server.default = error(status, "some_code", f"status {status}")
    with pytest.raises(core.RuncrateError) as info:
        await case.embed(case.model(), ["a", "b"])
    check(info.value, STATUSES[status], framework)
    assert fake_server.request_count == 1


# ---------------------------------------------------------------------- network and timeouts


@pytest.mark.parametrize(("framework", "mode"), CHAT_PATHS)
async def test_chat_connection_refused(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any
) -> None:
    case = ChatCase(framework, mode, fake_server)
    llm = case.model(base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(core.RuncrateError) as info:
        await case.ask(llm)
    check(info.value, NETWORK, framework)
    assert not isinstance(info.value, openai.APITimeoutError)


@pytest.mark.parametrize(("framework", "mode"), EMBED_PATHS)
async def test_embeddings_connection_refused(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any
) -> None:
    case = EmbedCase(framework, mode, fake_server)
    emb = case.model(base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(core.RuncrateError) as info:
        await case.embed(emb, ["a"])
    check(info.value, NETWORK, framework)
    assert not isinstance(info.value, openai.APITimeoutError)


@pytest.mark.parametrize(("framework", "mode"), CHAT_PATHS)
async def test_chat_timeout(fake_server: FakeOpenAIServer, framework: Framework, mode: Any) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = case.reply("too late", delay=SLOW)
    with pytest.raises(core.RuncrateError) as info:
        await case.ask(case.model(timeout=SHORT_TIMEOUT))
    check(info.value, TIMEOUT, framework)
    assert fake_server.request_count == 1


@pytest.mark.parametrize(("framework", "mode"), STREAM_PATHS)
async def test_stream_that_stalls_mid_way_times_out(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = chat_stream(["Hel", "lo"], chunk_delay=SLOW)
    with pytest.raises(core.RuncrateError) as info:
        await case.ask(case.model(timeout=SHORT_TIMEOUT))
    check(info.value, TIMEOUT, framework)


@pytest.mark.parametrize(("framework", "mode"), EMBED_PATHS)
async def test_embeddings_timeout(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any
) -> None:
    case = EmbedCase(framework, mode, fake_server)
    fake_server.default = JSONResponse({"object": "list", "data": []}, delay=SLOW)
    with pytest.raises(core.RuncrateError) as info:
        await case.embed(case.model(timeout=SHORT_TIMEOUT), ["a"])
    check(info.value, TIMEOUT, framework)
    assert fake_server.request_count == 1


# ---------------------------------------------------------------------- broken streams


def _dropped() -> Spec:
    return chat_stream(["Hel", "lo", "!"], drop_after=2)  # socket closed mid-body


def _error_event() -> Spec:
    return SSEResponse(
        [
            _chunk({"role": "assistant", "content": "Hel"}),
            {"error": {"code": "server_error", "message": "the model crashed"}},
        ]
    )


def _no_finish_reason() -> Spec:
    # A clean end of stream ([DONE]) that never said the answer was finished.
    return SSEResponse([_chunk({"role": "assistant", "content": "Hel"}), _chunk({"content": "lo"})])


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        pytest.param(_dropped, INTERRUPTED, id="dropped"),
        pytest.param(_error_event, ERROR_EVENT, id="error-event"),
        pytest.param(_no_finish_reason, INTERRUPTED, id="no-finish-reason"),
    ],
)
@pytest.mark.parametrize(("framework", "mode"), STREAM_PATHS)
async def test_stream_failures(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, spec: Any, expect: Expect
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = spec()
    _, err = await case.partial(case.model())
    check(err, expect, framework)
    assert fake_server.request_count == 1


# ---------------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(JSONResponse(body="{not json"), id="not-json"),
        pytest.param(JSONResponse(body=[1, 2]), id="not-an-object"),
        pytest.param(
            JSONResponse({"id": "x", "object": "chat.completion", "choices": []}), id="no-choices"
        ),
        pytest.param(JSONResponse({"id": "x", "choices": [{"index": 0}]}), id="no-message"),
    ],
)
@pytest.mark.parametrize(("framework", "mode"), WHOLE_PATHS)
async def test_malformed_answers(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, spec: Spec
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = spec
    with pytest.raises(core.RuncrateError) as info:
        await case.ask(case.model())
    check(info.value, MALFORMED, framework)


@pytest.mark.parametrize(
    "line",
    [pytest.param("data: {not json", id="not-json"), pytest.param("data: [1, 2]", id="not-object")],
)
@pytest.mark.parametrize(("framework", "mode"), STREAM_PATHS)
async def test_malformed_stream_lines(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, line: str
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.default = SSEResponse([_chunk({"role": "assistant", "content": "Hel"}), line])
    _, err = await case.partial(case.model())
    check(err, MALFORMED, framework)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"object": "list"}, id="no-data"),
        pytest.param({"object": "list", "data": []}, id="wrong-count"),
    ],
)
@pytest.mark.parametrize(("framework", "mode"), EMBED_PATHS)
async def test_malformed_embeddings(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Any, body: Any
) -> None:
    case = EmbedCase(framework, mode, fake_server)
    fake_server.default = JSONResponse(body)
    with pytest.raises(core.RuncrateError) as info:
        await case.embed(case.model(), ["a"])
    check(info.value, MALFORMED, framework)
