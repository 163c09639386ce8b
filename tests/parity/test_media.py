"""The media classes of both frameworks behave as one: the same call sends the same request
(JSON body, multipart fields and file, headers), every failure raises the same core class,
and the connection settings follow the one spec (defaults, checks, copies).

LangChain: the four tools (as ``RuncrateToolkit`` hands them out) and
``RuncrateTranscriptionParser``; LlamaIndex: ``RuncrateToolSpec``'s four tools and
``RuncrateTranscriptionReader``. Where a framework's convention differs it is named here: a
LangChain error is additionally langchain-core's class (the dual classes); a LlamaIndex tool
raises a model's bad argument while a LangChain tool answers it to the model (``ToolException``
with ``handle_tool_error``).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain_core.document_loaders import Blob
from langchain_core.exceptions import ModelError

import runcrate_integrations as core
from langchain_runcrate import (
    RuncrateImageGenerationTool,
    RuncrateSpeechToTextTool,
    RuncrateTextToSpeechTool,
    RuncrateToolkit,
    RuncrateTranscriptionParser,
    RuncrateVideoGenerationTool,
)
from llama_index_runcrate import RuncrateToolSpec, RuncrateTranscriptionReader
from runcrate_integrations.config import DEFAULT_TIMEOUT
from runcrate_integrations.net import transport
from tests.support.fake_media import fake_audio, multipart_fields
from tests.support.fake_openai_server import FakeOpenAIServer, RecordedRequest, error

from .test_errors import STATUSES

KEY = "rc_live_PARITY_MEDIA_KEY_8"
# Drawn fresh per request by the openai client, or naming the sync/async path.
VOLATILE = {"idempotency-key", "content-length", "content-type", "x-stainless-async"}


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)


Call = Callable[[FakeOpenAIServer, Path, bool], Awaitable[Any]]


def _settings(server: FakeOpenAIServer) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "base_url": server.base_url,
        "max_retries": 0,
        "default_headers": {"X-Team": "media"},
        "poll_interval": 0.01,
    }


def _audio(tmp: Path) -> Path:
    path = tmp / "call.mp3"
    path.write_bytes(fake_audio("parity of the two frameworks"))
    return path


async def _lc(tool: Any, args: dict[str, Any], sync: bool) -> Any:
    call = {"type": "tool_call", "id": "c1", "name": tool.name, "args": args}
    return tool.invoke(call) if sync else await tool.ainvoke(call)


async def _li(spec: RuncrateToolSpec, name: str, args: dict[str, Any], sync: bool) -> Any:
    (tool,) = [t for t in spec.to_tool_list() if t.metadata.name == name]
    return tool.call(**args) if sync else await tool.acall(**args)


ARGS = {
    "generate_image": {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "negative_prompt": "blur",
        "seed": 9,
    },
    "text_to_speech": {"text": "Hello both.", "voice": "af_heart"},
    "generate_video": {"prompt": "waves", "duration": 3, "aspect_ratio": "9:16"},
}


def _langchain_tool(server: FakeOpenAIServer, name: str) -> Any:
    fields = _settings(server)
    tools = {t.name: t for t in RuncrateToolkit(**fields).get_tools()}
    return tools[name]


def _sent(request: RecordedRequest) -> tuple[Any, ...]:
    headers = {k: v for k, v in request.headers.items() if k not in VOLATILE}
    body = request.body if not isinstance(request.body, bytes) else multipart_fields(request)
    path = re.sub(r"vid_[0-9a-f]+", "vid_<id>", request.path)
    path = re.sub(r"/files/[0-9a-f]+\.png", "/files/<id>.png", path)
    return request.method, path, body, headers


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize(
    "name", ["generate_image", "text_to_speech", "generate_video", "speech_to_text"]
)
async def test_the_same_tool_call_sends_the_same_requests(
    fake_server: FakeOpenAIServer, tmp_path: Path, name: str, sync: bool
) -> None:
    fake_server.media.polls_to_complete = 1
    args = ARGS.get(name, {"audio": str(_audio(tmp_path))})
    await _lc(_langchain_tool(fake_server, name), args, sync)
    langchain = [_sent(r) for r in fake_server.requests]
    fake_server.reset()
    fake_server.media.polls_to_complete = 1
    await _li(RuncrateToolSpec(**_settings(fake_server)), name, args, sync)
    llama_index = [_sent(r) for r in fake_server.requests]
    assert langchain == llama_index
    method, _, body, headers = langchain[0]
    assert method == "POST" and headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-team"] == "media"
    if name != "speech_to_text":
        assert body["model"] in {
            "black-forest-labs/FLUX.1-schnell",
            "hexgrad/Kokoro-82M",
            "google/veo-3.0",
        }


async def test_the_parser_and_the_reader_upload_the_same_and_make_the_same_documents(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    path = _audio(tmp_path)
    common = {"api_key": KEY, "base_url": fake_server.base_url, "language": "en", "segments": True}
    lc_docs = RuncrateTranscriptionParser(**common).parse(Blob.from_path(path))
    lc_sent = _sent(fake_server.last_request)
    li_docs = await RuncrateTranscriptionReader(**common).aload_data(path)
    assert _sent(fake_server.last_request) == lc_sent
    assert [(d.page_content, d.metadata) for d in lc_docs] == [
        (d.text, d.metadata) for d in li_docs
    ]
    assert len(lc_docs) == 2


@pytest.mark.parametrize("status", list(STATUSES))
async def test_every_status_raises_the_same_core_class_in_both(
    fake_server: FakeOpenAIServer, status: int
) -> None:
    expect = STATUSES[status]
    fake_server.default = error(status, "some_code", f"status {status}")
    raised: dict[str, BaseException] = {}
    for framework in ("langchain", "llama_index"):
        with pytest.raises(core.RuncrateError) as info:
            if framework == "langchain":
                await _lc(
                    _langchain_tool(fake_server, "text_to_speech"), ARGS["text_to_speech"], False
                )
            else:
                await _li(
                    RuncrateToolSpec(**_settings(fake_server)),
                    "text_to_speech",
                    ARGS["text_to_speech"],
                    False,
                )
        raised[framework] = info.value
    for framework, err in raised.items():
        assert isinstance(err, expect.core) and isinstance(err, expect.openai), framework
        assert err.is_retryable is expect.retryable  # type: ignore[attr-defined]
    # The framework difference, named: LangChain's is also langchain-core's class.
    assert isinstance(raised["langchain"], expect.langchain)
    assert isinstance(raised["langchain"], ModelError)
    assert not isinstance(raised["llama_index"], ModelError)
    assert issubclass(type(raised["langchain"]), type(raised["llama_index"]))
    assert fake_server.request_count == 2


# ---------------------------------------------------------------------------- the spec

MEDIA_CLASSES: list[type[Any]] = [
    RuncrateImageGenerationTool,
    RuncrateTextToSpeechTool,
    RuncrateVideoGenerationTool,
    RuncrateSpeechToTextTool,
    RuncrateToolkit,
    RuncrateTranscriptionParser,
    RuncrateToolSpec,
    RuncrateTranscriptionReader,
]
SPLIT = httpx2.Timeout(30.0, connect=2.0)


@pytest.mark.parametrize("cls", MEDIA_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("given", "kept"),
    [(None, None), (5, 5.0), (SPLIT, SPLIT)],
    ids=["None", "int", "httpx2.Timeout"],
)
def test_every_media_class_accepts_the_same_timeouts(cls: type[Any], given: Any, kept: Any) -> None:
    instance = cls(api_key=KEY, timeout=given)
    assert instance.timeout == kept and instance.media.clients.settings.timeout == kept
    revived = pickle.loads(pickle.dumps(instance))
    assert revived.media.clients.settings.timeout == kept


@pytest.mark.parametrize("cls", MEDIA_CLASSES, ids=lambda c: c.__name__)
def test_every_media_class_has_the_spec_defaults_and_checks(
    cls: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = cls(api_key=KEY).media.clients.settings
    assert (settings.timeout, settings.max_retries, settings.base_url) == (
        DEFAULT_TIMEOUT,
        2,
        "https://api.runcrate.ai/v1",
    )
    with pytest.raises(ValueError, match="timeout must be > 0 seconds, got 0"):
        cls(api_key=KEY, timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        cls(api_key=KEY, max_retries=-1)
    with pytest.raises(core.MissingAPIKeyError):
        cls()
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://proxy.test/v1")
    from_env = cls()
    assert from_env.media.clients.settings.base_url == "http://proxy.test/v1"
    assert KEY not in repr(from_env)
    # Aliases of the spec, as for chat: request_timeout, api_base.
    aliased = cls(openai_api_key=KEY, api_base="http://alias.test/v1", request_timeout=7)
    assert (aliased.base_url, aliased.timeout) == ("http://alias.test/v1", 7.0)


# ---------------------------------------------------------------------------- every class


def _every_class_calls(server: FakeOpenAIServer, tmp: Path) -> dict[str, Callable[[], Any]]:
    """One call through each media class (sync), as its users make it."""
    audio = _audio(tmp)
    common = {"api_key": KEY, "base_url": server.base_url, "max_retries": 0}
    tools = {t.name: t for t in RuncrateToolkit(**common).get_tools()}
    spec = {t.metadata.name: t for t in RuncrateToolSpec(**common).to_tool_list()}
    return {
        "RuncrateImageGenerationTool": lambda: RuncrateImageGenerationTool(**common).invoke(
            {"prompt": "a fox"}
        ),
        "RuncrateTextToSpeechTool": lambda: RuncrateTextToSpeechTool(**common).invoke(
            {"text": "Hi"}
        ),
        "RuncrateVideoGenerationTool": lambda: RuncrateVideoGenerationTool(**common).invoke(
            {"prompt": "waves"}
        ),
        "RuncrateSpeechToTextTool": lambda: RuncrateSpeechToTextTool(**common).invoke(
            {"audio": str(audio)}
        ),
        "RuncrateToolkit": lambda: tools["text_to_speech"].invoke({"text": "Hi"}),
        "RuncrateTranscriptionParser": lambda: RuncrateTranscriptionParser(**common).parse(
            Blob.from_path(audio)
        ),
        "RuncrateToolSpec": lambda: spec["generate_image"].call(prompt="a fox"),
        "RuncrateTranscriptionReader": lambda: RuncrateTranscriptionReader(**common).load_data(
            audio
        ),
    }


LANGCHAIN_CLASSES = {
    "RuncrateImageGenerationTool",
    "RuncrateTextToSpeechTool",
    "RuncrateVideoGenerationTool",
    "RuncrateSpeechToTextTool",
    "RuncrateToolkit",
    "RuncrateTranscriptionParser",
}


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 429, 500])
def test_every_media_class_raises_the_core_class_of_each_status(
    fake_server: FakeOpenAIServer, tmp_path: Path, status: int
) -> None:
    expect = STATUSES[status]
    fake_server.default = error(status, "some_code", f"status {status}")
    for name, call in _every_class_calls(fake_server, tmp_path).items():
        with pytest.raises(core.RuncrateError) as info:
            call()
        assert isinstance(info.value, expect.core), name
        assert info.value.status_code == status, name  # type: ignore[attr-defined]
        if name in LANGCHAIN_CLASSES:  # the framework difference: the dual classes
            assert isinstance(info.value, expect.langchain), name
        else:
            assert not isinstance(info.value, ModelError), name
