"""invoke / ainvoke / batch / abatch: the exact JSON sent and the messages returned."""

from __future__ import annotations

import json

import httpx2
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import ValidationError

from runcrate_integrations import InternalServerError
from tests.helpers import completion_body, error

from .conftest import KEY, MODEL, MakeChat

PNG = "iVBORw0KGgoAAAANSUhEUg"


def echo(request: httpx2.Request) -> httpx2.Response:
    """Answers with the upper-cased last user message (for concurrent batches)."""
    text = json.loads(request.content)["messages"][-1]["content"]
    return httpx2.Response(200, json=completion_body(text.upper()))


def test_invoke_sends_exact_body_and_parses(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body("Hello!")])
    message = llm.invoke("hi")
    assert rec.body == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert rec.requests[0].url == "https://api.runcrate.ai/v1/chat/completions"
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert isinstance(message, AIMessage)
    assert message.content == "Hello!"
    assert message.usage_metadata == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    assert message.response_metadata["model_provider"] == "runcrate"
    assert message.response_metadata["finish_reason"] == "stop"


async def test_ainvoke_sends_exact_body_and_parses(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body("Hi async")])
    message = await llm.ainvoke([SystemMessage("Be terse."), HumanMessage("hi")])
    assert rec.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "hi"},
        ],
    }
    assert message.content == "Hi async"


def test_batch(make_chat: MakeChat) -> None:
    llm, rec = make_chat([echo, echo])
    out = llm.batch(["one", "two"])
    assert [m.content for m in out] == ["ONE", "TWO"]
    assert sorted(b["messages"][0]["content"] for b in rec.bodies) == ["one", "two"]


async def test_abatch(make_chat: MakeChat) -> None:
    llm, rec = make_chat([echo, echo, echo])
    out = await llm.abatch(["a", "b", "c"])
    assert [m.content for m in out] == ["A", "B", "C"]
    assert len(rec.requests) == 3


@pytest.mark.parametrize("use_async", [False, True])
async def test_conversation_with_tools_and_images_on_the_wire(
    make_chat: MakeChat, use_async: bool
) -> None:
    llm, rec = make_chat([completion_body("A cat.")])
    call = llm.ainvoke if use_async else llm.invoke
    result = call(
        [
            HumanMessage(
                content=[
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image", "url": "https://x.test/b.png"},
                    {"type": "image", "base64": PNG, "mime_type": "image/png"},
                    # v0 block: langchain-core upgrades it before the adapter sees it
                    {"type": "image", "source_type": "url", "url": "https://x.test/c.png"},
                ],
                name="ada",
            ),
            AIMessage("", tool_calls=[{"name": "zoom", "args": {"x": 2}, "id": "call_1"}]),
            ToolMessage("zoomed", tool_call_id="call_1"),
        ]
    )
    if use_async:
        await result  # type: ignore[misc]  # a coroutine on the async path
    assert rec.body["messages"] == [
        {
            "role": "user",
            "name": "ada",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/b.png"}},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/c.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "zoom", "arguments": '{"x": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "zoomed"},
    ]


def test_unsupported_block_fails_before_any_request(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    with pytest.raises(ValueError, match="'video' is not supported"):
        llm.invoke([HumanMessage(content=[{"type": "video", "url": "https://x.test/v.mp4"}])])
    assert rec.requests == []


# Anthropic-format image blocks, as LangGraph apps mixing providers keep them in their histories.
ANTHROPIC_IMAGES = [
    {"type": "text", "text": "Compare these."},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {
        "type": "image",
        "source": {"type": "url", "url": "https://x.test/d.png"},
        "cache_control": {"type": "ephemeral"},
    },
]


@pytest.mark.parametrize("use_async", [False, True])
async def test_anthropic_format_images_go_out_as_image_url_parts(
    make_chat: MakeChat, use_async: bool
) -> None:
    llm, rec = make_chat([completion_body("Two cats.")])
    message = [HumanMessage(content=ANTHROPIC_IMAGES)]
    answer = await llm.ainvoke(message) if use_async else llm.invoke(message)
    assert answer.content == "Two cats."
    assert rec.body == {
        "model": MODEL,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/d.png"}},
                ],
            }
        ],
    }


