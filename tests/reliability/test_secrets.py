"""Item 10: the API key never leaves through representations, serialisation, exceptions,
tracing payloads or logs. (Cassettes are scanned by tests/recorded.)

Every check is paired with proof the key was really in use (the server saw it as the Bearer
token), so a test cannot pass just because the key never reached the object.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_debug
from langchain_core.load import dumpd, dumps
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher
from pydantic import BaseModel, Field

import runcrate_integrations as core
from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from tests.reliability.cases import KEY, ChatCase, EmbedCase, Framework, Mode, one, user
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    SSEResponse,
    chat_stream,
    error,
)

# Loggers that could see a request: this package, the SDK and both HTTP stacks. Capturing
# them at DEBUG is what OPENAI_LOG=debug does for "openai" (it only sets that logger's level
# and adds a stderr handler); openai 3.x logs no headers or bodies, and filters Authorization.
LOGGERS = (
    "runcrate_integrations",
    "langchain_runcrate",
    "llama_index_runcrate",
    "openai",
    "httpx2",
    "httpcore2",
    "httpx",
    "httpcore",
)


def _assert_no_key(*things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else repr(thing)
        assert KEY not in text, f"the API key leaked in: {text[:300]}"


def _assert_key_sent_only_as_bearer(server: FakeOpenAIServer) -> None:
    assert server.requests, "no request reached the server"
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"  # it was really used
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        _assert_no_key(request.path, json.dumps(request.body), others)


# ---------------------------------------------------------------------- objects


async def test_chat_runcrate_representations_never_show_the_key(
    fake_server: FakeOpenAIServer,
) -> None:
    case = ChatCase("langchain", "invoke", fake_server)
    llm: ChatRuncrate = case.model(temperature=0.1)
    await case.ask(llm)

    _assert_key_sent_only_as_bearer(fake_server)
    _assert_no_key(
        repr(llm),
        str(llm),
        llm.model_dump(),
        llm.model_dump_json(),
        llm.model_dump(mode="json"),
        dumps(llm),
        json.dumps(dumpd(llm)),
        llm._identifying_params,
        llm._get_ls_params(),
        llm._get_invocation_params(),
        repr(llm.bind_tools([get_weather])),
        repr(llm.with_structured_output(Weather)),
    )
    assert dumpd(llm)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["RUNCRATE_API_KEY"],
    }


async def test_runcrate_llm_representations_never_show_the_key(
    fake_server: FakeOpenAIServer,
) -> None:
    case = ChatCase("llama_index", "invoke", fake_server)
    llm: RuncrateLLM = case.model(temperature=0.1)
    await case.ask(llm)

    _assert_key_sent_only_as_bearer(fake_server)
    _assert_no_key(
        repr(llm),
        str(llm),
        llm.model_dump(),
        llm.model_dump_json(),
        llm.to_dict(),
        llm.to_json(),
        llm.to_payload(),
        llm.metadata,
    )


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_embeddings_representations_never_show_the_key(
    fake_server: FakeOpenAIServer, framework: Framework
) -> None:
    case = EmbedCase(framework, "sync", fake_server)
    emb = case.model()
    await case.embed(emb, ["alpha"])

    _assert_key_sent_only_as_bearer(fake_server)
    _assert_no_key(repr(emb), str(emb), emb.model_dump(), emb.model_dump_json())
    if isinstance(emb, RuncrateEmbeddings):
        _assert_no_key(dumps(emb), json.dumps(dumpd(emb)))
    else:
        assert isinstance(emb, RuncrateEmbedding)
        _assert_no_key(emb.to_dict(), emb.to_json(), emb.to_payload())


# BUG (reported to the lead) for RuncrateLLM, RuncrateEmbeddings and RuncrateEmbedding:
# a key passed with a stray trailing comma (`api_key = "rc_live_...",` -> a tuple) fails
# validation with the key printed as `input_value`. ChatRuncrate sets
# `hide_input_in_errors=True`; the other three do not. Fails until they do.
@pytest.mark.parametrize(
    "cls",
    [ChatRuncrate, RuncrateLLM, RuncrateEmbeddings, RuncrateEmbedding],
    ids=lambda c: c.__name__,
)
def test_validation_error_about_the_key_never_shows_it(cls: type[Any]) -> None:
    model_field = "model_name" if cls is RuncrateEmbedding else "model"

    with pytest.raises(ValueError) as caught:
        cls(**{model_field: "m", "api_key": (KEY,), "base_url": "http://127.0.0.1:9/v1"})

    assert "api_key" in str(caught.value)
    _assert_no_key(str(caught.value), repr(caught.value))


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_validation_error_of_another_field_never_shows_the_key(
    fake_server: FakeOpenAIServer, framework: Framework
) -> None:
    with pytest.raises(ValueError) as caught:
        ChatCase(framework, "invoke", fake_server).model(temperature=9)

    _assert_no_key(str(caught.value), repr(caught.value))


# ---------------------------------------------------------------------- exceptions and logs


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def _assert_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    records = caplog.records
    # Non-vacuous: the SDK and the HTTP stack really logged at DEBUG while we watched.
    assert any(r.name.startswith("openai") and r.levelno == logging.DEBUG for r in records)
    assert any(r.name.startswith(("httpx2", "httpcore2")) for r in records)
    for record in records:
        _assert_no_key(record.getMessage(), record.args, record.exc_text or "")
    _assert_no_key(caplog.text)


def _echoing_401() -> Any:
    return error(401, "invalid_api_key", f"Incorrect API key provided: {KEY}")


async def test_key_never_in_logs_or_errors_of_any_chat_path(
    chat: ChatCase, fake_server: FakeOpenAIServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    llm = chat.model(max_retries=1)
    fake_server.enqueue(error(503, "server_error", "busy", {"retry-after-ms": "5"}))
    assert await chat.ask(llm, "hello") == "hello"  # a retry, then an answer
    fake_server.enqueue(_echoing_401())

    with pytest.raises(chat.error(core.AuthenticationError)) as caught:
        await chat.ask(llm, "again")

    _assert_key_sent_only_as_bearer(fake_server)
    err = caught.value
    assert "***" in str(err)  # the echoed key was blanked, the rest of the message kept
    _assert_no_key(
        str(err),
        repr(err),
        err.args,
        "".join(traceback.format_exception(err)),  # incl. the chained original error
    )
    _assert_logs_clean(debug_logs)


async def test_key_never_in_logs_or_errors_of_embeddings(
    embed: EmbedCase, fake_server: FakeOpenAIServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    emb = embed.model()
    await embed.embed(emb, ["alpha"])
    fake_server.enqueue(_echoing_401())

    with pytest.raises(embed.error(core.AuthenticationError)) as caught:
        await embed.embed(emb, ["beta"])

    _assert_key_sent_only_as_bearer(fake_server)
    _assert_no_key(str(caught.value), "".join(traceback.format_exception(caught.value)))
    _assert_logs_clean(debug_logs)


# BUG (reported to the lead): make_status_error blanks the key out of the message only;
# `.error_message` (documented as Runcrate's message) and `.body` keep the echoed key, and
# both are what handlers log (`log.warning("API error: %s", err.error_message)`). Fails
# until the core redacts them too.
@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "invoke"), one("llama_index", "ainvoke")]
)
async def test_echoed_key_is_blanked_in_every_error_field(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Mode
) -> None:
    case = ChatCase(framework, mode, fake_server)
    fake_server.enqueue(_echoing_401())

    with pytest.raises(core.AuthenticationError) as caught:
        await case.ask(case.model())

    err = caught.value
    assert err.error_message is not None and "***" in err.error_message
    _assert_no_key(err.error_message, err.body, err.details)


# BUG (reported to the lead): an error event inside a 200 stream is raised by openai as a bare
# APIError with the server's message verbatim; nothing blanks the key (see also
# test_malformed.py::test_error_event_inside_a_stream_raises_a_typed_runcrate_error).
@pytest.mark.parametrize(
    ("framework", "mode"), [one("langchain", "stream"), one("llama_index", "astream")]
)
async def test_key_echoed_in_a_stream_error_event_is_blanked(
    fake_server: FakeOpenAIServer, framework: Framework, mode: Mode
) -> None:
    case = ChatCase(framework, mode, fake_server)
    role = chat_stream(["x"]).events[0]
    echo = {"error": {"code": "invalid_api_key", "message": f"Key {KEY} was revoked"}}
    fake_server.enqueue(SSEResponse([role, echo]))

    _, err = await case.partial(case.model())

    assert "revoked" in str(err)
    _assert_no_key(str(err), repr(err), "".join(traceback.format_exception(err)))


# ---------------------------------------------------------------------- tracing payloads


class _Spy(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append((serialized, kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append((response, kwargs))


async def test_langchain_callbacks_and_debug_output_never_see_the_key(
    fake_server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # What LangSmith tracing and `set_debug(True)` print is built from these payloads.
    case = ChatCase("langchain", "invoke", fake_server)
    spy = _Spy()
    set_debug(True)
    try:
        case.model().invoke("hello", config={"callbacks": [spy]})
    finally:
        set_debug(False)

    _assert_key_sent_only_as_bearer(fake_server)
    assert len(spy.seen) == 2
    _assert_no_key(spy.seen, json.dumps(spy.seen, default=repr))
    out, err = capsys.readouterr()
    assert "[llm/start]" in out  # debug output was produced
    _assert_no_key(out, err)


class _EventLog(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "RuncrateReliabilityEventLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


async def test_llama_index_instrumentation_events_never_see_the_key(
    fake_server: FakeOpenAIServer,
) -> None:
    case = ChatCase("llama_index", "stream", fake_server)
    log = _EventLog()
    root = get_dispatcher()
    root.add_event_handler(log)
    try:
        list(case.model().stream_chat(user("hello")))
    finally:
        root.event_handlers.remove(log)

    _assert_key_sent_only_as_bearer(fake_server)
    names = {e.class_name() for e in log.events}
    assert "LLMChatStartEvent" in names and "LLMChatEndEvent" in names
    for event in log.events:
        _assert_no_key(event.model_dump(), event.model_dump_json())


def get_weather(city: str) -> str:
    """The weather in a city."""
    return city


class Weather(BaseModel):
    """A weather report."""

    city: str
    sky: str
