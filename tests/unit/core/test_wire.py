"""Request bodies, answer parsing and stream folding on plain dicts (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from runcrate_integrations import errors
from runcrate_integrations.chat.answer import (
    StreamFold,
    parse_arguments,
    parse_completion,
    parse_usage,
)
from runcrate_integrations.chat.request import build_chat_body, normalize_tool_choice
from tests.helpers import chunk, completion_body, text_chunks, tool_call

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_body_drops_none_and_keeps_order_free_fields() -> None:
    body = build_chat_body("m", USER, {"temperature": 0.2, "top_p": None, "stop": ["\n"]})
    assert body == {"model": "m", "messages": USER, "temperature": 0.2, "stop": ["\n"]}


def test_stream_body_asks_for_usage_unless_disabled() -> None:
    assert build_chat_body("m", USER, stream=True)["stream_options"] == {"include_usage": True}
    body = build_chat_body("m", USER, stream=True, stream_usage=False)
    assert body["stream"] is True and "stream_options" not in body


def test_extra_body_merged_last() -> None:
    # extra_body's temperature collides with the parameter of the same name: extra_body wins.
    body = build_chat_body(
        "m", USER, {"temperature": 1, "top_p": 0.9}, extra_body={"temperature": 0.5, "top_k": 40}
    )
    assert body == {"model": "m", "messages": USER, "temperature": 0.5, "top_p": 0.9, "top_k": 40}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"temperature": 2.5}, "temperature must be a number between 0 and 2"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p must be a number between 0 and 1"),
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"max_tokens": True}, "max_tokens"),
        ({"frequency_penalty": 3}, "frequency_penalty must be a number between -2 and 2"),
        ({"presence_penalty": -2.5}, "presence_penalty"),
        ({"n": 0}, "n must be"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"stop": [1]}, "stop must be a string or a list of strings"),
    ],
)
def test_out_of_range_params_rejected(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_chat_body("m", USER, params)


def test_bad_messages_and_model_rejected() -> None:
    with pytest.raises(ValueError, match="messages must not be empty"):
        build_chat_body("m", [])
    with pytest.raises(ValueError, match="unknown role 'wizard'"):
        build_chat_body("m", [{"role": "wizard", "content": "x"}])
    with pytest.raises(ValueError, match="model must be a non-empty"):
        build_chat_body("", USER)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        (True, "required"),
        (None, None),
        (False, None),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_spellings(choice: object, expected: object) -> None:
    assert normalize_tool_choice(choice, ["get_weather"]) == expected


def test_tool_choice_errors() -> None:
    with pytest.raises(ValueError, match=r"bound: get_weather"):
        normalize_tool_choice("get_time", ["get_weather"])
    with pytest.raises(ValueError, match="not a bound tool"):
        normalize_tool_choice({"type": "function", "function": {"name": "x"}}, ["get_weather"])
    with pytest.raises(ValueError, match="no tools are bound"):
        build_chat_body("m", USER, tool_choice="required")


def test_tools_in_body_and_parallel_dropped_without_tools() -> None:
    body = build_chat_body(
        "m", USER, {"parallel_tool_calls": False}, tools=[TOOL], tool_choice="get_weather"
    )
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in build_chat_body("m", USER, {"parallel_tool_calls": False})


def test_unserialisable_tool_schema_rejected() -> None:
    bad = {"type": "function", "function": {"name": "f", "parameters": {"default": object()}}}
    with pytest.raises(ValueError, match="tool schema is not JSON-serialisable"):
        build_chat_body("m", USER, tools=[bad])


def test_parse_completion_full() -> None:
    data = completion_body(
        "Hi",
        usage={
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 6},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
        reasoning_content="thinking",
    )
    c = parse_completion(data)
    assert (c.id, c.model, c.system_fingerprint) == (
        "chatcmpl-123",
        "deepseek/deepseek-v3.2",
        "fp_rc1",
    )
    assert c.choice.content == "Hi"
    assert c.choice.reasoning_content == "thinking"
    assert c.choice.finish_reason == "stop"
    assert c.usage is not None
    assert (c.usage.input_tokens, c.usage.output_tokens, c.usage.total_tokens) == (10, 4, 14)
    assert (c.usage.cached_input_tokens, c.usage.reasoning_output_tokens) == (6, 2)


def test_parse_tool_calls_good_and_broken() -> None:
    data = completion_body(
        None,
        tool_calls=[
            tool_call("a", {"x": 1}, "c1"),
            tool_call("b", '{"x": ', "c2"),
            tool_call("c", "", "c3"),
            tool_call("d", "[1]", "c4"),
        ],
    )
    calls = parse_completion(data).choice.tool_calls
    assert (calls[0].name, calls[0].args, calls[0].error) == ("a", {"x": 1}, None)
    assert calls[1].args is None and calls[1].error is not None
    assert "not valid JSON" in calls[1].error and calls[1].arguments == '{"x": '
    assert calls[2].args == {}
    assert calls[3].args is None and calls[3].error == "arguments must be a JSON object, got list"


def test_parse_completion_without_choices_raises() -> None:
    with pytest.raises(errors.ResponseFormatError, match="no choices"):
        parse_completion({"id": "x", "choices": []})
    with pytest.raises(errors.ResponseFormatError, match="without a 'message'"):
        parse_completion({"choices": [{"index": 0}]})


def test_parse_usage_tolerant() -> None:
    assert parse_usage(None) is None
    u = parse_usage({"prompt_tokens": 3})
    assert u is not None and (u.input_tokens, u.output_tokens, u.total_tokens) == (3, 0, 3)
    assert parse_arguments("  ") == ({}, None)


def test_stream_folds_text_and_usage() -> None:
    acc = StreamFold()
    deltas = [d for c in text_chunks(["Hel", "lo"]) for d in acc.add(c)]
    assert [d.content for d in deltas] == ["", "Hel", "lo", None]
    assert deltas[-1].finish_reason == "stop"
    done = acc.completion()
    assert done.choice.content == "Hello"
    assert done.usage is not None and done.usage.total_tokens == 17
    assert (done.id, done.model, done.system_fingerprint) == (
        "chatcmpl-123",
        "deepseek/deepseek-v3.2",
        "fp_rc1",
    )


def test_stream_merges_tool_call_fragments_per_index() -> None:
    acc = StreamFold()
    acc.add(
        chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ],
            }
        )
    )
    acc.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}))
    acc.add(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "g", "arguments": "{}"},
                    }
                ]
            }
        )
    )
    d = acc.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    assert d[0].tool_calls[0].arguments == "1}" and d[0].tool_calls[0].id is None
    acc.add(chunk({}, finish_reason="tool_calls"))
    calls = acc.completion().choice.tool_calls
    assert [(c.id, c.name, c.args) for c in calls] == [("c1", "f", {"a": 1}), ("c2", "g", {})]


def _fold_calls(*tool_call_deltas: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Fold one chunk per list of tool-call deltas; (each delta's (index, id, name, arguments),
    the finished answer's (id, name, args) per call)."""
    fold = StreamFold()
    seen = []
    for deltas in tool_call_deltas:
        for d in fold.add(chunk({"tool_calls": deltas})):
            seen += [(t.index, t.id, t.name, t.arguments) for t in d.tool_calls]
    fold.add(chunk({}, finish_reason="tool_calls"))
    calls = [(c.id, c.name, c.args) for c in fold.completion().choice.tool_calls]
    return seen, calls


