"""The LangChain media tools and toolkit: langchain-tests' ToolsUnitTests for each tool, then
what each sends and answers (plain args and tool calls), files only with a ``save_dir``, the
model's mistakes answered as text with nothing sent, API errors raised in the dual classes,
native async, the key kept secret, copies and pickles."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain_core.exceptions import ModelAPIError, ModelAuthenticationError
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ToolsUnitTests

import runcrate_integrations as core
from langchain_runcrate import (
    RuncrateImageGenerationTool,
    RuncrateInsufficientCreditsError,
    RuncrateJobTimeoutError,
    RuncrateSpeechToTextTool,
    RuncrateTextToSpeechTool,
    RuncrateToolkit,
    RuncrateVideoGenerationTool,
)
from runcrate_integrations.media import tools as media_tools
from runcrate_integrations.net import transport
from tests.support.fake_media import MP4, fake_audio, tiny_png
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    error,
    running_server,
)

KEY = "rc_live_LC_MEDIA_TOOL_KEY_77"
FAST = {"poll_interval": 0.01}


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)


# ---------------------------------------------------------------------------- standard suite


class TestImageToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"api_key": "rc_live_standard_test_key"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "RUNCRATE_API_KEY": "rc_live_from_env",
                "RUNCRATE_BASE_URL": "https://proxy.example.test/v1",
            },
            {},
            {"api_key": "rc_live_from_env", "base_url": "https://proxy.example.test/v1"},
        )


class TestSpeechToolStandard(TestImageToolStandard):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateTextToSpeechTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "Hello there.", "voice": "af_heart"}


class TestVideoToolStandard(TestImageToolStandard):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateVideoGenerationTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "waves on a beach", "duration": 4}


class TestSpeechToTextToolStandard(TestImageToolStandard):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateSpeechToTextTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"audio": "standup.mp3"}


# ---------------------------------------------------------------------------- behaviour


@pytest.fixture
def server(fake_server: FakeOpenAIServer, no_runcrate_env: None) -> FakeOpenAIServer:
    fake_server.media.polls_to_complete = 1
    return fake_server


def _common(server: FakeOpenAIServer, **fields: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": server.base_url, "max_retries": 0, **fields}


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": "call_7", "name": name, "args": args}


def test_a_tool_call_answers_a_tool_message_with_the_bytes(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    tool = RuncrateImageGenerationTool(**_common(server), save_dir=str(tmp_path))
    message = tool.invoke(_call("generate_image", prompt="a fox", seed=2, aspect_ratio="1:1"))
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call_7"
    assert message.artifact["data"] == tiny_png(64, 64, 2)
    (saved,) = tmp_path.iterdir()
    assert message.artifact["path"] == str(saved) and saved.read_bytes() == tiny_png(64, 64, 2)
    assert message.content.startswith(
        "Made an image with black-forest-labs/FLUX.1-schnell: 64x64 PNG"
    )
    assert f"Saved to {saved}." in message.content and "URL (temporary): http" in message.content
    assert server.requests[0].body == {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "a fox",
        "aspect_ratio": "1:1",
        "seed": 2,
    }


def test_plain_args_answer_the_text(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tool = RuncrateTextToSpeechTool(**_common(server), voice="af_heart", speech_format="pcm")
    text = tool.invoke({"text": "Hello there."})
    assert text == (
        "Spoke 12 characters with hexgrad/Kokoro-82M: PCM audio, "
        f"{len(fake_audio('Hello there.'))} B."
    )
    assert server.last_request.body == {
        "model": "hexgrad/Kokoro-82M",
        "input": "Hello there.",
        "voice": "af_heart",
        "response_format": "pcm",
    }
    assert list(tmp_path.iterdir()) == []  # no save_dir: nothing on disk


async def test_ainvoke_is_native_async(server: FakeOpenAIServer) -> None:
    """The sync client refuses every request, so only a real async path can succeed."""

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("the async tool used the sync client")

    sync_client = httpx2.Client(transport=httpx2.MockTransport(refuse))
    tool = RuncrateVideoGenerationTool(**_common(server), **FAST, http_client=sync_client)
    message = await tool.ainvoke(_call("generate_video", prompt="waves", duration=2))
    assert message.artifact["data"] == MP4 and message.artifact["duration"] == 2.0
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]


def test_speech_to_text_reads_a_path(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "standup.mp3"
    path.write_bytes(fake_audio("ship it on friday"))
    tool = RuncrateSpeechToTextTool(**_common(server), language="en")
    message = tool.invoke(_call("speech_to_text", audio=str(path)))
    assert message.content == "ship it on friday"
    assert message.artifact["language"] == "en" and message.artifact["source"] == str(path)


def test_a_plain_string_input_is_the_first_argument(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # LangChain passes a string input positionally: it fills the schema's first argument.
    path = tmp_path / "note.mp3"
    path.write_bytes(fake_audio("call me back"))
    assert RuncrateSpeechToTextTool(**_common(server)).invoke(str(path)) == "call me back"
    text, artifact = RuncrateTextToSpeechTool(**_common(server))._run("Hello there.")
    assert text.startswith("Spoke 12 characters")
    assert server.last_request.body["input"] == "Hello there." and artifact["type"] == "audio"


def test_speech_to_text_reads_a_url_fetched_without_the_key(server: FakeOpenAIServer) -> None:
    with running_server() as host:
        host.default = lambda request: JSONResponse(
            fake_audio("hello from a url"), headers={"content-type": "audio/mpeg"}
        )
        url = f"http://localhost:{host.port}/recordings/standup.mp3"
        tool = RuncrateSpeechToTextTool(**_common(server))
        message = tool.invoke(_call("speech_to_text", audio=url))
        (fetched,) = host.requests
    assert message.content == "hello from a url" and message.artifact["source"] == url
    assert "authorization" not in fetched.headers
    assert server.last_request.path.endswith("/audio/transcriptions")


@pytest.mark.parametrize(
    ("tool_class", "args", "message"),
    [
        (RuncrateImageGenerationTool, {"prompt": " "}, "prompt is empty; say what to make"),
        (
            RuncrateImageGenerationTool,
            {"prompt": "x", "aspect_ratio": "wide"},
            "aspect_ratio must look like '16:9'",
        ),
        (
            RuncrateVideoGenerationTool,
            {"prompt": "x", "duration": 30},
            "duration 30 s is over this tool's limit of 8 s",
        ),
        (RuncrateSpeechToTextTool, {"audio": "/nowhere/x.mp3"}, "does not exist"),
    ],
)
async def test_a_models_mistake_is_answered_as_text_and_nothing_is_sent(
    server: FakeOpenAIServer, tool_class: type[BaseTool], args: dict[str, Any], message: str
) -> None:
    tool = tool_class(**_common(server))
    answer = tool.invoke(_call(tool.name, **args))
    assert answer.status == "error" and message in answer.content
    answer = await tool.ainvoke(_call(tool.name, **args))
    assert answer.status == "error" and message in answer.content
    assert server.request_count == 0


@pytest.mark.parametrize(
    ("status", "dual", "langchain"),
    [
        (401, core.AuthenticationError, ModelAuthenticationError),
        (402, RuncrateInsufficientCreditsError, ModelAPIError),
    ],
)
async def test_api_errors_are_raised_in_both_hierarchies(
    server: FakeOpenAIServer, status: int, dual: type[Exception], langchain: type[Exception]
) -> None:
    tool = RuncrateImageGenerationTool(**_common(server))
    for call in (tool.invoke, tool.ainvoke):
        server.enqueue(error(status, "denied", "no"))
        with pytest.raises(dual) as info:
            result = call(_call("generate_image", prompt="a fox"))
            if hasattr(result, "__await__"):
                await result
        assert isinstance(info.value, langchain) and isinstance(info.value, core.RuncrateError)
    assert server.request_count == 2


def test_a_video_wait_that_runs_out_keeps_its_type_and_job_id(server: FakeOpenAIServer) -> None:
    server.media.polls_to_complete = 10**6
    tool = RuncrateVideoGenerationTool(**_common(server), **FAST, video_timeout=0.1)
    with pytest.raises(RuncrateJobTimeoutError) as info:
        tool.invoke({"prompt": "waves"})
    assert isinstance(info.value, core.JobTimeoutError)
    assert info.value.job_id.startswith("vid_")


# ---------------------------------------------------------------------------- settings


def test_every_tool_takes_its_model_under_both_names() -> None:
    for cls, endpoint, default in [
        (RuncrateImageGenerationTool, "image", media_tools.IMAGE_TOOL),
        (RuncrateTextToSpeechTool, "speech", media_tools.SPEECH_TOOL),
        (RuncrateVideoGenerationTool, "video", media_tools.VIDEO_TOOL),
        (RuncrateSpeechToTextTool, "transcription", media_tools.TRANSCRIPTION_TOOL),
    ]:
        assert cls(api_key=KEY, model="acme/a").model == "acme/a"
        tool = cls(api_key=KEY, **{f"{endpoint}_model": "acme/b"})
        assert tool.model == "acme/b" and tool.name == default
        assert getattr(tool.media.models, endpoint) == "acme/b"


def test_a_misspelt_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="save_folder"):
        RuncrateImageGenerationTool(api_key=KEY, save_folder="x")


def test_the_key_is_secret_everywhere(
    server: FakeOpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool = RuncrateImageGenerationTool(**_common(server), save_dir=str(tmp_path))
    with caplog.at_level(logging.DEBUG):
        message = tool.invoke(_call("generate_image", prompt="a fox"))
    assert caplog.records
    for text in (
        repr(tool),
        str(tool),
        dumps(tool),
        caplog.text,
        repr(message),
        str(message.artifact["path"]),
        repr(tool.tool_call_schema.model_json_schema()),
    ):
        assert KEY not in text


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_dumpd_and_load_without_the_key() -> None:
    tool = RuncrateVideoGenerationTool(api_key=KEY, max_duration=5, save_dir="clips")
    data = dumpd(tool)
    assert data["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["RUNCRATE_API_KEY"]}
    loaded = load(
        data,
        secrets_map={"RUNCRATE_API_KEY": "rc_live_other"},
        valid_namespaces=["langchain_runcrate"],
        allowed_objects=[RuncrateVideoGenerationTool],
    )
    assert isinstance(loaded, RuncrateVideoGenerationTool)
    assert (loaded.max_duration, loaded.save_dir) == (5.0, "clips")
    assert loaded.api_key is not None and loaded.api_key.get_secret_value() == "rc_live_other"
    assert "(at most 5)" in loaded.description


def test_copies_share_the_clients_and_pickles_rebuild_them() -> None:
    tool = RuncrateImageGenerationTool(api_key=KEY, save_dir="out")
    twin = copy.deepcopy(tool)
    assert twin.media is tool.media
    revived = pickle.loads(pickle.dumps(tool))
    assert (
        revived.save_dir == "out" and revived.media.clients.settings == tool.media.clients.settings
    )
    tool.model = "acme/other"  # a changed field rebuilds the client's models
    assert tool.media.models.image == "acme/other"


def test_a_missing_key_fails_at_construction_typed() -> None:
    for cls in (RuncrateImageGenerationTool, RuncrateToolkit):
        with pytest.raises(core.MissingAPIKeyError, match="RUNCRATE_API_KEY"):
            cls()


# ---------------------------------------------------------------------------- the toolkit


def test_the_toolkit_hands_out_four_tools_on_its_settings(server: FakeOpenAIServer) -> None:
    toolkit = RuncrateToolkit(
        api_key=KEY,
        base_url=server.base_url,
        image_model="acme/img",
        speech_model="acme/tts",
        video_model="acme/vid",
        transcription_model="acme/stt",
        save_dir="out",
        voice="af",
        max_duration=6,
        language="en",
        timeout=9.0,
    )
    image, speech, video, stt = toolkit.get_tools()
    assert [t.name for t in toolkit.get_tools()] == [
        "generate_image",
        "text_to_speech",
        "generate_video",
        "speech_to_text",
    ]
    assert (image.model, speech.model, video.model, stt.model) == (
        "acme/img",
        "acme/tts",
        "acme/vid",
        "acme/stt",
    )
    assert isinstance(video, RuncrateVideoGenerationTool) and video.max_duration == 6
    assert isinstance(speech, RuncrateTextToSpeechTool) and speech.voice == "af"
    assert isinstance(stt, RuncrateSpeechToTextTool) and stt.language == "en"
    for tool in (image, speech, video, stt):
        assert tool.media.clients.settings == toolkit.media.clients.settings
        schema = repr(tool.tool_call_schema.model_json_schema())
        assert "api_key" not in schema and "base_url" not in schema


def test_toolkit_defaults_are_runcrates_catalog_ids() -> None:
    toolkit = RuncrateToolkit(api_key=KEY)
    assert (
        toolkit.image_model,
        toolkit.speech_model,
        toolkit.video_model,
        toolkit.transcription_model,
    ) == (
        "black-forest-labs/FLUX.1-schnell",
        "hexgrad/Kokoro-82M",
        "google/veo-3.0",
        "openai/whisper-large-v3",
    )


def test_a_transcript_artifact_holds_the_segments(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("a b"))
    server.enqueue(
        JSONResponse(
            {
                "text": "a b",
                "duration": 1.0,
                "language": "en",
                "segments": [{"start": 0, "end": 1.0, "text": " a b"}],
            }
        )
    )
    message = RuncrateSpeechToTextTool(**_common(server)).invoke(
        _call("speech_to_text", audio=str(path))
    )
    assert message.artifact["segments"] == [{"start": 0.0, "end": 1.0, "text": "a b"}]
    assert (message.artifact["duration"], message.artifact["text"]) == (1.0, "a b")


def test_a_failed_video_job_is_told_to_the_model(server: FakeOpenAIServer) -> None:
    tool = RuncrateVideoGenerationTool(**_common(server), **FAST)
    answer = tool.invoke(_call("generate_video", prompt="a storm [fail]"))
    assert answer.status == "error"
    assert "ended failed: could not render" in answer.content
