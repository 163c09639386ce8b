"""The media part of the settings spec: every media class of both adapters derives from one
of these, so each option is declared (name, default, alias, check) once.

* :class:`MediaSettings`: one model per endpoint (``image_model``, ``speech_model``,
  ``video_model``, ``transcription_model``, each defaulting to Runcrate's catalog id) and the
  tools' options: for the classes that serve all four (LangChain's ``RuncrateToolkit``,
  LlamaIndex's ``RuncrateToolSpec``).
* :class:`ImageSettings`, :class:`SpeechSettings`, :class:`VideoSettings`,
  :class:`TranscriptionSettings`: one endpoint each, whose model is ``model`` (also accepted
  as that endpoint's ``*_model`` name), for single-endpoint classes (the LangChain tools, the
  transcription parser and reader).

Connection settings (key, URL, timeout, retries, ...) come from
:class:`~runcrate_integrations.config.Connection`, as for chat and embeddings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

from ..config import Connection
from ..net.clients import Clients
from ..net.transport import ErrorHook
from .audio import AudioInput, Transcript
from .client import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_SPEECH_MODEL,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VIDEO_MODEL,
    MediaClient,
    MediaModels,
)
from .video import DEFAULT_WAIT, PollPolicy

#: The longest video a model may ask a tool for, unless the developer sets ``max_duration``.
DEFAULT_MAX_DURATION = 8.0
#: One of :data:`~runcrate_integrations.media.audio.SPEECH_FORMATS`, as a type.
SpeechFormat = Literal["mp3", "pcm"]


def _model_field(default: str, endpoint: str) -> Any:
    return Field(
        default=default,
        min_length=1,
        validation_alias=AliasChoices("model", f"{endpoint}_model"),
        description=f"The {endpoint} model id (default {default!r}, Runcrate's catalog id).",
    )


class _Media(Connection):
    """Connection settings that build a :class:`MediaClient` (rebuilt when one changes)."""

    def _media_models(self) -> MediaModels:
        raise NotImplementedError

    def _error_hook(self) -> ErrorHook | None:
        """Turns the core's errors into the adapter's own classes (LangChain's dual ones)."""
        return None

    def _poll_policy(self) -> PollPolicy:
        return PollPolicy()

    def _derive(self) -> MediaClient:
        clients = Clients.of(self)
        return MediaClient(
            clients,
            self._media_models(),
            errors=self._error_hook(),
            deadline=self.deadline,
            poll=self._poll_policy(),
        )

    @property
    def media(self) -> MediaClient:
        """The core media client every request of this instance goes through."""
        media: MediaClient = self._state
        return media


class _Saving(BaseModel):
    save_dir: str | None = Field(
        default=None,
        description="Folder to save what a tool makes in (created if needed); None writes "
        "nothing to disk.",
    )


class _Extras(BaseModel):
    extra_body: dict[str, Any] | None = Field(
        default=None,
        description="Parameters sent with every request of this tool, checked like the named "
        "ones (e.g. {'num_inference_steps': 4, 'width': 1024}, or a model's own extras).",
    )


class _Voice(BaseModel):
    voice: str | None = Field(
        default=None, description="The voice to speak with (None: the model's default)."
    )
    speech_format: SpeechFormat = Field(
        default="mp3", description="Audio format of speech: 'mp3' or 'pcm' (16-bit mono)."
    )


class _VideoLimits(BaseModel):
    max_duration: float = Field(
        default=DEFAULT_MAX_DURATION,
        gt=0,
        description="The longest video (seconds) a model may ask for; videos are billed per "
        "second.",
    )
    video_timeout: float = Field(
        default=DEFAULT_WAIT,
        gt=0,
        description="Seconds to wait for a video job before raising JobTimeoutError (the job "
        "goes on; its id is on the error).",
    )
    poll_interval: float = Field(
        default=PollPolicy().first,
        gt=0,
        description="Seconds before the first look at a video job; later looks back off to at "
        f"most {PollPolicy().most:g} s apart.",
    )

    def _poll_policy(self) -> PollPolicy:
        return PollPolicy(first=self.poll_interval, most=max(self.poll_interval, PollPolicy().most))


class _Language(BaseModel):
    language: str | None = Field(
        default=None, description="ISO-639-1 hint for transcription, e.g. 'en'."
    )


class MediaSettings(_VideoLimits, _Voice, _Language, _Saving, _Media):
    """Every media endpoint, one model each (Runcrate's catalog ids by default)."""

    image_model: str = Field(
        default=DEFAULT_IMAGE_MODEL, min_length=1, description="Model for images."
    )
    speech_model: str = Field(
        default=DEFAULT_SPEECH_MODEL, min_length=1, description="Model for text to speech."
    )
    video_model: str = Field(
        default=DEFAULT_VIDEO_MODEL, min_length=1, description="Model for video."
    )
    transcription_model: str = Field(
        default=DEFAULT_TRANSCRIPTION_MODEL, min_length=1, description="Model for speech to text."
    )

    def _media_models(self) -> MediaModels:
        return MediaModels(
            self.image_model, self.speech_model, self.video_model, self.transcription_model
        )


class ImageSettings(_Extras, _Saving, _Media):
    """One image model (``model``, also ``image_model``)."""

    model: str = _model_field(DEFAULT_IMAGE_MODEL, "image")

    def _media_models(self) -> MediaModels:
        return MediaModels(image=self.model)


class SpeechSettings(_Extras, _Voice, _Saving, _Media):
    """One speech model (``model``, also ``speech_model``) and its voice and format."""

    model: str = _model_field(DEFAULT_SPEECH_MODEL, "speech")

    def _media_models(self) -> MediaModels:
        return MediaModels(speech=self.model)


class VideoSettings(_Extras, _VideoLimits, _Saving, _Media):
    """One video model (``model``, also ``video_model``) and the developer's limits."""

    model: str = _model_field(DEFAULT_VIDEO_MODEL, "video")

    def _media_models(self) -> MediaModels:
        return MediaModels(video=self.model)


class TranscriptionSettings(_Language, _Media):
    """One transcription model (``model``, also ``transcription_model``)."""

    model: str = _model_field(DEFAULT_TRANSCRIPTION_MODEL, "transcription")

    def _media_models(self) -> MediaModels:
        return MediaModels(transcription=self.model)


class TranscriptDocumentSettings(TranscriptionSettings):
    """:class:`TranscriptionSettings` for the classes that turn audio into documents
    (LangChain's parser, LlamaIndex's reader): one document per file, or per timed segment."""

    segments: bool = Field(
        default=False,
        description="One document per timed segment (the transcript is asked for as WebVTT "
        "and its cues parsed) instead of one per file.",
    )

    def _format(self) -> str:
        return "vtt" if self.segments else "json"

    def _pieces(self, transcript: Transcript) -> list[tuple[str, dict[str, Any]]]:
        if transcript.language is None and self.language is not None:
            transcript = replace(transcript, language=self.language)  # what was asked for
        return transcript.pieces(self.segments)

    def transcribe_pieces(
        self, audio: AudioInput, filename: str | None = None, source: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(text, metadata)`` of each document for ``audio``."""
        transcript = self.media.transcribe(
            audio, language=self.language, response_format=self._format(), filename=filename
        )
        if source is not None:
            transcript = replace(transcript, source=source)
        return self._pieces(transcript)

    async def atranscribe_pieces(
        self, audio: AudioInput, filename: str | None = None, source: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Async twin of :meth:`transcribe_pieces`."""
        transcript = await self.media.atranscribe(
            audio, language=self.language, response_format=self._format(), filename=filename
        )
        if source is not None:
            transcript = replace(transcript, source=source)
        return self._pieces(transcript)
