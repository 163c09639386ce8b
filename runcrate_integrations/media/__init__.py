"""Runcrate's media endpoints, for both adapters: images, speech, transcription and video.

:class:`MediaClient` makes the calls (sync and async) through the package's one request loop;
:class:`MediaSettings` and the single-endpoint settings classes are the settings spec every
media class of LangChain and LlamaIndex derives from; :mod:`.tools` is what their tools do.

Example::

    from runcrate_integrations.media import MediaSettings

    media = MediaSettings().media                       # key from RUNCRATE_API_KEY
    media.generate_image("a lighthouse at dusk").image.save("lighthouse.png")
    print(media.transcribe("meeting.mp3").text)

Layout: :mod:`.images`, :mod:`.audio` (speech and transcription), :mod:`.video` (jobs and
polling) hold each endpoint's bodies, checks and answers; :mod:`.client` sends them;
:mod:`.settings` is the spec; :mod:`.accounting` is where usage is counted.
"""

from __future__ import annotations

from .audio import (
    AUDIO_FORMATS,
    MAX_AUDIO_BYTES,
    SPEECH_FORMATS,
    TRANSCRIPT_FORMATS,
    Segment,
    SpeechAudio,
    Transcript,
    parse_subtitles,
)
from .client import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_SPEECH_MODEL,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VIDEO_MODEL,
    MediaClient,
    MediaModels,
)
from .images import IMAGE_FORMATS, GeneratedImage, ImageResult
from .settings import (
    DEFAULT_MAX_DURATION,
    ImageSettings,
    MediaSettings,
    SpeechSettings,
    TranscriptDocumentSettings,
    TranscriptionSettings,
    VideoSettings,
)
from .video import DEFAULT_WAIT, PollPolicy, Video, VideoJob

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_MAX_DURATION",
    "DEFAULT_SPEECH_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DEFAULT_VIDEO_MODEL",
    "DEFAULT_WAIT",
    "IMAGE_FORMATS",
    "MAX_AUDIO_BYTES",
    "SPEECH_FORMATS",
    "TRANSCRIPT_FORMATS",
    "GeneratedImage",
    "ImageResult",
    "ImageSettings",
    "MediaClient",
    "MediaModels",
    "MediaSettings",
    "PollPolicy",
    "Segment",
    "SpeechAudio",
    "SpeechSettings",
    "Transcript",
    "TranscriptDocumentSettings",
    "TranscriptionSettings",
    "Video",
    "VideoJob",
    "VideoSettings",
    "parse_subtitles",
]