def test_malformed_anthropic_image_fails_before_any_request(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    block = {"type": "image", "source": {"type": "base64", "data": PNG}}
    with pytest.raises(ValueError, match="Anthropic-format image block has no 'media_type'"):
        llm.invoke([HumanMessage(content=[block])])
    assert rec.requests == []


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize("use_async", [False, True])
async def test_every_parameter_is_sent(make_chat: MakeChat, use_async: bool) -> None:
    llm, rec = make_chat(
        [completion_body()],
        temperature=0.3,
        top_p=0.9,
        max_tokens=256,
        stop=["\n\n", "END"],
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        seed=7,
        n=1,
        logprobs=True,
        top_logprobs=3,
        response_format={"type": "json_object"},
        model_kwargs={"reasoning_effort": "high", "user": "u-1"},
        extra_body={"provider": {"order": ["a", "b"]}},
    )
    if use_async:
        await llm.ainvoke("hi")
    else:
        llm.invoke("hi")
    assert rec.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": ["\n\n", "END"],
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 7,
        "n": 1,
        "logprobs": True,
        "top_logprobs": 3,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "high",
        "user": "u-1",
        "provider": {"order": ["a", "b"]},
    }


def test_per_call_parameters_override_defaults(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body(), completion_body()], temperature=0.3, stop="END")
    llm.invoke(
        "hi",
        temperature=1.5,
        stop=["STOP"],
        model="qwen/qwen3-32b",
        extra_body={"top_k": 20},
        max_tokens=9,
    )
    assert rec.body == {
        "model": "qwen/qwen3-32b",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 1.5,
        "stop": ["STOP"],
        "max_tokens": 9,
        "top_k": 20,
    }
    llm.invoke("again")  # the defaults are untouched by the previous call
    assert rec.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "again"}],
        "temperature": 0.3,
        "stop": "END",
    }


def test_extra_body_merges_instance_and_call(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], extra_body={"a": 1, "b": 1})
    llm.invoke("hi", extra_body={"b": 2})
    assert (rec.body["a"], rec.body["b"]) == (1, 2)


def test_empty_stop_list_sends_no_stop(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], stop=[])
    llm.invoke("hi")
    assert "stop" not in rec.body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("max_tokens", 0),
        ("frequency_penalty", 2.5),
        ("presence_penalty", -3),
        ("n", 0),
        ("top_logprobs", 21),
        ("max_retries", -1),
    ],
)
def test_out_of_range_rejected_at_construction(
    make_chat: MakeChat, field: str, value: float
) -> None:
    with pytest.raises(ValidationError, match=field):
        make_chat(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 5, "temperature must be a number between 0 and 2"),
        ("top_p", -1, "top_p must be a number between 0 and 1"),
        ("max_tokens", 0, "max_tokens must be an integer >= 1"),
        ("presence_penalty", 9, "presence_penalty must be a number between -2 and 2"),
        ("seed", "x", "seed must be an integer"),
        ("stop", 3, "stop must be a string or a list of strings"),
    ],
)
async def test_out_of_range_per_call_rejected_before_any_request(
    make_chat: MakeChat, field: str, value: object, message: str
) -> None:
    llm, rec = make_chat()
    with pytest.raises(ValueError, match=message):
        llm.invoke("hi", **{field: value})
    with pytest.raises(ValueError, match=message):
        await llm.ainvoke("hi", **{field: value})
    with pytest.raises(ValueError, match=message):
        list(llm.stream("hi", **{field: value}))
    assert rec.requests == []


def test_parameters_hidden_in_model_kwargs_are_still_checked(make_chat: MakeChat) -> None:
    with (
        pytest.warns(UserWarning, match="'top_logprobs' is a ChatRuncrate parameter"),
        pytest.raises(ValidationError, match="top_logprobs"),
    ):
        make_chat(model_kwargs={"top_logprobs": 50})


def test_assignment_rebuilds_defaults_and_checks_them(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], temperature=0.2)
    llm.temperature = 1.1
    llm.invoke("hi")
    assert rec.body["temperature"] == 1.1
    with pytest.raises(ValueError, match=r"(?s)temperature.*less than or equal to 2"):
        llm.temperature = 7


