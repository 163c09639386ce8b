"""What the media tools of both adapters do, decided once: their names and descriptions, the
arguments a model may give and the limits a developer sets, where a file is saved, and the
short text the model reads back (:class:`MediaOutcome`).

A tool's answer to the model is text: what was made, its size, where it was saved (only with
a ``save_dir``) and its URL; the bytes stay with the program (LangChain's artifact,
LlamaIndex's content blocks). Whether a vision model then sees the pixels is the chat rule of
:mod:`runcrate_integrations.chat.media`, the same in both frameworks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .audio import SpeechAudio, Transcript, is_url
from .client import MediaClient
from .images import ImageResult
from .settings import DEFAULT_MAX_DURATION
from .video import Video

IMAGE_TOOL = "generate_image"
SPEECH_TOOL = "text_to_speech"
VIDEO_TOOL = "generate_video"
TRANSCRIPTION_TOOL = "speech_to_text"
#: A developer's fixed parameters for every request of a tool (its ``extra_body``).
Extras = Mapping[str, Any] | None

IMAGE_DESCRIPTION = (
    "Draw a picture from a text description. Give a detailed `prompt` (subject, style, "
    "lighting); optionally an `aspect_ratio` such as '16:9', a `negative_prompt` (what to "
    "leave out) and a `seed` to repeat a result. Answers with the image's size, file and URL."
)
SPEECH_DESCRIPTION = (
    "Read text aloud: turn `text` into spoken audio, optionally in a `voice`. Answers with "
    "the audio's format, size and file."
)
TRANSCRIPTION_DESCRIPTION = (
    "Transcribe speech to text: `audio` is a local audio file path or an http(s) URL (mp3, "
    "wav, m4a, flac, ogg, webm or mp4). Answers with what was said."
)


class ImageToolArgs(BaseModel):
    """What a model may ask the image tool for (never keys or client settings)."""

    prompt: str = Field(description="What to draw, in detail: subject, style, lighting.")
    aspect_ratio: str | None = Field(
        default=None, description="Width to height, such as '16:9', '1:1' or '9:16'."
    )
    negative_prompt: str | None = Field(default=None, description="What to leave out.")
    seed: int | None = Field(default=None, ge=0, description="Repeat a result with its seed.")


class SpeechToolArgs(BaseModel):
    """What a model may ask the speech tool for."""

    text: str = Field(description="The text to read aloud.")
    voice: str | None = Field(
        default=None, description="A voice name; leave out for the default voice."
    )


class VideoToolArgs(BaseModel):
    """What a model may ask the video tool for (the developer caps ``duration``)."""

    prompt: str = Field(description="What the clip shows, in detail: subject, motion, style.")
    duration: float | None = Field(default=None, gt=0, description="Length in seconds.")
    aspect_ratio: str | None = Field(
        default=None, description="Width to height, such as '16:9' or '9:16'."
    )


class TranscriptionToolArgs(BaseModel):
    """What a model may ask the transcription tool for."""

    audio: str = Field(description="A local audio file path, or an http(s) URL of one.")


def video_description(max_duration: float) -> str:
    return (
        "Make a short video clip from a text description (takes a few minutes). Give a "
        f"detailed `prompt`; optionally a `duration` in seconds (at most {max_duration:g}) and "
        "an `aspect_ratio` such as '16:9'. Answers with the video's length, size and file."
    )


@dataclass(frozen=True)
class MediaOutcome:
    """What a media tool made: ``text`` for the model, the thing itself for the program."""

    text: str
    kind: str  # "image", "audio", "video" or "transcript"
    data: bytes | None = field(default=None, repr=False)
    mime_type: str | None = None
    url: str | None = None
    path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def artifact(self) -> dict[str, Any]:
        """A plain dict of everything (bytes included): LangChain's tool artifact."""
        return {
            "type": self.kind,
            "data": self.data,
            "mime_type": self.mime_type,
            "url": self.url,
            "path": self.path,
            **self.metadata,
        }


