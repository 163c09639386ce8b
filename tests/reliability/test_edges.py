"""Real servers' and migrating users' edges (items 2-7; 1, 8 and 9 are pinned in
``test_tool_calls.py``, ``tests/unit/langchain/test_structured.py`` and ``test_messages.py``).

Each test fails on the code before this change: a catalog that never answers, a non-streaming
answer to a streaming request, errors that do not say where they went, the documented shape of
the rate-limit state, a saved ``httpx2.Timeout``, and ``ChatOpenAI``'s own names for the key.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain_core.load import dumpd, dumps, load
from llama_index.core.llms import ChatMessage

import runcrate_integrations as core
from langchain_runcrate import ChatRuncrate
from llama_index_runcrate import RuncrateLLM
from runcrate_integrations.catalog import HINT_TIMEOUT
from tests.reliability.cases import KEY, MODEL, ChatCase, user
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Spec,
    chat_completion,
    error,
    tool_call,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# ---------------------------------------------------------------------- 2: a catalog that hangs


def _models_never_answer(request: RecordedRequest) -> Spec:
    if request.path.split("?")[0].endswith("/models"):
        return JSONResponse({"object": "list", "data": []}, delay=25.0)  # a black hole
    return chat_completion("ok")


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_a_catalog_that_never_answers_costs_a_short_bounded_wait(
    fake_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture, framework: str
) -> None:
    fake_server.default = _models_never_answer
    common: dict[str, Any] = {
        "api_key": KEY,
        "base_url": fake_server.base_url,
        "timeout": 60.0,
        "max_retries": 5,
    }
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="runcrate_integrations.catalog"):
        if framework == "langchain":
            profile = ChatRuncrate(model=MODEL, **common).profile
            assert profile is not None and profile.get("max_input_tokens") is None
        else:
            assert RuncrateLLM(model=MODEL, **common).metadata.context_window == 32_768
    took = time.monotonic() - started
    assert took < 5.0  # not the instance's 60 s timeout, nor its 5 retries
    assert fake_server.request_count == 1  # one GET /models, not retried
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{fake_server.base_url}/models" in warnings[0]
    assert HINT_TIMEOUT <= 3.0


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_the_catalog_read_never_passes_the_deadline(
    fake_server: FakeOpenAIServer, framework: str
) -> None:
    fake_server.default = _models_never_answer
    common: dict[str, Any] = {"api_key": KEY, "base_url": fake_server.base_url, "deadline": 0.5}
    started = time.monotonic()
    if framework == "langchain":
        profile = ChatRuncrate(model=MODEL, **common).profile
        assert profile is not None and profile.get("max_input_tokens") is None
    else:
        assert RuncrateLLM(model=MODEL, **common).metadata.context_window == 32_768
    assert time.monotonic() - started < 1.5  # the 0.5 s deadline, not the catalog's own 3 s
    assert fake_server.request_count == 1


# ---------------------------------------------------------------------- 3: JSON for a stream


def _completion_with_tools() -> JSONResponse:
    reply = chat_completion(
        "",
        tool_calls=[
            tool_call("weather", {"city": "Paris"}, "c1"),
            tool_call("weather", {"city": "Oslo"}, "c2"),
        ],
    )
    reply.body["choices"][0]["finish_reason"] = "tool_calls"
    return reply


async def test_a_whole_answer_to_a_streaming_request_is_the_streams_one_chunk(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(chat_completion("whole answer"))  # a server ignoring stream: true
    assert await stream_chat.ask(stream_chat.model()) == "whole answer"
    assert fake_server.last_request.body["stream"] is True


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_its_tool_calls_and_usage_come_through(
    fake_server: FakeOpenAIServer, mode: str
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    fake_server.enqueue(_completion_with_tools())
    llm = ChatRuncrate(model=MODEL, api_key=KEY, base_url=fake_server.base_url, max_retries=0)
    bound = llm.bind_tools(tools)
    merged: Any = None
    if mode == "stream":
        for piece in bound.stream("weather?"):
            merged = piece if merged is None else merged + piece
    else:
        async for piece in bound.astream("weather?"):
            merged = piece if merged is None else merged + piece
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [
        ("weather", {"city": "Paris"}),
        ("weather", {"city": "Oslo"}),
    ]
    assert merged.usage_metadata is not None and merged.usage_metadata["total_tokens"] > 0

    fake_server.enqueue(_completion_with_tools())
    li = RuncrateLLM(model=MODEL, api_key=KEY, base_url=fake_server.base_url, max_retries=0)
    *_, last = li.stream_chat(user("weather?"))
    calls = li.get_tool_calls_from_response(last)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [
        ("weather", {"city": "Paris"}),
        ("weather", {"city": "Oslo"}),
    ]
    assert last.additional_kwargs["total_tokens"] > 0


async def test_a_body_that_is_neither_a_stream_nor_an_answer_says_what_came_back(
    stream_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(JSONResponse({"status": "queued"}))
    with pytest.raises(stream_chat.error(core.ResponseFormatError), match="application/json"):
        await stream_chat.ask(stream_chat.model())
    fake_server.enqueue(
        JSONResponse("<html>Bad gateway</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(stream_chat.error(core.ResponseFormatError)) as caught:
        await stream_chat.ask(stream_chat.model())
    assert not isinstance(caught.value, core.StreamInterruptedError)  # not "the network broke"


# ---------------------------------------------------------------------- 4: where it went


async def test_a_refused_connection_names_host_port_and_path(whole_chat: ChatCase) -> None:
    llm = whole_chat.model(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(whole_chat.error(core.APIConnectionError)) as caught:
        await whole_chat.ask(llm)
    assert "POST http://127.0.0.1:9/v1/chat/completions" in str(caught.value)
    assert "base_url" in str(caught.value)


async def test_a_404_on_the_path_is_told_from_a_missing_model(
    whole_chat: ChatCase, fake_server: FakeOpenAIServer
) -> None:
    # A base URL without /v1: the server has no such path and answers a plain-text 404.
    fake_server.enqueue(
        JSONResponse("404 page not found", status=404, headers={"content-type": "text/plain"})
    )
    with pytest.raises(whole_chat.error(core.NotFoundError)) as caught:
        await whole_chat.ask(whole_chat.model())
    text = str(caught.value)
    assert f"{fake_server.base_url}/chat/completions" in text
    assert "check base_url" in text and "/v1" in text
    # A model the server does not know: the model's error, without the base-URL hint.
    fake_server.enqueue(error(404, "model_not_found", "The model 'nope' does not exist"))
    with pytest.raises(whole_chat.error(core.NotFoundError)) as missing:
        await whole_chat.ask(whole_chat.model())
    assert "does not exist" in str(missing.value) and "check base_url" not in str(missing.value)


# ---------------------------------------------------------------------- 5: one documented shape


async def test_the_rate_limit_state_is_the_documented_dict_everywhere(
    fake_server: FakeOpenAIServer,
) -> None:
    headers = {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "58",
        "x-ratelimit-reset": f"{time.time() + 30:.3f}",
    }
    fake_server.default = lambda r: JSONResponse(chat_completion("ok").body, headers=headers)
    common: dict[str, Any] = {"api_key": KEY, "base_url": fake_server.base_url}
    lc_state = ChatRuncrate(model=MODEL, **common).invoke("hi").response_metadata["rate_limit"]
    li_state = RuncrateLLM(model=MODEL, **common).chat(user("hi")).additional_kwargs["rate_limit"]
    settings = core.ClientSettings.resolve(**common)
    found = core.rate_limit_state(settings)
    # And an error's: the same dict, from the failed answer's headers.
    fake_server.enqueue(error(400, "bad_request", "no", headers))
    with pytest.raises(core.BadRequestError) as lc_error:
        ChatRuncrate(model=MODEL, **common).invoke("hi")
    fake_server.enqueue(error(400, "bad_request", "no", headers))
    with pytest.raises(core.BadRequestError) as li_error:
        RuncrateLLM(model=MODEL, **common).chat(user("hi"))
    states = [lc_state, li_state, found, lc_error.value.rate_limit, li_error.value.rate_limit]
    for state in states:
        assert isinstance(state, dict)
        assert set(state) == {"limit", "remaining", "reset_at", "retry_after", "observed_at"}
        assert (state["limit"], state["remaining"]) == (60, 58)
        json.dumps(state)  # message metadata must stay JSON-friendly


# ---------------------------------------------------------------------- 6: a saved timeout


def test_langchain_serialisation_keeps_an_httpx2_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    split = httpx2.Timeout(30.0, connect=2.0)
    llm = ChatRuncrate(model=MODEL, api_key=KEY, timeout=split)
    saved = dumpd(llm)
    assert saved["kwargs"]["timeout"] == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert KEY not in dumps(llm)
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)
    loaded = load(
        saved,
        valid_namespaces=["langchain_runcrate"],
        allowed_objects=[ChatRuncrate],
        secrets_from_env=True,
    )
    assert isinstance(loaded, ChatRuncrate)
    assert loaded.timeout == split and loaded.engine.clients.settings.timeout == split


# ---------------------------------------------------------------------- 7: ChatOpenAI's names


def test_chat_openai_names_for_the_key_and_url_are_aliases_and_keep_the_key_secret(
    fake_server: FakeOpenAIServer,
) -> None:
    llm = ChatRuncrate(
        model=MODEL, openai_api_key=KEY, openai_api_base=fake_server.base_url, request_timeout=7.0
    )
    assert llm.api_key is not None and llm.api_key.get_secret_value() == KEY
    assert llm.base_url == fake_server.base_url and llm.timeout == 7.0
    assert llm.invoke("hi").content == "hi"
    sent = fake_server.last_request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in json.dumps(sent.body)  # never in the JSON body
    for shown in (repr(llm), str(llm), dumps(llm), json.dumps(llm._identifying_params)):
        assert KEY not in shown


@pytest.mark.parametrize(
    "name", ["api_token", "access_token", "auth_header", "client_secret", "password", "x_api_key"]
)
def test_a_secret_looking_name_is_never_sent(fake_server: FakeOpenAIServer, name: str) -> None:
    with pytest.raises(ValueError, match="looks like a secret"):
        ChatRuncrate(model=MODEL, api_key=KEY, base_url=fake_server.base_url, **{name: KEY})
    llm = ChatRuncrate(model=MODEL, api_key=KEY, base_url=fake_server.base_url)
    with pytest.raises(ValueError, match="looks like a secret"):
        llm.invoke("hi", **{name: KEY})
    with pytest.raises(ValueError, match="looks like a secret"):
        ChatRuncrate(model=MODEL, api_key=KEY, model_kwargs={name: KEY})
    with pytest.raises(ValueError, match="looks like a secret"):
        RuncrateLLM(model=MODEL, api_key=KEY, additional_kwargs={name: KEY})
    assert fake_server.request_count == 0


def _anchor_fields() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "anchor_fields.json").read_text())
    return data


@pytest.mark.parametrize(
    "name",
    sorted({n for f, aliases in _anchor_fields()["ChatOpenAI"].items() for n in (f, *aliases)}),
)
def test_every_chat_openai_name_means_the_same_or_is_refused_with_the_reason(
    name: str, recwarn: pytest.WarningsRecorder
) -> None:
    """Walks ``ChatOpenAI``'s constructor names (``tests/fixtures/anchor_fields.json``, read
    from langchain-openai): each is a ChatRuncrate field or alias, a request parameter sent as
    given, or refused with the reason; none is silently sent in the body."""
    value: Any = {
        "timeout": 5.0,
        "request_timeout": 5.0,
        "max_retries": 1,
        "n": 1,
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 5,
        "max_completion_tokens": 5,
        "seed": 1,
        "logprobs": True,
        "top_logprobs": 1,
        "stop": ["x"],
        "stop_sequences": ["x"],
        "streaming": True,
        "stream_usage": False,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "model_kwargs": {},
        "extra_body": {},
        "default_headers": {},
        "verbose": False,
        "tags": [],
        "metadata": {},
        "name": "n",
        "disable_streaming": False,
        "output_version": "v0",
        "base_url": "http://x/v1",
        "openai_api_base": "http://x/v1",
        "api_key": KEY,
        "openai_api_key": KEY,
        "logit_bias": {"1": 1},
        "reasoning_effort": "low",
        "reasoning": {},
        "verbosity": "low",
        "service_tier": "auto",
        "store": False,
        "model": MODEL,
        "model_name": MODEL,
    }.get(name)
    kwargs = {"model": MODEL, "api_key": "rc_live_other", name: value}
    try:
        llm = ChatRuncrate(**kwargs)
    except ValueError as exc:
        assert "no meaning for ChatRuncrate" in str(exc) or "ChatOpenAI setting" in str(exc), exc
        return
    if name in llm.model_kwargs:  # a request parameter: sent in the body as given
        assert name in {
            "logit_bias",
            "reasoning_effort",
            "reasoning",
            "verbosity",
            "service_tier",
            "store",
        }
    elif value is not None:
        fields = type(llm).model_fields
        target = next(
            (
                f
                for f, info in fields.items()
                if f == name
                or (
                    info.validation_alias is not None
                    and name in getattr(info.validation_alias, "choices", [info.validation_alias])
                )
            ),
            None,
        )
        assert target is not None, f"{name} was accepted but set nothing"
    assert not [w for w in recwarn.list if "not a ChatRuncrate parameter" in str(w.message)]


@pytest.mark.parametrize(
    "name",
    sorted({n for f, aliases in _anchor_fields()["OpenAILike"].items() for n in (f, *aliases)}),
)
def test_every_openai_like_name_means_the_same_or_is_refused_with_the_reason(
    name: str, fake_server: FakeOpenAIServer
) -> None:
    """Walks ``OpenAILike``'s constructor names (``tests/fixtures/anchor_fields.json``, read
    from llama-index-llms-openai-like): each is a RuncrateLLM field or alias, a request
    parameter sent as given, or refused with the reason; none lands in the body unasked."""
    value: Any = {
        "additional_kwargs": {"seed": 7},
        "api_base": fake_server.base_url,
        "api_key": KEY,
        "context_window": 4096,
        "default_headers": {"X-Team": "a"},
        "is_chat_model": True,
        "is_function_calling_model": True,
        "logprobs": True,
        "max_retries": 1,
        "max_tokens": 5,
        "modalities": ["text"],
        "model": MODEL,
        "pydantic_program_mode": "default",
        "reasoning_effort": "low",
        "reuse_client": False,
        "should_use_structured_outputs": True,
        "strict": True,
        "system_prompt": "Be brief.",
        "temperature": 0.5,
        "timeout": 5.0,
        "top_logprobs": 1,
    }.get(name)
    kwargs: dict[str, Any] = {"model": MODEL, "api_key": KEY, "base_url": fake_server.base_url}
    kwargs.pop("base_url" if name == "api_base" else "", None)
    kwargs[name] = value
    try:
        llm = RuncrateLLM(**kwargs)
    except ValueError as exc:
        assert "no meaning for RuncrateLLM" in str(exc), exc
        return
    llm.chat([ChatMessage(role="user", content="hi")])
    body = fake_server.last_request.body
    same_name = {"max_tokens", "temperature", "logprobs", "top_logprobs", "model"}
    if name in same_name | {"modalities", "reasoning_effort"}:  # request parameters, as given
        assert body[name] == value
    elif name == "additional_kwargs":
        assert body["seed"] == 7
    else:  # a setting of the client, never a request field
        assert name not in body
    headers = fake_server.last_request.headers
    assert headers["authorization"] == f"Bearer {KEY}"
    if name == "api_base":
        assert llm.base_url == fake_server.base_url
    if name == "default_headers":
        assert headers["x-team"] == "a"
