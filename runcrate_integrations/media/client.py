""":class:`MediaClient`: Runcrate's media endpoints through the one request loop, sync and
async alike. Each call is planned (checked, body built: nothing sent on a bad argument), sent
through :mod:`runcrate_integrations.net.transport` (auth, pacing shared with chat, retries,
deadline, typed errors) and finished (answer read, usage accounted); the sync and async
methods share the plan and the finish and differ only in what they await.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..net import transport
from ..net.clients import Clients
from ..net.transport import ErrorHook, Request, translating
from . import accounting
from .audio import (
    SPEECH_PATH,
    TRANSCRIPTIONS_PATH,
    AudioFile,
    AudioInput,
    SpeechAudio,
    Transcript,
    audio_file,
    downloaded_audio,
    is_url,
    parse_transcript,
    speech_answer,
    speech_body,
    transcription_fields,
)
from .images import IMAGES_PATH, GeneratedImage, ImageResult, image_body, parse_images
from .jobs import VideoCalls, _Plan
from .video import PollPolicy

DEFAULT_IMAGE_MODEL = "black-forest-labs/FLUX.1-schnell"
DEFAULT_SPEECH_MODEL = "hexgrad/Kokoro-82M"
DEFAULT_VIDEO_MODEL = "google/veo-3.0"
DEFAULT_TRANSCRIPTION_MODEL = "openai/whisper-large-v3"


@dataclass(frozen=True, slots=True)
class MediaModels:
    """The model of each endpoint (Runcrate's catalog ids by default)."""

    image: str = DEFAULT_IMAGE_MODEL
    speech: str = DEFAULT_SPEECH_MODEL
    video: str = DEFAULT_VIDEO_MODEL
    transcription: str = DEFAULT_TRANSCRIPTION_MODEL


class MediaClient(VideoCalls):
    """Images, speech, transcription and video for one configuration; what every media class
    of both adapters holds.

    Example::

        media = MediaClient(Clients(ClientSettings.resolve()))
        media.generate_image("a lighthouse at dusk", aspect_ratio="16:9").image.save("l.png")
        text = (await media.atranscribe("meeting.mp3")).text
        video = media.generate_video("waves on a beach", duration=4)
    """

    __slots__ = ("clients", "deadline", "errors", "models", "poll")

    def __init__(
        self,
        clients: Clients,
        models: MediaModels | None = None,
        *,
        errors: ErrorHook | None = None,
        deadline: float | None = None,
        poll: PollPolicy | None = None,
    ) -> None:
        self.clients = clients
        self.models = models or MediaModels()
        self.errors = errors
        self.deadline = deadline
        self.poll = poll or PollPolicy()

    def __repr__(self) -> str:
        return f"MediaClient({self.clients!r}, {self.models!r})"

    def _request(
        self, method: str, path: str, deadline: float | None = None, **kwargs: Any
    ) -> Request:
        """A request bounded by ``deadline``, else by a new one from the settings' seconds
        (one per call: a call's later requests, downloads, pass theirs on)."""
        if deadline is None:
            deadline = transport.deadline_in(self.deadline)
        return Request(method, path, deadline=deadline, **kwargs)

    def _fetch(self, url: str, plan: _Plan) -> Request:
        """The download of a file an answer named (another host: no key, no pacing)."""
        return self._request("GET", url, plan.request.deadline)

    # ------------------------------------------------------------------ images

    def _image_plan(
        self,
        prompt: str,
        model: str | None,
        params: Mapping[str, Any],
        extra_body: Mapping[str, Any] | None,
    ) -> _Plan:
        model = self.models.image if model is None else model
        body = image_body(model, prompt, params, extra_body)
        count = body.get("n")
        images = count if isinstance(count, int) and count >= 1 else 1
        request = self._request("POST", IMAGES_PATH, body=body, billed=True)
        return _Plan(request, model, IMAGES_PATH, most={"images": images})

    def _images_done(
        self, plan: _Plan, answer: Mapping[str, Any], images: list[GeneratedImage]
    ) -> ImageResult:
        created = answer.get("created")
        accounting._account(self.clients, plan.model, endpoint=plan.endpoint, images=len(images))
        return ImageResult(tuple(images), plan.model, created if isinstance(created, int) else None)

    def generate_image(
        self,
        prompt: str,
        *,
        model: str | None = None,
        width: int | None = None,
        height: int | None = None,
        aspect_ratio: str | None = None,
        num_inference_steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        negative_prompt: str | None = None,
        response_format: str | None = None,
        download: bool = True,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageResult:
        """Make an image. ``response_format`` ``"url"`` or ``"b64_json"`` (unset: the
        server's default); a URL answer is downloaded when ``download`` (without the key if
        it is on another host). ``extra_body``: a model's own parameters, sent as given."""
        params = {
            "width": width,
            "height": height,
            "aspect_ratio": aspect_ratio,
            "num_inference_steps": num_inference_steps,
            "guidance": guidance,
            "seed": seed,
            "negative_prompt": negative_prompt,
            "response_format": response_format,
        }
        with translating(self.errors):
            plan = self._image_plan(prompt, model, params, extra_body)
            with self._spending(plan):
                answer = transport.send_json(self.clients, plan.request)
                images = []
                for raw, url in parse_images(answer):
                    fetched = None
                    if raw is None and download and url is not None:
                        fetched = transport.send(self.clients, self._fetch(url, plan))
                    images.append(_image(raw, url, fetched))
                return self._images_done(plan, answer, images)

    async def agenerate_image(
        self,
        prompt: str,
        *,
        model: str | None = None,
        width: int | None = None,
        height: int | None = None,
        aspect_ratio: str | None = None,
        num_inference_steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        negative_prompt: str | None = None,
        response_format: str | None = None,
        download: bool = True,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageResult:
        """Async twin of :meth:`generate_image`."""
        params = {
            "width": width,
            "height": height,
            "aspect_ratio": aspect_ratio,
            "num_inference_steps": num_inference_steps,
            "guidance": guidance,
            "seed": seed,
            "negative_prompt": negative_prompt,
            "response_format": response_format,
        }
        with translating(self.errors):
            plan = self._image_plan(prompt, model, params, extra_body)
            with self._spending(plan):
                answer = await transport.asend_json(self.clients, plan.request)
                images = []
                for raw, url in parse_images(answer):
                    fetched = None
                    if raw is None and download and url is not None:
                        fetched = await transport.asend(self.clients, self._fetch(url, plan))
                    images.append(_image(raw, url, fetched))
                return self._images_done(plan, answer, images)

    # ------------------------------------------------------------------ speech

    def _speech_plan(
        self,
        text: str,
        model: str | None,
        voice: str | None,
        response_format: str | None,
        extra_body: Mapping[str, Any] | None,
    ) -> _Plan:
        model = self.models.speech if model is None else model
        body = speech_body(
            model, text, {"voice": voice, "response_format": response_format}, extra_body
        )
        request = self._request("POST", SPEECH_PATH, body=body, billed=True)
        asked = (text, body.get("response_format"))
        return _Plan(request, model, SPEECH_PATH, asked, {"speech_characters": len(text)})

    def _speech_done(self, plan: _Plan, response: Any) -> SpeechAudio:
        text, fmt = plan.asked
        audio = speech_answer(
            response.content, response.headers.get("content-type"), fmt, plan.model, text
        )
        accounting._account(
            self.clients, plan.model, endpoint=plan.endpoint, speech_characters=audio.characters
        )
        return audio

    def speech(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        response_format: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SpeechAudio:
        """Speak ``text``: the audio bytes and their format (``mp3`` or ``pcm``)."""
        with translating(self.errors):
            plan = self._speech_plan(text, model, voice, response_format, extra_body)
            with self._spending(plan):
                return self._speech_done(plan, transport.send(self.clients, plan.request))

    async def aspeech(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        response_format: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SpeechAudio:
        """Async twin of :meth:`speech`."""
        with translating(self.errors):
            plan = self._speech_plan(text, model, voice, response_format, extra_body)
            with self._spending(plan):
                return self._speech_done(plan, await transport.asend(self.clients, plan.request))

    # ------------------------------------------------------------------ transcription

    def _transcription_fields(
        self,
        model: str | None,
        language: str | None,
        response_format: str | None,
        extra_body: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any]]:
        model = self.models.transcription if model is None else model
        params = {"language": language, "response_format": response_format}
        return model, transcription_fields(model, params, extra_body)

    def _transcription_plan(
        self,
        model: str,
        fields: dict[str, Any],
        audio: AudioFile,
        source: str,
        deadline: float | None,
    ) -> _Plan:
        request = self._request(
            "POST", TRANSCRIPTIONS_PATH, deadline, body=fields, files={"file": audio.upload()}
        )
        asked = (fields.get("response_format") or "json", source)
        return _Plan(request, model, TRANSCRIPTIONS_PATH, asked, {"audio_seconds": None})

    def _transcribed(self, plan: _Plan, response: Any) -> Transcript:
        fmt, source = plan.asked
        transcript = parse_transcript(
            response.content, response.headers.get("content-type"), fmt, plan.model, source
        )
        accounting._account(
            self.clients,
            plan.model,
            endpoint=plan.endpoint,
            audio_seconds=transcript.duration or 0.0,
        )
        return transcript

    def transcribe(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        response_format: str | None = None,
        filename: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Transcript:
        """Transcribe ``audio`` (a path, bytes, a binary file object or an http(s) URL);
        ``response_format`` ``json`` (default), ``text``, ``srt`` or ``vtt`` (timed
        segments); ``language`` an ISO-639-1 hint."""
        with translating(self.errors):
            model, fields = self._transcription_fields(model, language, response_format, extra_body)
            deadline = transport.deadline_in(self.deadline)
            if is_url(audio):
                url = str(audio)
                fetched = transport.send(self.clients, self._request("GET", url, deadline))
                upload = downloaded_audio(url, fetched.content, fetched.headers.get("content-type"))
                source = url
            else:
                upload = audio_file(audio, filename)
                source = _source_of(audio, upload)
            plan = self._transcription_plan(model, fields, upload, source, deadline)
            with self._spending(plan):
                return self._transcribed(plan, transport.send(self.clients, plan.request))

    async def atranscribe(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        response_format: str | None = None,
        filename: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Transcript:
        """Async twin of :meth:`transcribe` (a local file is read in this thread: it is
        small, at most 25 MiB)."""
        with translating(self.errors):
            model, fields = self._transcription_fields(model, language, response_format, extra_body)
            deadline = transport.deadline_in(self.deadline)
            if is_url(audio):
                url = str(audio)
                fetched = await transport.asend(self.clients, self._request("GET", url, deadline))
                upload = downloaded_audio(url, fetched.content, fetched.headers.get("content-type"))
                source = url
            else:
                upload = audio_file(audio, filename)
                source = _source_of(audio, upload)
            plan = self._transcription_plan(model, fields, upload, source, deadline)
            with self._spending(plan):
                answer = await transport.asend(self.clients, plan.request)
                return self._transcribed(plan, answer)


def _image(raw: bytes | None, url: str | None, fetched: Any) -> GeneratedImage:
    """An answer's image: its inline bytes, the download of its URL, or the URL alone."""
    if fetched is not None:
        return GeneratedImage.from_bytes(fetched.content, url, fetched.headers.get("content-type"))
    if raw is not None:
        return GeneratedImage.from_bytes(raw, url)
    return GeneratedImage(None, url)


def _source_of(audio: AudioInput, upload: AudioFile) -> str:
    """How a transcript names its audio: the path given, else the upload's file name."""
    if isinstance(audio, (str, os.PathLike)):
        return os.fspath(audio)
    return upload.name