def test_model_copy_with_update_uses_new_values(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], temperature=0.2)
    other = llm.model_copy(update={"temperature": 0.9})
    other.invoke("hi")
    assert rec.body["temperature"] == 0.9
    assert llm._identifying_params["temperature"] == 0.2


def test_default_headers_timeout_and_user_agent(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], default_headers={"X-Team": "search"}, timeout=12.5)
    llm.invoke("hi")
    headers = rec.requests[0].headers
    assert headers["x-team"] == "search"
    assert headers["user-agent"].startswith("runcrate-integrations/")
    assert llm.client.timeout == 12.5


def test_chat_openai_spellings_are_accepted() -> None:
    from langchain_runcrate import ChatRuncrate

    llm = ChatRuncrate(
        model_name="qwen/qwen3-32b",
        api_key=KEY,
        request_timeout=5.0,
        stop_sequences=["END"],
        max_completion_tokens=64,
    )
    assert (llm.model, llm.timeout, llm.stop, llm.max_tokens) == (
        "qwen/qwen3-32b",
        5.0,
        ["END"],
        64,
    )


def test_max_retries_retries_then_succeeds(make_chat: MakeChat) -> None:
    busy = httpx2.Response(
        503,
        json={"error": {"code": "busy", "message": "try again"}},
        headers={"retry-after-ms": "1"},
    )
    llm, rec = make_chat([busy, completion_body("ok")], max_retries=1)
    assert llm.invoke("hi").content == "ok"
    assert len(rec.requests) == 2


def test_no_retry_when_max_retries_is_zero(make_chat: MakeChat) -> None:
    llm, rec = make_chat([error(503, "busy", "try again")], max_retries=0)
    with pytest.raises(InternalServerError, match="try again") as caught:
        llm.invoke("hi")
    assert caught.value.status_code == 503
    assert len(rec.requests) == 1


def test_custom_base_url(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body()], base_url="http://localhost:8000/v1/")
    llm.invoke("hi")
    assert str(rec.requests[0].url) == "http://localhost:8000/v1/chat/completions"


def test_streaming_flag_streams_under_invoke(make_chat: MakeChat) -> None:
    from tests.helpers import sse, text_chunks

    llm, rec = make_chat([sse(text_chunks(["Hel", "lo"]))], streaming=True)
    message = llm.invoke("hi")
    assert rec.body["stream"] is True
    assert message.content == "Hello"
    assert message.usage_metadata == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}


async def test_streaming_flag_reports_tokens_to_callbacks(make_chat: MakeChat) -> None:
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

    from tests.helpers import sse, text_chunks

    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            self.tokens.append(token)

    class AsyncTokens(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        async def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            self.tokens.append(token)

    llm, _ = make_chat(
        [sse(text_chunks(["Hel", "lo"])), sse(text_chunks(["a", "b"]))], streaming=True
    )
    sync_handler, async_handler = Tokens(), AsyncTokens()
    assert llm.invoke("hi", config={"callbacks": [sync_handler]}).content == "Hello"
    assert "".join(sync_handler.tokens) == "Hello" and len(sync_handler.tokens) >= 2
    result = await llm.ainvoke("hi", config={"callbacks": [async_handler]})
    assert result.content == "ab" and "".join(async_handler.tokens) == "ab"


def test_disable_streaming_makes_stream_invoke(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body("whole")], disable_streaming=True)
    assert [c.content for c in llm.stream("hi")] == ["whole"]
    assert "stream" not in rec.body


def test_n_choices_cannot_be_streamed(make_chat: MakeChat) -> None:
    llm, rec = make_chat(n=2)
    with pytest.raises(ValueError, match="n > 1 cannot be streamed"):
        list(llm.stream("hi"))
    assert rec.requests == []


def test_response_format_per_call_must_be_a_dict_or_a_class(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    with pytest.raises(ValueError, match=r"a dict such as .* or a pydantic class"):
        llm.invoke("hi", response_format=["json_object"])
    assert rec.requests == []
