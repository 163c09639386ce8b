"""``POST /audio/speech`` (text in, audio bytes out) and ``POST /audio/transcriptions``
(audio in, text out): bodies, audio inputs and answers, checked and read here once.

Audio in is a path, bytes, a binary file object, or an ``http(s)://`` URL (downloaded first,
without the key when on another host). It is checked before anything is sent: it exists, is
readable, is not empty, is at most :data:`MAX_AUDIO_BYTES`, and is one of
:data:`AUDIO_FORMATS` (by its file name, else by its first bytes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .common import (
    Check,
    JSONDict,
    build_body,
    check_choice,
    check_prompt,
    check_text,
    format_error,
    human_size,
)

SPEECH_PATH = "/audio/speech"
TRANSCRIPTIONS_PATH = "/audio/transcriptions"
SPEECH_FORMATS = ("mp3", "pcm")
TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt")
#: The audio formats Runcrate transcribes (a file's extension, or what its bytes say).
AUDIO_FORMATS = ("mp3", "wav", "m4a", "flac", "ogg", "webm", "mp4")
#: The largest audio file sent for transcription: 25 MiB (OpenAI's limit, which Runcrate's
#: compatible endpoint is documented to follow); split longer recordings first.
MAX_AUDIO_BYTES = 25 * 1024 * 1024

AUDIO_MIME = {
    "mp3": "audio/mpeg",
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "mp4": "audio/mp4",
}
_FORMAT_OF_MIME = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/pcm": "pcm",
    "audio/l16": "pcm",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/flac": "flac",
    "audio/aac": "aac",
    "audio/webm": "webm",
}
_LANGUAGE = re.compile(r"^[a-z]{2}$")

#: What can be transcribed: a path, bytes, a binary file object or an http(s) URL.
AudioInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def check_language(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ValueError(
            f"{name} must be an ISO-639-1 code of two lower-case letters (e.g. 'en'), got {value!r}"
        )


SPEECH_CHECKS: dict[str, Check] = {
    "voice": check_text,
    "response_format": check_choice(*SPEECH_FORMATS),
}
TRANSCRIPTION_CHECKS: dict[str, Check] = {
    "language": check_language,
    "response_format": check_choice(*TRANSCRIPT_FORMATS),
    "prompt": check_text,
}


def speech_body(
    model: str, text: str, params: Mapping[str, Any], extra_body: Mapping[str, Any] | None
) -> JSONDict:
    """The checked ``/audio/speech`` body."""
    check_text("model", model)
    check_prompt("text", text)
    return build_body({"model": model, "input": text}, params, extra_body, SPEECH_CHECKS)


@dataclass(frozen=True)
class SpeechAudio:
    """Audio made from text: the bytes, their format (``mp3``, ``pcm``; PCM is 16-bit
    little-endian mono) and type, the model, and how many characters were spoken.

    Example::

        audio = media.speech("Hello there.")
        Path(f"hello.{audio.format}").write_bytes(audio.data)
    """

    data: bytes = field(repr=False)
    format: str
    mime_type: str
    model: str
    characters: int

    def describe(self) -> str:
        return f"{self.format.upper()} audio, {human_size(len(self.data))}"


def speech_answer(
    content: bytes, content_type: str | None, asked: str | None, model: str, text: str
) -> SpeechAudio:
    """The audio of a 2xx ``/audio/speech`` answer; JSON or an empty body is not audio."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind.startswith(("application/json", "text/")):
        raise format_error(f"/audio/speech answered {kind!r} instead of audio: {content[:200]!r}")
    if not content:
        raise format_error("/audio/speech answered an empty body instead of audio")
    fmt = _FORMAT_OF_MIME.get(kind) or asked or "mp3"
    mime = kind if kind.startswith("audio/") else AUDIO_MIME.get(fmt, "application/octet-stream")
    return SpeechAudio(content, fmt, mime, model, len(text))


# ---------------------------------------------------------------------------- audio in


