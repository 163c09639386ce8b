"""LlamaIndex media: ``RuncrateToolSpec`` (four tools, sync and async, answering content
blocks) and ``RuncrateTranscriptionReader`` (one path or a list, ``SimpleDirectoryReader``,
an fsspec filesystem), their settings, secrecy, copies and pickles."""

from __future__ import annotations

import copy
import inspect
import pickle
from pathlib import Path
from typing import Any

import fsspec
import httpx2
import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.base.llms.types import AudioBlock, ImageBlock, TextBlock, VideoBlock
from llama_index.core.tools import FunctionTool

import runcrate_integrations as core
from llama_index.readers.runcrate import RuncrateTranscriptionReader
from llama_index.tools.runcrate import RuncrateToolSpec
from runcrate_integrations.media import tools as media_tools
from runcrate_integrations.net import transport
from tests.support.fake_media import MP4, fake_audio, multipart_fields, tiny_png
from tests.support.fake_openai_server import FakeOpenAIServer, error

KEY = "rc_live_LI_MEDIA_KEY_55"


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)


@pytest.fixture
def server(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.media.polls_to_complete = 1
    return fake_server


def _spec(server: FakeOpenAIServer, **fields: Any) -> RuncrateToolSpec:
    return RuncrateToolSpec(
        api_key=KEY, base_url=server.base_url, max_retries=0, poll_interval=0.01, **fields
    )


def _tools(spec: RuncrateToolSpec) -> dict[str, FunctionTool]:
    return {tool.metadata.name: tool for tool in spec.to_tool_list()}


def test_a_key_is_all_it_needs_and_the_models_are_runcrates_ids() -> None:
    spec = RuncrateToolSpec(api_key=KEY)
    assert spec.media.models == core.media.MediaModels(
        "black-forest-labs/FLUX.1-schnell",
        "hexgrad/Kokoro-82M",
        "google/veo-3.0",
        "openai/whisper-large-v3",
    )
    with pytest.raises(core.MissingAPIKeyError):
        RuncrateToolSpec()


def test_four_tools_with_the_cores_names_descriptions_and_schemas() -> None:
    tools = _tools(RuncrateToolSpec(api_key=KEY, max_duration=5))
    assert list(tools) == ["generate_image", "text_to_speech", "generate_video", "speech_to_text"]
    expected = {
        "generate_image": (media_tools.IMAGE_DESCRIPTION, media_tools.ImageToolArgs),
        "text_to_speech": (media_tools.SPEECH_DESCRIPTION, media_tools.SpeechToolArgs),
        "generate_video": (media_tools.video_description(5), media_tools.VideoToolArgs),
        "speech_to_text": (
            media_tools.TRANSCRIPTION_DESCRIPTION,
            media_tools.TranscriptionToolArgs,
        ),
    }
    for name, tool in tools.items():
        assert (tool.metadata.description, tool.metadata.fn_schema) == expected[name]
        assert inspect.iscoroutinefunction(tool.async_fn), name  # its own, not a wrapper
        assert tool.async_fn.__name__ == "a" + tool.fn.__name__
        assert "api_key" not in tool.metadata.fn_schema_str


def test_the_image_tool_answers_text_and_an_image_block(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    output = _tools(_spec(server, save_dir=str(tmp_path)))["generate_image"].call(
        prompt="a fox", seed=4, aspect_ratio="1:1"
    )
    text, image = output.blocks
    assert isinstance(text, TextBlock) and isinstance(image, ImageBlock)
    assert image.resolve_image(as_base64=False).read() == tiny_png(64, 64, 4)
    assert image.image_mimetype == "image/png" and str(image.url).startswith("http://127.0.0.1")
    (saved,) = tmp_path.iterdir()
    assert output.content == text.text and f"Saved to {saved}." in text.text
    assert image.path == saved  # the block names the file too
    assert server.requests[0].body == {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "a fox",
        "aspect_ratio": "1:1",
        "seed": 4,
    }


async def test_async_tools_are_native(server: FakeOpenAIServer) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("the async tool used the sync client")

    spec = _spec(server, http_client=httpx2.Client(transport=httpx2.MockTransport(refuse)))
    tools = _tools(spec)
    speech = await tools["text_to_speech"].acall(text="Hello", voice="af")
    assert isinstance(speech.blocks[1], AudioBlock) and speech.blocks[1].format == "mp3"
    assert speech.blocks[1].resolve_audio(as_base64=False).read() == fake_audio("Hello")
    video = await tools["generate_video"].acall(prompt="waves", duration=2)
    assert isinstance(video.blocks[1], VideoBlock)
    assert video.blocks[1].resolve_video(as_base64=False).read() == MP4


def test_speech_to_text_answers_the_transcript(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("hello world"))
    output = _tools(_spec(server, language="en"))["speech_to_text"].call(audio=str(path))
    assert output.content == "hello world" and len(output.blocks) == 1
    assert multipart_fields(server.last_request)["language"] == "en"


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("generate_image", {"prompt": ""}, "prompt is empty"),
        ("generate_video", {"prompt": "x", "duration": 9}, "over this tool's limit of 8 s"),
        ("speech_to_text", {"audio": "/nowhere.mp3"}, "does not exist"),
    ],
)
def test_a_bad_argument_raises_before_any_request(
    server: FakeOpenAIServer, name: str, args: dict[str, Any], message: str
) -> None:
    # LlamaIndex's convention: the tool raises; an agent turns it into an error output.
    with pytest.raises(ValueError, match=message):
        _tools(_spec(server))[name].call(**args)
    assert server.request_count == 0


