"""``speech`` and ``transcribe``: exact requests (JSON body; multipart fields and file), the
parsed answers (audio bytes and format; text, duration, language, timed segments), every kind
of audio input, and checks before any request."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runcrate_integrations import ResponseFormatError
from runcrate_integrations.media import Segment, audio, parse_subtitles
from tests.support.fake_media import fake_audio, multipart_fields
from tests.support.fake_openai_server import FakeOpenAIServer, JSONResponse, running_server

from .conftest import KEY, MakeMedia

# ---------------------------------------------------------------------------- speech


def test_speech_sends_the_text_and_returns_the_audio(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    spoken = make_media().speech("Hello there.", voice="af_heart", response_format="mp3")
    sent = fake_server.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/audio/speech")
    assert sent.body == {
        "model": "hexgrad/Kokoro-82M",
        "input": "Hello there.",
        "voice": "af_heart",
        "response_format": "mp3",
    }
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert spoken.data == fake_audio("Hello there.")
    assert (spoken.format, spoken.mime_type, spoken.characters) == ("mp3", "audio/mpeg", 12)
    assert spoken.model == "hexgrad/Kokoro-82M"


async def test_async_speech_in_pcm(make_media: MakeMedia, fake_server: FakeOpenAIServer) -> None:
    spoken = await make_media().aspeech("Hi", response_format="pcm", model="acme/tts")
    assert fake_server.last_request.body == {
        "model": "acme/tts",
        "input": "Hi",
        "response_format": "pcm",
    }
    assert (spoken.format, spoken.mime_type) == ("pcm", "audio/pcm")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "text is empty"),
        ({"response_format": "wav"}, "response_format must be one of 'mp3', 'pcm', got 'wav'"),
        ({"voice": ""}, "voice must be a non-empty string"),
        ({"extra_body": {"input": "other"}}, "extra_body must not set 'input'"),
    ],
)
async def test_bad_speech_arguments_send_nothing(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    kwargs: dict[str, object],
    message: str,
) -> None:
    args = {"text": "Hello", **kwargs}
    media = make_media()
    with pytest.raises(ValueError, match=message):
        media.speech(**args)  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(ValueError, match=message):
        await media.aspeech(**args)  # type: ignore[arg-type]  # wrong on purpose
    assert fake_server.request_count == 0


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (JSONResponse({"error": None, "ok": True}), "instead of audio"),
        (JSONResponse(b"", headers={"content-type": "audio/mpeg"}), "empty body"),
    ],
)
def test_a_speech_answer_that_is_not_audio_is_an_error(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, answer: JSONResponse, message: str
) -> None:
    fake_server.enqueue(answer)
    with pytest.raises(ResponseFormatError, match=message):
        make_media().speech("Hello")


# ---------------------------------------------------------------------------- transcription


def _mp3(tmp_path: Path, text: str = "the meeting is at noon", name: str = "call.mp3") -> Path:
    path = tmp_path / name
    path.write_bytes(fake_audio(text))
    return path


def test_a_path_is_uploaded_with_its_fields(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    path = _mp3(tmp_path)
    transcript = make_media().transcribe(path, language="en")
    sent = fake_server.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/audio/transcriptions")
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert multipart_fields(sent) == {
        "model": "openai/whisper-large-v3",
        "language": "en",
        "file": ("call.mp3", fake_audio("the meeting is at noon"), "audio/mpeg"),
    }
    assert (transcript.text, transcript.language, transcript.duration) == (
        "the meeting is at noon",
        "en",
        2.0,
    )
    assert transcript.source == str(path) and transcript.segments == ()
    assert transcript.metadata() == {
        "source": str(path),
        "duration": 2.0,
        "language": "en",
        "model": "openai/whisper-large-v3",
    }


@pytest.mark.parametrize(
    ("given", "name"),
    [
        (lambda p: p.read_bytes(), "audio.mp3"),  # bytes: the format sniffed from them
        (lambda p: io.BytesIO(p.read_bytes()), "audio.mp3"),
        (lambda p: p.open("rb"), "call.mp3"),  # a real file: its own name
    ],
    ids=["bytes", "bytesio", "file"],
)
def test_bytes_and_file_objects_are_uploaded_too(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    tmp_path: Path,
    given: object,
    name: str,
) -> None:
    source = given(_mp3(tmp_path))  # type: ignore[operator]  # a lambda of the table
    transcript = make_media().transcribe(source)
    assert multipart_fields(fake_server.last_request)["file"][0] == name
    assert transcript.text == "the meeting is at noon"


def test_a_filename_names_bytes(make_media: MakeMedia, fake_server: FakeOpenAIServer) -> None:
    make_media().transcribe(b"\x00\x01 no magic here", filename="lecture.wav")
    upload = multipart_fields(fake_server.last_request)["file"]
    assert upload == ("lecture.wav", b"\x00\x01 no magic here", "audio/wav")


async def test_a_url_is_fetched_without_the_key_then_uploaded(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    with running_server() as host:
        host.default = lambda request: JSONResponse(
            fake_audio("hello from a url"), headers={"content-type": "audio/mpeg"}
        )
        url = f"http://localhost:{host.port}/recordings/standup"
        transcript = await make_media().atranscribe(url)
        (fetched,) = host.requests
    assert "authorization" not in fetched.headers and KEY not in repr(fetched.headers)
    assert multipart_fields(fake_server.last_request)["file"][0] == "standup.mp3"
    assert (transcript.text, transcript.source) == ("hello from a url", url)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitle_formats_become_timed_segments(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path, fmt: str
) -> None:
    transcript = make_media().transcribe(_mp3(tmp_path), response_format=fmt)
    assert multipart_fields(fake_server.last_request)["response_format"] == fmt
    assert transcript.segments == (
        Segment(0.0, 1.5, "the meeting"),
        Segment(1.5, 3.0, "is at noon"),
    )
    assert transcript.text == "the meeting is at noon"
    assert transcript.duration == 3.0 and transcript.format == fmt
    pieces = transcript.pieces(per_segment=True)
    assert [text for text, _ in pieces] == ["the meeting", "is at noon"]
    assert pieces[1][1] == {**transcript.metadata(), "start": 1.5, "end": 3.0, "segment": 1}


def test_text_format_is_the_text(make_media: MakeMedia, tmp_path: Path) -> None:
    transcript = make_media().transcribe(_mp3(tmp_path), response_format="text")
    assert (transcript.text, transcript.duration, transcript.language) == (
        "the meeting is at noon",
        None,
        None,
    )


def test_unknown_extras_are_sent_as_fields(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    make_media().transcribe(_mp3(tmp_path), extra_body={"temperature": 0.2, "prompt": "Acme"})
    fields = multipart_fields(fake_server.last_request)
    assert (fields["temperature"], fields["prompt"]) == ("0.2", "Acme")


def _bad(tmp_path: Path) -> list[tuple[dict[str, object], str]]:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"hello")
    return [
        ({"audio": tmp_path / "missing.mp3"}, "does not exist"),
        ({"audio": tmp_path}, "is not a file"),
        ({"audio": empty}, "is empty"),
        ({"audio": notes}, r"\.txt is not a format Runcrate transcribes"),
        ({"audio": b"\x00\x01\x02 what is this"}, "cannot tell the audio format"),
        ({"audio": io.StringIO("text mode")}, "binary mode"),
        ({"audio": 42}, "audio must be a path, bytes"),
        ({"audio": b"ID3 x", "language": "english"}, "ISO-639-1"),
        ({"audio": b"ID3 x", "response_format": "docx"}, "response_format must be one of"),
        ({"audio": b"ID3 x", "extra_body": {"file": "x"}}, "must not set 'file'"),
    ]


async def test_bad_audio_fails_before_any_request(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    media = make_media()
    for kwargs, message in _bad(tmp_path):
        with pytest.raises((ValueError, TypeError), match=message):
            media.transcribe(**kwargs)  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises((ValueError, TypeError), match=message):
            await media.atranscribe(**kwargs)  # type: ignore[arg-type]  # wrong on purpose
    assert fake_server.request_count == 0


def test_a_file_over_the_limit_is_refused_unsent(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audio, "MAX_AUDIO_BYTES", 16)
    path = _mp3(tmp_path, "a sentence longer than sixteen bytes")
    for source in (path, path.read_bytes(), io.BytesIO(path.read_bytes())):
        with pytest.raises(ValueError, match="over the 16 B upload limit; split it"):
            make_media().transcribe(source)
    assert fake_server.request_count == 0


def test_the_documented_upload_limit_is_25_mib() -> None:
    assert audio.MAX_AUDIO_BYTES == 25 * 1024 * 1024


# ---------------------------------------------------------------------------- subtitles


def test_srt_and_vtt_parse_alike() -> None:
    srt = (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n00:00:02,500 --> 01:00:04,040\nTwo lines\nof text.\n"
    )
    vtt = (
        "WEBVTT\n\nNOTE recorded locally\n\nintro\n00:00.000 --> 00:02.500 align:start\n"
        "Hello there.\n\n00:00:02.500 --> 01:00:04.04\nTwo lines\nof text.\n"
    )
    expected = [Segment(0.0, 2.5, "Hello there."), Segment(2.5, 3604.04, "Two lines of text.")]
    assert parse_subtitles(srt) == expected
    assert parse_subtitles(vtt) == expected
    assert parse_subtitles("WEBVTT\n") == []


def test_a_malformed_timestamp_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError, match="malformed timestamp '00:xx:01,000'"):
        parse_subtitles("1\n00:xx:01,000 --> 00:00:02,000\nhi\n")


def test_a_json_transcript_without_text_is_a_format_error(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(JSONResponse({"duration": 1.0}))
    with pytest.raises(ResponseFormatError, match="answered no 'text'"):
        make_media().transcribe(fake_audio("x"))