@dataclass(frozen=True)
class AudioFile:
    """Audio ready to upload: its file name (the format's extension), bytes and type."""

    name: str
    data: bytes = field(repr=False)
    format: str

    @property
    def mime_type(self) -> str:
        return AUDIO_MIME.get(self.format, "application/octet-stream")

    def upload(self) -> tuple[str, bytes, str]:
        """openai's ``files=`` entry."""
        return (self.name, self.data, self.mime_type)


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def _sniff(data: bytes) -> str | None:
    head = data[:16]
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "webm"
    if head[4:8] == b"ftyp":
        return "m4a" if head[8:11] == b"M4A" else "mp4"
    return None


def _format_of(name: str | None, data: bytes) -> str:
    suffix = Path(name).suffix.lower().lstrip(".") if name else ""
    if suffix:
        if suffix not in AUDIO_FORMATS:
            raise ValueError(
                f"audio file {name!r}: .{suffix} is not a format Runcrate transcribes "
                f"({', '.join(AUDIO_FORMATS)})"
            )
        return suffix
    found = _sniff(data)
    if found is None:
        raise ValueError(
            "cannot tell the audio format of these bytes: pass filename='x.mp3' (formats: "
            f"{', '.join(AUDIO_FORMATS)})"
        )
    return found


def _check_size(size: int, what: str) -> None:
    if size == 0:
        raise ValueError(f"{what} is empty")
    if size > MAX_AUDIO_BYTES:
        raise ValueError(
            f"{what} is {human_size(size)}, over the {human_size(MAX_AUDIO_BYTES)} upload limit; "
            "split it into shorter files"
        )


def audio_file(source: AudioInput, filename: str | None = None) -> AudioFile:
    """Read and check local audio (a path, bytes or a file object; not a URL)."""
    if filename is not None and not isinstance(filename, str):
        raise TypeError(f"filename must be a string, got {type(filename).__name__}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data), "the audio")
        name = filename
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ValueError(f"audio path {str(path)!r} is not a file")
            _check_size(size, f"audio file {str(path)!r}")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"audio file {str(path)!r} does not exist") from None
        except OSError as exc:
            raise ValueError(
                f"audio file {str(path)!r} cannot be read: {exc.strerror or exc}"
            ) from None
        name = filename or path.name
    elif hasattr(source, "read"):
        data = source.read(MAX_AUDIO_BYTES + 1)
        if not isinstance(data, bytes):
            raise TypeError("the audio file object must be opened in binary mode ('rb')")
        _check_size(len(data), "the audio file object")
        given = getattr(source, "name", None)
        name = filename or (Path(given).name if isinstance(given, str) else None)
    else:
        raise TypeError(
            "audio must be a path, bytes, a binary file object or an http(s) URL, "
            f"got {type(source).__name__}"
        )
    fmt = _format_of(name, data)
    return AudioFile(name or f"audio.{fmt}", data, fmt)


def downloaded_audio(url: str, content: bytes, content_type: str | None) -> AudioFile:
    """Check audio fetched from ``url``; its name is the URL's last part (or the type's)."""
    _check_size(len(content), f"the audio at {url}")
    name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or None
    if name and Path(name).suffix.lower().lstrip(".") not in AUDIO_FORMATS:
        kind = (content_type or "").split(";")[0].strip().lower()
        fmt = _FORMAT_OF_MIME.get(kind) or _sniff(content)
        name = f"{name}.{fmt}" if fmt in AUDIO_FORMATS else None
    fmt = _format_of(name, content)
    return AudioFile(name or f"audio.{fmt}", content, fmt)


def transcription_fields(
    model: str, params: Mapping[str, Any], extra_body: Mapping[str, Any] | None
) -> JSONDict:
    """The multipart fields besides the file, checked."""
    check_text("model", model)
    fields = build_body({"model": model}, params, extra_body, TRANSCRIPTION_CHECKS)
    if "file" in fields:
        raise ValueError("extra_body must not set 'file'; pass the audio itself")
    return fields


