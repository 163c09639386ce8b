"""The issue's parity suite: the same per-call options give the same HTTP request (body and
headers) from ``ChatRuncrate`` and ``RuncrateLLM``, in every mode (sync, async, stream, async
stream), and the same mistakes fail the same way, before anything is sent.

Each test builds both adapters over a recording transport, makes the same call with each and
compares what went on the wire: with each other (parity) and with the body the option must
produce (so that both being wrong the same way fails too).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.parity.conftest import MODEL, MODES, PROMPT, STREAMING, Adapter, Mode

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORCED = {"type": "function", "function": {"name": "get_weather"}}
SECONDS = 3.0


@dataclass(frozen=True)
class Case:
    """Per-call ``kwargs`` and what they must put on the wire."""

    id: str
    kwargs: dict[str, Any]
    body: dict[str, Any] = field(default_factory=dict)  # fields added to the base body
    headers: dict[str, str] = field(default_factory=dict)  # headers that must be sent
    modes: tuple[Mode, ...] = MODES

    def __str__(self) -> str:
        return self.id


def _tools(choice: Any, sent: Any) -> Case:
    return Case(
        f"tool_choice={'dict' if isinstance(choice, dict) else repr(choice)}",
        {"tools": [TOOL], "tool_choice": choice},
        {"tools": [TOOL], "tool_choice": sent},
    )


CASES: list[Case] = [
    # extra_headers are HTTP headers, never body fields.
    Case(
        "extra_headers",
        {"extra_headers": {"X-Request-Tag": "tag-1", "X-Tenant": "acme"}},
        headers={"x-request-tag": "tag-1", "x-tenant": "acme"},
    ),
    Case(
        "extra_body",
        {"extra_body": {"chat_template_kwargs": {"thinking": True}, "top_k": 20}},
        {"chat_template_kwargs": {"thinking": True}, "top_k": 20},
    ),
    Case("stop=str", {"stop": "END"}, {"stop": "END"}),
    Case("stop=list", {"stop": ["END", "STOP"]}, {"stop": ["END", "STOP"]}),
    Case("stop=[]", {"stop": []}),  # no stop sequences: no "stop" key at all
    Case("logprobs", {"logprobs": True}, {"logprobs": True}),
    # top_logprobs implies logprobs: true (the API rejects it alone).
    Case("top_logprobs", {"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
    Case("n=2", {"n": 2}, {"n": 2}, modes=("invoke", "ainvoke")),
    Case("seed", {"seed": 1234}, {"seed": 1234}),
    Case(
        "response_format",
        {"response_format": {"type": "json_object"}},
        {"response_format": {"type": "json_object"}},
    ),
    Case(
        "sampling",
        {"temperature": 0.2, "top_p": 0.5, "max_tokens": 5},
        {"temperature": 0.2, "top_p": 0.5, "max_tokens": 5},
    ),
    Case("tools", {"tools": [TOOL]}, {"tools": [TOOL]}),
    _tools("auto", "auto"),
    _tools("none", "none"),
    _tools("required", "required"),
    _tools("any", "required"),
    _tools(True, "required"),
    _tools("get_weather", FORCED),
    _tools(FORCED, FORCED),
    Case(
        "parallel_tool_calls+tools",
        {"tools": [TOOL], "parallel_tool_calls": False},
        {"tools": [TOOL], "parallel_tool_calls": False},
    ),
    # Without tools the server would reject parallel_tool_calls: it is dropped.
    Case("parallel_tool_calls-no-tools", {"parallel_tool_calls": False}),
    # Parameters the server knows and this package does not: sent as given.
    Case(
        "unknown-params",
        {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1},
        {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1},
    ),
    Case("model-override", {"model": "other/model-7b"}, {"model": "other/model-7b"}),
    # A per-call timeout changes how the request is sent (checked on the transport), not
    # the body; openai also announces it in x-stainless-read-timeout.
    Case("timeout", {"timeout": SECONDS}, headers={"x-stainless-read-timeout": str(SECONDS)}),
    # Per call, both accept stream_usage=False: the stream then asks for no usage chunk.
    Case("stream_usage=False", {"stream_usage": False}),
]


def expected_body(case: Case, mode: Mode) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if mode in STREAMING:
        body["stream"] = True
        if case.kwargs.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
    body.update(case.body)
    return body


PARAMS = [pytest.param(case, mode, id=f"{case.id}-{mode}") for case in CASES for mode in case.modes]


@pytest.mark.parametrize(("case", "mode"), PARAMS)
async def test_same_options_send_the_same_request(
    pair: tuple[Adapter, Adapter], case: Case, mode: Mode
) -> None:
    lc, li = pair
    for adapter in pair:
        await adapter.call(adapter.model(), mode, **copy.deepcopy(case.kwargs))
    lc_sent, li_sent = lc.sent(), li.sent()

    assert lc_sent.body == li_sent.body, "the adapters sent different bodies"
    assert lc_sent.comparable_headers == li_sent.comparable_headers, (
        "the adapters sent different headers"
    )
    assert lc_sent.timeout == li_sent.timeout, "the adapters sent with different timeouts"

    assert lc_sent.body == expected_body(case, mode)
    for name, value in case.headers.items():
        assert lc_sent.headers.get(name) == value, name
    if "extra_headers" in case.kwargs:
        assert "extra_headers" not in lc_sent.body
    if "timeout" in case.kwargs:
        assert lc_sent.timeout == dict.fromkeys(("connect", "read", "write", "pool"), SECONDS)


@pytest.mark.parametrize("mode", MODES)
async def test_default_headers_and_constructor_options_match(
    pair: tuple[Adapter, Adapter], mode: Mode
) -> None:
    """Constructor options both adapters have give the same request too."""
    fields = {
        "temperature": 0.7,
        "max_tokens": 64,
        "seed": 5,
        "timeout": 9.0,
        "default_headers": {"X-App": "parity"},
    }
    for adapter in pair:
        await adapter.call(adapter.model(**fields), mode)
    lc, li = (adapter.sent() for adapter in pair)
    assert lc.body == li.body
    assert lc.comparable_headers == li.comparable_headers
    assert lc.timeout == li.timeout
    assert {k: lc.body[k] for k in ("temperature", "max_tokens", "seed")} == {
        "temperature": 0.7,
        "max_tokens": 64,
        "seed": 5,
    }
    assert lc.headers["x-app"] == "parity"
    assert lc.timeout["read"] == 9.0


# ---------------------------------------------------------------------- framework conventions


async def test_stream_usage_is_one_setting_of_both_chat_classes(
    pair: tuple[Adapter, Adapter],
) -> None:
    """``stream_usage`` comes from the one spec: on by default in both, and off in both the
    same way (per call too, covered above)."""
    for adapter in pair:
        await adapter.call(adapter.model(stream_usage=False), "stream")
        assert "stream_options" not in adapter.sent().body
    for adapter in pair:
        adapter.recorder.requests.clear()
        await adapter.call(adapter.model(), "stream")
        assert adapter.sent().body["stream_options"] == {"include_usage": True}


# ---------------------------------------------------------------------- mistakes, before sending


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_n_above_one_with_a_stream_fails_before_sending(
    pair: tuple[Adapter, Adapter], mode: Mode
) -> None:
    for adapter in pair:
        with pytest.raises(ValueError, match="n > 1"):
            await adapter.call(adapter.model(), mode, n=2)
        assert adapter.count == 0, f"{adapter} sent a request"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"tools": [TOOL], "tool_choice": "get_wether"}, id="unknown-name"),
        pytest.param(
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            id="unknown-name-dict",
        ),
        pytest.param({"tool_choice": "required"}, id="required-without-tools"),
    ],
)
async def test_bad_tool_choice_fails_before_sending(
    pair: tuple[Adapter, Adapter], mode: Mode, kwargs: dict[str, Any]
) -> None:
    for adapter in pair:
        with pytest.raises(ValueError, match="tool_choice"):
            await adapter.call(adapter.model(), mode, **copy.deepcopy(kwargs))
        assert adapter.count == 0, f"{adapter} sent a request"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("typo", "value", "intended"),
    [("temprature", 0.2, "temperature"), ("max_token", 5, "max_tokens"), ("top-p", 0.5, "top_p")],
)
async def test_near_miss_names_the_intended_option_before_sending(
    pair: tuple[Adapter, Adapter], mode: Mode, typo: str, value: Any, intended: str
) -> None:
    for adapter in pair:
        with pytest.raises(ValueError, match=f"did you mean '{intended}'") as info:
            await adapter.call(adapter.model(), mode, **{typo: value})
        assert repr(typo) in str(info.value)
        assert adapter.count == 0, f"{adapter} sent a request"


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"temperature": 3}, id="temperature=3"),
        pytest.param({"top_p": 1.5}, id="top_p=1.5"),
        pytest.param({"max_tokens": 0}, id="max_tokens=0"),
        pytest.param({"frequency_penalty": -2.5}, id="frequency_penalty=-2.5"),
        pytest.param({"presence_penalty": 2.5}, id="presence_penalty=2.5"),
        pytest.param({"top_logprobs": 21}, id="top_logprobs=21"),
        pytest.param({"model": ""}, id="model=''"),
        pytest.param({"model": "   "}, id="model=blank"),
    ],
)
def test_constructor_rejects_the_same_values(
    pair: tuple[Adapter, Adapter], fields: dict[str, Any]
) -> None:
    for adapter in pair:
        with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError too
            adapter.model(**fields)
        assert adapter.count == 0


@pytest.mark.parametrize("mode", MODES)
async def test_range_errors_per_call_match(pair: tuple[Adapter, Adapter], mode: Mode) -> None:
    for adapter in pair:
        with pytest.raises(ValueError, match="temperature"):
            await adapter.call(adapter.model(), mode, temperature=3)
        assert adapter.count == 0


@pytest.mark.parametrize("mode", MODES)
async def test_empty_stop_per_call_overrides_constructor_stop(
    pair: tuple[Adapter, Adapter], mode: Mode
) -> None:
    for adapter in pair:
        llm = adapter.model(stop=["x"])
        await adapter.call(llm, mode)
        await adapter.call(llm, mode, stop=[])
    lc_default, lc_override = pair[0].bodies
    li_default, li_override = pair[1].bodies
    assert lc_default["stop"] == li_default["stop"] == ["x"]
    assert "stop" not in lc_override
    assert "stop" not in li_override
    assert lc_override == li_override