def _call(
    call_id: str | None, name: str | None, arguments: str, index: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"function": {"arguments": arguments}}
    if name is not None:
        out["type"] = "function"
        out["function"]["name"] = name
    if call_id is not None:
        out["id"] = call_id
    if index is not None:
        out["index"] = index
    return out


def test_stream_tool_calls_without_index_are_told_apart_by_id() -> None:
    # Each call whole in its own chunk, id and no index (both at position 0 of their chunk).
    seen, calls = _fold_calls(
        [_call("c1", "weather", '{"city": "Paris"}')], [_call("c2", "weather", '{"city": "Oslo"}')]
    )
    assert seen == [
        (0, "c1", "weather", '{"city": "Paris"}'),
        (1, "c2", "weather", '{"city": "Oslo"}'),
    ]
    assert calls == [("c1", "weather", {"city": "Paris"}), ("c2", "weather", {"city": "Oslo"})]


def test_stream_tool_calls_index_first_then_id_only() -> None:
    # The head of each call has an index; what follows names its call by id alone (repeating
    # the name), and the last call comes with an id only.
    seen, calls = _fold_calls(
        [_call("c1", "weather", "", index=0)],
        [_call("c2", "time", "", index=1)],
        [_call("c1", "weather", '{"city": ')],
        [_call("c2", None, '{"tz": "CET"}')],
        [_call("c1", None, '"Paris"}')],
        [_call("c3", "weather", '{"city": "Oslo"}')],
    )
    assert seen == [
        (0, "c1", "weather", ""),
        (1, "c2", "time", ""),
        (0, None, None, '{"city": '),  # id and name are reported once per call
        (1, None, None, '{"tz": "CET"}'),
        (0, None, None, '"Paris"}'),
        (2, "c3", "weather", '{"city": "Oslo"}'),
    ]
    assert calls == [
        ("c1", "weather", {"city": "Paris"}),
        ("c2", "time", {"tz": "CET"}),
        ("c3", "weather", {"city": "Oslo"}),
    ]