# ---------------------------------------------------------------------------- transcripts


@dataclass(frozen=True)
class Segment:
    """One timed piece of a transcript (seconds from the start)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What ``transcribe`` heard: the text, the language and duration when the answer says
    them (``json``; for ``srt``/``vtt`` the duration is the end of the last cue), timed
    segments (``srt``/``vtt``, or a ``json`` answer that has them), the model and the source."""

    text: str
    model: str
    source: str
    language: str | None = None
    duration: float | None = None
    segments: tuple[Segment, ...] = ()
    format: str = "json"

    def metadata(self) -> JSONDict:
        """The metadata both frameworks put on a transcript's documents."""
        return {
            "source": self.source,
            "duration": self.duration,
            "language": self.language,
            "model": self.model,
        }

    def pieces(self, per_segment: bool = False) -> list[tuple[str, JSONDict]]:
        """``(text, metadata)`` of each document to make: one for the whole transcript, or
        one per timed segment (adding ``start``, ``end`` and ``segment``, its number)."""
        meta = self.metadata()
        if not per_segment:
            return [(self.text, meta)]
        return [
            (s.text, {**meta, "start": s.start, "end": s.end, "segment": i})
            for i, s in enumerate(self.segments)
            if s.text
        ]


_CUE = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_STAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})$")


def _seconds(stamp: str) -> float:
    match = _STAMP.match(stamp)
    if match is None:
        raise format_error(f"the transcript has a malformed timestamp {stamp!r}")
    hours, minutes, seconds, fraction = match.groups()
    return (
        int(hours or 0) * 3600
        + int(minutes) * 60
        + int(seconds)
        + int(fraction.ljust(3, "0")) / 1000
    )


def parse_subtitles(text: str) -> list[Segment]:
    """The cues of an SRT or WebVTT document, in order (numbers, ids, ``WEBVTT`` headers and
    ``NOTE``/``STYLE`` blocks skipped; cue tags such as ``<v Speaker>`` kept as text)."""
    segments: list[Segment] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            match = _CUE.match(line)
            if match is not None:
                body = " ".join(part.strip() for part in lines[i + 1 :] if part.strip())
                segments.append(Segment(_seconds(match[1]), _seconds(match[2]), body))
                break
    return segments


def parse_transcript(
    content: bytes, content_type: str | None, fmt: str, model: str, source: str
) -> Transcript:
    """A transcript from a 2xx answer in format ``fmt`` (``json``, ``text``, ``srt``, ``vtt``)."""
    text = content.decode("utf-8", "replace")
    if fmt == "json":
        import json

        try:
            data = json.loads(text)
        except ValueError:
            raise format_error(
                f"/audio/transcriptions answered malformed JSON: {text[:200]!r}"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise format_error(f"/audio/transcriptions answered no 'text': {text[:200]!r}")
        duration = data.get("duration")
        language = data.get("language")
        segments = tuple(
            Segment(float(s["start"]), float(s["end"]), str(s.get("text", "")).strip())
            for s in data.get("segments") or ()
            if isinstance(s, dict) and "start" in s
        )
        return Transcript(
            data["text"].strip(),
            model,
            source,
            language=language if isinstance(language, str) else None,
            duration=float(duration) if isinstance(duration, (int, float)) else None,
            segments=segments,
            format=fmt,
        )
    if (content_type or "").startswith("application/json"):
        raise format_error(
            f"/audio/transcriptions answered JSON to a {fmt!r} request: {text[:200]!r}"
        )
    if fmt == "text":
        return Transcript(text.strip(), model, source, format=fmt)
    segments = tuple(parse_subtitles(text))
    if not segments and text.strip():
        raise format_error(f"the {fmt} transcript has no cues: {text[:200]!r}")
    return Transcript(
        " ".join(s.text for s in segments if s.text),
        model,
        source,
        duration=segments[-1].end if segments else None,
        segments=segments,
        format=fmt,
    )
