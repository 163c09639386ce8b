"""What the media tools do, decided once for both frameworks: the text the model reads, the
artifact, files written only into a given ``save_dir`` and named without the key, the
developer's cap on video length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runcrate_integrations.media import tools
from runcrate_integrations.media.tools import (
    IMAGE_TOOL,
    SPEECH_TOOL,
    TRANSCRIPTION_TOOL,
    VIDEO_TOOL,
    ToolSettings,
    tool_call,
)
from tests.support.fake_media import MP4, fake_audio, tiny_png
from tests.support.fake_openai_server import FakeOpenAIServer

from .conftest import KEY, MakeMedia

NAME = re.compile(r"^(image|speech|video)-[0-9a-f]{16}\.(png|mp3|pcm|mp4)$")


def test_image_outcome_text_artifact_and_file(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    settings = ToolSettings(save_dir=str(tmp_path / "out"))
    args = {"prompt": "a fox", "aspect_ratio": "2:1", "seed": 5}
    outcome = tool_call(IMAGE_TOOL, make_media(), args, settings).run()
    (saved,) = (tmp_path / "out").iterdir()
    assert NAME.match(saved.name) and saved.read_bytes() == tiny_png(64, 32, 5)
    assert KEY not in str(saved)
    url = outcome.url
    assert outcome.text == (
        f"Made an image with black-forest-labs/FLUX.1-schnell: 64x32 PNG, "
        f"{len(tiny_png(64, 32, 5))} B. Saved to {saved}. URL (temporary): {url}"
    )
    assert outcome.artifact() == {
        "type": "image",
        "data": tiny_png(64, 32, 5),
        "mime_type": "image/png",
        "url": url,
        "path": str(saved),
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "a fox",
        "width": 64,
        "height": 32,
    }
    assert fake_server.requests[0].body["seed"] == 5


def test_nothing_is_written_without_a_save_dir(
    make_media: MakeMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    media = make_media()
    image = tool_call(IMAGE_TOOL, media, {"prompt": "a fox"}, ToolSettings()).run()
    speech = tool_call(SPEECH_TOOL, media, {"text": "Hello"}, ToolSettings()).run()
    assert list(tmp_path.iterdir()) == []
    assert image.path is None and "Saved" not in image.text
    assert speech.text == "Spoke 5 characters with hexgrad/Kokoro-82M: MP3 audio, 16 B."


async def test_speech_and_video_outcomes(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    media = make_media()
    settings = ToolSettings(save_dir=str(tmp_path), speech_format="pcm", voice="bf")
    speech = await tool_call(SPEECH_TOOL, media, {"text": "Hello", "voice": "af"}, settings).arun()
    assert fake_server.last_request.body == {
        "model": "hexgrad/Kokoro-82M",
        "input": "Hello",
        "voice": "af",
        "response_format": "pcm",
    }
    assert Path(str(speech.path)).suffix == ".pcm" and speech.data == fake_audio("Hello")
    assert speech.artifact()["format"] == "pcm" and speech.mime_type == "audio/pcm"
    fake_server.media.polls_to_complete = 1
    settings = ToolSettings(save_dir=str(tmp_path), max_duration=4, video_timeout=5)
    video = await tool_call(VIDEO_TOOL, media, {"prompt": "waves", "duration": 2}, settings).arun()
    job_id = video.metadata["job_id"]
    assert video.text == (
        f"Made a video with google/veo-3.0 (job {job_id}): 2 s MP4, "
        f"{len(MP4)} B. Saved to {video.path}."
    )
    assert Path(str(video.path)).read_bytes() == MP4
    assert {p.suffix for p in tmp_path.iterdir()} == {".pcm", ".mp4"}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_video_longer_than_the_cap_is_refused_unsent(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, mode: str
) -> None:
    message = "duration 12 s is over this tool's limit of 8 s; ask for 8 s or less"
    settings = ToolSettings(max_duration=8, video_timeout=5)
    with pytest.raises(ValueError, match=message):
        call = tool_call(VIDEO_TOOL, make_media(), {"prompt": "waves", "duration": 12}, settings)
        if mode == "sync":
            call.run()
        else:
            await call.arun()
    assert fake_server.request_count == 0


def test_a_transcript_outcome_is_the_text(make_media: MakeMedia, tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("hello world"))
    settings = ToolSettings(language="en")
    outcome = tool_call(TRANSCRIPTION_TOOL, make_media(), {"audio": str(path)}, settings).run()
    assert outcome.text == "hello world"
    assert outcome.artifact() == {
        "type": "transcript",
        "data": None,
        "mime_type": "text/plain",
        "url": None,
        "path": None,
        "source": str(path),
        "duration": 0.8,
        "language": "en",
        "model": "openai/whisper-large-v3",
        "text": "hello world",
        "segments": [],
    }


def test_the_video_description_states_the_cap() -> None:
    assert "(at most 6)" in tools.video_description(6.0)
    assert "(at most 2.5)" in tools.video_description(2.5)


def test_the_model_sees_no_client_settings_in_any_tool_schema() -> None:
    for args in (
        tools.ImageToolArgs,
        tools.SpeechToolArgs,
        tools.VideoToolArgs,
        tools.TranscriptionToolArgs,
    ):
        fields = set(args.model_fields)
        assert fields.isdisjoint(
            {"api_key", "base_url", "model", "timeout", "save_dir", "max_duration"}
        ), args
    assert list(tools.ImageToolArgs.model_fields) == [
        "prompt",
        "aspect_ratio",
        "negative_prompt",
        "seed",
    ]
    assert list(tools.SpeechToolArgs.model_fields) == ["text", "voice"]
    assert list(tools.VideoToolArgs.model_fields) == ["prompt", "duration", "aspect_ratio"]
    assert list(tools.TranscriptionToolArgs.model_fields) == ["audio"]


def test_settings_are_read_from_whatever_holds_them_and_an_unknown_tool_is_refused(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    class Holder:  # a tool, a toolkit or a tool spec: only the settings it has are read
        voice = "af"
        save_dir = None
        timeout = 99.0  # the HTTP timeout, not the video wait: never read

    assert ToolSettings.of(Holder()) == ToolSettings(voice="af")
    with pytest.raises(ValueError, match="no media tool is named 'draw'"):
        tool_call("draw", make_media(), {"prompt": "x"}, ToolSettings())
    assert fake_server.request_count == 0