def test_stream_tool_call_delta_with_neither_index_nor_id_continues_the_last_call() -> None:
    seen, calls = _fold_calls(
        [_call("c1", "weather", '{"city": ')],
        [_call(None, None, '"Paris"}')],
        [_call("c2", "weather", "")],
        [_call(None, None, '{"city": "Oslo"}')],
    )
    assert [index for index, *_ in seen] == [0, 0, 1, 1]
    assert calls == [("c1", "weather", {"city": "Paris"}), ("c2", "weather", {"city": "Oslo"})]


def test_stream_tool_call_numbering_follows_arrival_not_the_wire_index() -> None:
    # A server numbering from 1: the calls are still 0 and 1, so LangChain's chunks line up.
    seen, calls = _fold_calls(
        [_call("c1", "f", "{}", index=1)],
        [_call("c2", "g", "{}", index=2)],
        [_call(None, None, "", index=1)],
    )
    assert [index for index, *_ in seen] == [0, 1, 0]
    assert calls == [("c1", "f", {}), ("c2", "g", {})]


def test_stream_reasoning_content() -> None:
    acc = StreamFold()
    acc.add(chunk({"reasoning_content": "think "}))
    acc.add(chunk({"reasoning_content": "more"}))
    acc.add(chunk({"content": "answer"}, finish_reason="stop"))
    c = acc.completion().choice
    assert (c.reasoning_content, c.content) == ("think more", "answer")


def test_unfinished_stream_raises() -> None:
    acc = StreamFold()
    acc.add(chunk({"content": "partial"}))
    assert not acc.finished
    with pytest.raises(errors.StreamInterruptedError, match="no finish_reason"):
        acc.completion()
    with pytest.raises(errors.StreamInterruptedError):
        StreamFold().completion()


def test_stream_logprobs_merged() -> None:
    acc = StreamFold()
    c1 = chunk({"content": "a"})
    c1["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.1}]}
    c2 = chunk({"content": "b"}, finish_reason="stop")
    c2["choices"][0]["logprobs"] = {"content": [{"token": "b", "logprob": -0.2}]}
    acc.add(c1)
    acc.add(c2)
    assert acc.completion().choice.logprobs == {
        "content": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -0.2}]
    }
