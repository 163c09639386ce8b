"""Parameters, validation, clients, the API key's secrecy and the core's typed errors."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import httpx2
import pytest
from llama_index.core.llms import ChatMessage
from pydantic import ValidationError

from llama_index_runcrate import RuncrateLLM
from runcrate_integrations import (
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    MissingAPIKeyError,
    RateLimitError,
)
from runcrate_integrations.net.clients import user_agent
from tests.helpers import Recorder, completion_body, error, sse, text_chunks

from .conftest import KEY, MODEL, MakeLLM

HI = [ChatMessage(role="user", content="hi")]
WIRE_HI = [{"role": "user", "content": "hi"}]


# ---------------------------------------------------------------------------- parameters


def test_every_parameter_reaches_the_body(make_llm: MakeLLM) -> None:
    llm, rec = make_llm(
        [completion_body()],
        temperature=0.0,
        top_p=1.0,
        max_tokens=1,
        frequency_penalty=-2.0,
        presence_penalty=2.0,
        stop=["END"],
        seed=3,
        additional_kwargs={"reasoning_effort": "high", "top_k": 40},
    )
    llm.chat(HI)
    assert rec.body == {
        "model": MODEL,
        "messages": WIRE_HI,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 1,
        "frequency_penalty": -2.0,
        "presence_penalty": 2.0,
        "stop": ["END"],
        "seed": 3,
        "reasoning_effort": "high",
        "top_k": 40,
    }


def test_per_call_kwargs_override_and_extend(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body()], temperature=0.5, stop="x")
    llm.chat(
        HI,
        temperature=1.5,
        stop=None,
        user="u-1",
        extra_body={"min_p": 0.1},
        extra_headers={"X-Trace": "t1"},
    )
    assert rec.body == {
        "model": MODEL,
        "messages": WIRE_HI,
        "temperature": 1.5,
        "user": "u-1",
        "min_p": 0.1,
    }
    assert rec.requests[0].headers["x-trace"] == "t1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.1),
        ("temperature", -0.1),
        ("top_p", 1.01),
        ("max_tokens", 0),
        ("frequency_penalty", -2.5),
        ("presence_penalty", 2.01),
        ("top_logprobs", 21),
        ("timeout", 0),
        ("max_retries", -1),
        ("model", ""),
        ("stop", 5),
        ("seed", "x"),
    ],
)
def test_out_of_range_fields_fail_at_construction(
    make_llm: MakeLLM, field: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=field):  # a ValidationError, or the core's own check
        make_llm(**{field: value})


def test_assignment_is_validated_too(make_llm: MakeLLM) -> None:
    llm, _ = make_llm()
    with pytest.raises(ValidationError, match="temperature"):
        llm.temperature = 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 3}, "temperature must be a number between 0 and 2"),
        ({"top_p": -1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"presence_penalty": 9}, "presence_penalty"),
        ({"stop": 5}, "stop"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_per_call_kwargs_are_checked_before_any_request(
    make_llm: MakeLLM, kwargs: Any, match: str
) -> None:
    llm, rec = make_llm()
    with pytest.raises(ValueError, match=match):
        llm.chat(HI, **kwargs)
    with pytest.raises(ValueError, match=match):
        llm.stream_chat(HI, **kwargs)
    assert rec.requests == []


async def test_async_per_call_kwargs_are_checked(make_llm: MakeLLM) -> None:
    llm, rec = make_llm()
    with pytest.raises(ValueError, match="temperature"):
        await llm.achat(HI, temperature=2.5)
    with pytest.raises(ValueError, match="temperature"):
        await llm.astream_chat(HI, temperature=2.5)
    assert rec.requests == []


def test_additional_kwargs_are_checked_at_construction_and_assignment(make_llm: MakeLLM) -> None:
    with pytest.raises(ValueError, match="temperature"):
        make_llm(additional_kwargs={"temperature": 9})
    llm, rec = make_llm([completion_body()])
    with pytest.raises(ValueError, match="top_p"):
        llm.additional_kwargs = {"top_p": 2}
    assert llm.additional_kwargs == {}  # the rejected value was rolled back
    llm.chat(HI)
    assert rec.body == {"model": MODEL, "messages": WIRE_HI}


def test_unknown_role_is_refused_before_any_request(make_llm: MakeLLM) -> None:
    llm, rec = make_llm()
    with pytest.raises(ValueError, match="unknown role 'function'"):
        llm.chat([ChatMessage(role="function", content="x")])
    assert rec.requests == []


def test_misspelled_field_is_an_error_not_ignored() -> None:
    with pytest.raises(ValidationError, match="temprature"):
        RuncrateLLM(model=MODEL, api_key=KEY, temprature=0.1)


def test_changed_fields_apply_to_later_calls(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(), completion_body()])
    llm.chat(HI)
    llm.temperature = 0.7
    llm.chat(HI)
    assert [b.get("temperature") for b in rec.bodies] == [None, 0.7]


# ---------------------------------------------------------------------------- clients


def test_client_settings_reach_the_openai_client(make_llm: MakeLLM) -> None:
    llm, rec = make_llm(
        [completion_body()],
        timeout=5.0,
        max_retries=0,
        default_headers={"X-Team": "rag"},
        base_url="http://proxy.local/v1",
    )
    client = llm.client
    assert client is llm.client  # cached, not rebuilt per call
    assert (client.timeout, client.max_retries) == (5.0, 0)
    llm.chat(HI)
    request = rec.requests[0]
    assert str(request.url) == "http://proxy.local/v1/chat/completions"
    assert request.headers["x-team"] == "rag"
    assert request.headers["user-agent"] == user_agent()
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_changing_client_fields_rebuilds_the_client(make_llm: MakeLLM) -> None:
    llm, _ = make_llm(timeout=5.0)
    first = llm.client
    llm.timeout = 9.0
    assert llm.client is not first and llm.client.timeout == 9.0


def test_api_base_alias_and_env_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = RuncrateLLM(model=MODEL, api_base="http://a.local/v1")
    assert llm.engine.clients.settings.base_url == "http://a.local/v1"
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://b.local/v1")
    assert RuncrateLLM(model=MODEL).engine.clients.settings.base_url == "http://b.local/v1"


def test_pooled_clients_without_custom_http_client() -> None:
    a = RuncrateLLM(model=MODEL, api_key=KEY)
    b = RuncrateLLM(model="other/model", api_key=KEY)
    assert a.client is b.client


async def test_async_custom_http_client(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body("async")])
    assert (await llm.achat(HI)).message.content == "async"
    assert llm.async_client is llm.async_client
    assert len(rec.requests) == 1


# ---------------------------------------------------------------------------- the key


def test_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_from_env")
    rec = Recorder([completion_body()])
    RuncrateLLM(model=MODEL, http_client=rec.client()).chat(HI)
    assert rec.requests[0].headers["authorization"] == "Bearer rc_live_from_env"


def test_missing_key_fails_at_construction() -> None:
    with pytest.raises(MissingAPIKeyError, match="RUNCRATE_API_KEY"):
        RuncrateLLM(model=MODEL)


def test_key_never_in_repr_serialisation_payload_or_logs(
    make_llm: MakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm, _ = make_llm([completion_body(), sse(text_chunks(["a"]))])
    llm.chat(HI)
    list(llm.stream_chat(HI))
    shown = [
        repr(llm),
        str(llm),
        str(llm.to_dict()),
        llm.to_json(),
        llm.model_dump_json(),
        str(llm.to_payload()),
        str(llm.metadata),
        caplog.text,
    ]
    for text in shown:
        assert KEY not in text
    assert "api_key" not in llm.to_dict()
    assert llm.api_key is not None and llm.api_key.get_secret_value() == KEY


def test_to_dict_round_trip_takes_the_key_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = RuncrateLLM(model=MODEL, api_key=KEY, temperature=0.2, max_tokens=10)
    data = llm.to_dict()
    assert data["class_name"] == "runcrate_llm"
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_env")
    again = RuncrateLLM.from_json(llm.to_json())
    assert (again.model, again.temperature, again.max_tokens) == (MODEL, 0.2, 10)
    assert again.engine.clients.settings.api_key.get_secret_value() == "rc_live_env"  # type: ignore[union-attr]  # set above


def test_copies_follow_updates_and_share_clients(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body()] * 3, temperature=0.1)
    llm.chat(HI)
    hotter = llm.model_copy(update={"temperature": 1.0})
    hotter.chat(HI)
    assert rec.body["temperature"] == 1.0
    deep = copy.deepcopy(llm)
    assert deep.client is llm.client  # the pool is shared, not copied
    deep.chat(HI)
    assert rec.body["temperature"] == 0.1


def test_pickle_copies_settings_and_rebuilds_clients(caplog: pytest.LogCaptureFixture) -> None:
    llm = RuncrateLLM(model=MODEL, api_key=KEY, temperature=0.2)
    assert llm.client is not None
    copy = pickle.loads(pickle.dumps(llm))
    assert (copy.model, copy.temperature) == (MODEL, 0.2)
    assert copy.client is llm.client  # the same shared pool
    assert "unpickleable" not in caplog.text


# ---------------------------------------------------------------------------- errors


def test_402_is_insufficient_credits_and_not_retried(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([error(402, "insufficient_credits", "No credits left")])
    with pytest.raises(InsufficientCreditsError, match="Add credits") as info:
        llm.chat(HI)
    assert info.value.code == "insufficient_credits"
    assert len(rec.requests) == 1


def test_401_names_the_key_variable(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([error(401, "invalid_api_key", "Invalid API key")])
    with pytest.raises(AuthenticationError, match=r"RUNCRATE_API_KEY.*rc_live_"):
        llm.complete("x")


def _retry_soon(status: int, code: str) -> httpx2.Response:
    return error(status, code, "try again", headers={"retry-after-ms": "1"})


def test_5xx_is_retried_then_succeeds(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([_retry_soon(500, "internal"), completion_body("ok")], max_retries=1)
    assert llm.chat(HI).message.content == "ok"
    assert len(rec.requests) == 2


async def test_async_retries_exhausted_raise_typed_error(make_llm: MakeLLM) -> None:
    llm, rec = make_llm(
        [_retry_soon(429, "rate_limited"), _retry_soon(429, "rate_limited")], max_retries=1
    )
    with pytest.raises(RateLimitError):
        await llm.achat(HI)
    assert len(rec.requests) == 2


def test_errors_in_streams_are_the_same_classes(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([error(500, "internal", "boom")], max_retries=0)
    with pytest.raises(InternalServerError, match="boom"):
        list(llm.stream_chat(HI))


async def test_errors_in_async_streams_are_the_same_classes(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([error(402, "insufficient_credits", "No credits")])
    with pytest.raises(InsufficientCreditsError):
        async for _ in await llm.astream_complete("x"):
            pass