def save_bytes(data: bytes, save_dir: str | Path, kind: str, extension: str) -> Path:
    """Write ``data`` into ``save_dir`` (made if missing) as ``<kind>-<hash>.<ext>``: named
    by the content alone, so the same media is one file and a name says nothing else."""
    folder = Path(save_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = folder / f"{kind}-{digest}.{extension}"
    path.write_bytes(data)
    return path  # as the developer gave the folder: a relative save_dir stays relative


def check_duration(duration: float | None, max_duration: float) -> None:
    """A model's ``duration`` against the developer's cap (before anything is sent)."""
    if duration is not None and duration > max_duration:
        raise ValueError(
            f"duration {duration:g} s is over this tool's limit of {max_duration:g} s; ask "
            f"for {max_duration:g} s or less"
        )


# ---------------------------------------------------------------------------- outcomes


def image_outcome(result: ImageResult, save_dir: str | None, prompt: str) -> MediaOutcome:
    image = result.image
    path = (
        str(save_bytes(image.data, save_dir, "image", image.extension))
        if save_dir and image.data is not None
        else None
    )
    parts = [f"Made an image with {result.model}: {image.describe()}."]
    if path:
        parts.append(f"Saved to {path}.")
    if image.url and image.data is not None:
        parts.append(f"URL (temporary): {image.url}")
    meta = {"model": result.model, "prompt": prompt, "width": image.width, "height": image.height}
    return MediaOutcome(
        " ".join(parts), "image", image.data, image.mime_type, image.url, path, meta
    )


def speech_outcome(audio: SpeechAudio, save_dir: str | None) -> MediaOutcome:
    path = str(save_bytes(audio.data, save_dir, "speech", audio.format)) if save_dir else None
    parts = [f"Spoke {audio.characters} characters with {audio.model}: {audio.describe()}."]
    if path:
        parts.append(f"Saved to {path}.")
    meta = {"model": audio.model, "format": audio.format, "characters": audio.characters}
    return MediaOutcome(" ".join(parts), "audio", audio.data, audio.mime_type, None, path, meta)


def video_outcome(video: Video, save_dir: str | None) -> MediaOutcome:
    path = str(save_bytes(video.data, save_dir, "video", "mp4")) if save_dir else None
    model = video.job.model or "the video model"
    parts = [f"Made a video with {model} (job {video.job.id}): {video.describe()}."]
    if path:
        parts.append(f"Saved to {path}.")
    meta = {"model": video.job.model, "job_id": video.job.id, "duration": video.duration}
    return MediaOutcome(" ".join(parts), "video", video.data, video.mime_type, None, path, meta)


def transcript_outcome(transcript: Transcript) -> MediaOutcome:
    meta = {
        **transcript.metadata(),
        "text": transcript.text,
        "segments": [asdict(s) for s in transcript.segments],
    }
    return MediaOutcome(
        transcript.text or "(no speech heard)", "transcript", None, "text/plain", None, None, meta
    )


# ---------------------------------------------------------------------------- the tools


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """What the developer fixed for a tool (never the model's to choose)."""

    save_dir: str | None = None
    extra_body: Extras = None
    voice: str | None = None
    speech_format: str = "mp3"
    max_duration: float = DEFAULT_MAX_DURATION
    video_timeout: float | None = None
    language: str | None = None

    @classmethod
    def of(cls, owner: object) -> ToolSettings:
        """The settings a tool, toolkit or tool spec holds (the ones it has of these)."""
        names = [f for f in cls.__dataclass_fields__ if hasattr(owner, f)]
        return cls(**{name: getattr(owner, name) for name in names})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One media tool call, checked and ready: the client's method (sync and async), its
    arguments, and how its result reads to the model."""

    call: Callable[..., Any]
    acall: Callable[..., Awaitable[Any]]
    kwargs: dict[str, Any]
    outcome: Callable[[Any], MediaOutcome]

    def run(self) -> MediaOutcome:
        return self.outcome(self.call(**self.kwargs))

    async def arun(self) -> MediaOutcome:
        return self.outcome(await self.acall(**self.kwargs))


def tool_call(
    tool: str, media: MediaClient, args: Mapping[str, Any], settings: ToolSettings
) -> ToolCall:
    """The call a model's ``args`` for ``tool`` make, under the developer's ``settings``, for
    both frameworks alike. A duration over the cap raises ``ValueError`` before anything is
    sent."""
    save_dir, extra_body = settings.save_dir, settings.extra_body
    if tool == IMAGE_TOOL:
        prompt = args["prompt"]
        return ToolCall(
            media.generate_image,
            media.agenerate_image,
            {
                "prompt": prompt,
                "aspect_ratio": args.get("aspect_ratio"),
                "negative_prompt": args.get("negative_prompt"),
                "seed": args.get("seed"),
                "extra_body": extra_body,
            },
            lambda result: image_outcome(result, save_dir, prompt),
        )
    if tool == SPEECH_TOOL:
        return ToolCall(
            media.speech,
            media.aspeech,
            {
                "text": args["text"],
                "voice": args.get("voice") or settings.voice,
                "response_format": settings.speech_format,
                "extra_body": extra_body,
            },
            lambda audio: speech_outcome(audio, save_dir),
        )
    if tool == VIDEO_TOOL:
        check_duration(args.get("duration"), settings.max_duration)
        return ToolCall(
            media.generate_video,
            media.agenerate_video,
            {
                "prompt": args["prompt"],
                "duration": args.get("duration"),
                "aspect_ratio": args.get("aspect_ratio"),
                "timeout": settings.video_timeout,
                "extra_body": extra_body,
            },
            lambda video: video_outcome(video, save_dir),
        )
    if tool == TRANSCRIPTION_TOOL:
        audio = args["audio"]
        if isinstance(audio, str) and not is_url(audio):
            audio = str(Path(audio).expanduser())
        return ToolCall(
            media.transcribe,
            media.atranscribe,
            {"audio": audio, "language": settings.language},
            transcript_outcome,
        )
    raise ValueError(f"no media tool is named {tool!r}")
