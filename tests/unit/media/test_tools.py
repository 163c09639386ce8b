"""What the media tools do, decided once for both frameworks: the text the model reads, the
artifact, files written only into a given ``save_dir`` and named without the key, the
developer's cap on video length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runcrate_integrations.media import tools
from tests.support.fake_media import MP4, fake_audio, tiny_png
from tests.support.fake_openai_server import FakeOpenAIServer

from .conftest import KEY, MakeMedia

NAME = re.compile(r"^(image|speech|video)-[0-9a-f]{16}\.(png|mp3|pcm|mp4)$")


def test_image_outcome_text_artifact_and_file(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    outcome = tools.make_image(
        make_media(), "a fox", aspect_ratio="2:1", seed=5, save_dir=str(tmp_path / "out")
    )
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
    image = tools.make_image(media, "a fox")
    speech = tools.make_speech(media, "Hello")
    assert list(tmp_path.iterdir()) == []
    assert image.path is None and "Saved" not in image.text
    assert speech.text == "Spoke 5 characters with hexgrad/Kokoro-82M: MP3 audio, 16 B."


async def test_speech_and_video_outcomes(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    media = make_media()
    speech = await tools.amake_speech(
        media, "Hello", speech_format="pcm", voice="af", save_dir=str(tmp_path)
    )
    assert fake_server.last_request.body == {
        "model": "hexgrad/Kokoro-82M",
        "input": "Hello",
        "voice": "af",
        "response_format": "pcm",
    }
    assert Path(str(speech.path)).suffix == ".pcm" and speech.data == fake_audio("Hello")
    assert speech.artifact()["format"] == "pcm" and speech.mime_type == "audio/pcm"
    fake_server.media.polls_to_complete = 1
    video = await tools.amake_video(
        media, "waves", duration=2, max_duration=4, timeout=5, save_dir=str(tmp_path)
    )
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
    with pytest.raises(ValueError, match=message):
        if mode == "sync":
            tools.make_video(make_media(), "waves", duration=12, max_duration=8, timeout=5)
        else:
            await tools.amake_video(make_media(), "waves", duration=12, max_duration=8, timeout=5)
    assert fake_server.request_count == 0


def test_a_transcript_outcome_is_the_text(make_media: MakeMedia, tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(fake_audio("hello world"))
    outcome = tools.make_transcript(make_media(), str(path), language="en")
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