def test_api_errors_are_the_core_classes(server: FakeOpenAIServer) -> None:
    server.enqueue(error(402, "insufficient_credits", "top up"))
    with pytest.raises(core.InsufficientCreditsError):
        _tools(_spec(server))["generate_image"].call(prompt="a fox")


def test_secret_copies_and_pickles() -> None:
    spec = RuncrateToolSpec(api_key=KEY, save_dir="out")
    reader = RuncrateTranscriptionReader(api_key=KEY, segments=True)
    for obj in (spec, reader):
        assert KEY not in repr(obj) and KEY not in str(obj.model_dump())
        twin = copy.deepcopy(obj)
        assert twin.media is obj.media
        revived = pickle.loads(pickle.dumps(obj))
        assert revived.media.clients.settings == obj.media.clients.settings
    assert KEY not in reader.to_json()


# ---------------------------------------------------------------------------- the reader


def _mp3(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(fake_audio(text))
    return path


def _reader(server: FakeOpenAIServer, **fields: Any) -> RuncrateTranscriptionReader:
    return RuncrateTranscriptionReader(
        api_key=KEY, base_url=server.base_url, max_retries=0, **fields
    )


def test_load_data_takes_a_path_or_a_list(server: FakeOpenAIServer, tmp_path: Path) -> None:
    a, b = _mp3(tmp_path, "a.mp3", "first call"), _mp3(tmp_path, "b.mp3", "second call")
    reader = _reader(server)
    (one,) = reader.load_data(a, extra_info={"team": "core"})
    assert one.text == "first call"
    assert one.metadata == {
        "team": "core",
        "source": str(a),
        "duration": 0.8,
        "language": "en",
        "model": "openai/whisper-large-v3",
    }
    assert [d.text for d in reader.load_data([a, str(b)])] == ["first call", "second call"]


async def test_aload_data_and_segments(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = _mp3(tmp_path, "a.mp3", "one two three four")
    docs = await _reader(server, segments=True).aload_data([path])
    assert [(d.text, d.metadata["start"], d.metadata["end"]) for d in docs] == [
        ("one two", 0.0, 1.5),
        ("three four", 1.5, 3.0),
    ]
    assert multipart_fields(server.last_request)["response_format"] == "vtt"


def test_it_plugs_into_simple_directory_reader(server: FakeOpenAIServer, tmp_path: Path) -> None:
    _mp3(tmp_path, "a.mp3", "alpha talk")
    (tmp_path / "notes.txt").write_text("plain notes")
    docs = SimpleDirectoryReader(
        str(tmp_path), file_extractor={".mp3": _reader(server)}
    ).load_data()
    by_name = {d.metadata["file_name"]: d for d in docs}
    assert by_name["a.mp3"].text == "alpha talk"
    assert by_name["a.mp3"].metadata["model"] == "openai/whisper-large-v3"
    assert by_name["notes.txt"].text == "plain notes"
    assert server.request_count == 1


def test_it_reads_through_an_fsspec_filesystem(server: FakeOpenAIServer) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/calls/remote.mp3", fake_audio("from memory"))
    (doc,) = _reader(server).load_data("/calls/remote.mp3", fs=fs)
    assert doc.text == "from memory" and doc.metadata["source"] == "/calls/remote.mp3"
    assert multipart_fields(server.last_request)["file"][0] == "remote.mp3"
