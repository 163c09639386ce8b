""":class:`MediaClient`: Runcrate's media endpoints through the one request loop, sync and
async alike. Each call is planned (checked, body built: nothing sent on a bad argument), sent
through :mod:`runcrate_integrations.net.transport` (auth, pacing shared with chat, retries,
deadline, typed errors) and finished (answer read, usage accounted); the sync and async
methods share the plan and the finish and differ only in what they await.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..net import transport
from ..net.clients import Clients
from ..net.ratelimit import read_rate_limit
from ..net.transport import ErrorHook, Request, translating
from .accounting import _account, _before_spend
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
from .video import (
    DEFAULT_WAIT,
    VIDEOS_PATH,
    PollPolicy,
    Video,
    VideoJob,
    Waiting,
    job_path,
    video_body,
)

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


@dataclass(frozen=True, slots=True)
class _Plan:
    """A checked request and what finishing it needs."""

    request: Request
    model: str
    endpoint: str
    asked: Any = None  # the format asked for, the text spoken, the audio's name...


def _retry_after(response: Any) -> float | None:
    state = read_rate_limit(response.headers)
    return state["retry_after"] if state is not None else None


class MediaClient:
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
        models: MediaModels = MediaModels(),
        *,
        errors: ErrorHook | None = None,
        deadline: float | None = None,
        poll: PollPolicy | None = None,
    ) -> None:
        self.clients = clients
        self.models = models
        self.errors = errors
        self.deadline = deadline
        self.poll = poll or PollPolicy()

    def __repr__(self) -> str:
        return f"MediaClient({self.clients!r}, {self.models!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> Request:
        return Request(method, path, deadline=transport.deadline_in(self.deadline), **kwargs)

    # ------------------------------------------------------------------ images

    def _image_plan(self, prompt: str, model: str | None, params: Mapping[str, Any],
                    extra_body: Mapping[str, Any] | None) -> _Plan:
        model = self.models.image if model is None else model
        body = image_body(model, prompt, params, extra_body)
        return _Plan(self._request("POST", IMAGES_PATH, body=body, billed=True), model,
                     IMAGES_PATH)

    def _images_done(self, plan: _Plan, answer: Mapping[str, Any],
                     images: list[GeneratedImage]) -> ImageResult:
        created = answer.get("created")
        _account(self.clients, plan.model, endpoint=plan.endpoint, images=len(images))
        return ImageResult(tuple(images), plan.model,
                           created if isinstance(created, int) else None)

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
        params = {"width": width, "height": height, "aspect_ratio": aspect_ratio,
                  "num_inference_steps": num_inference_steps, "guidance": guidance,
                  "seed": seed, "negative_prompt": negative_prompt,
                  "response_format": response_format}
        with translating(self.errors):
            plan = self._image_plan(prompt, model, params, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            answer = transport.send_json(self.clients, plan.request)
            images = []
            for raw, url in parse_images(answer):
                if raw is None and download and url is not None:
                    fetched = transport.send(self.clients, self._request("GET", url))
                    raw = fetched.content
                    kind = fetched.headers.get("content-type")
                    images.append(GeneratedImage.from_bytes(raw, url, kind))
                else:
                    images.append(GeneratedImage.from_bytes(raw, url) if raw is not None
                                  else GeneratedImage(None, url))
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
        params = {"width": width, "height": height, "aspect_ratio": aspect_ratio,
                  "num_inference_steps": num_inference_steps, "guidance": guidance,
                  "seed": seed, "negative_prompt": negative_prompt,
                  "response_format": response_format}
        with translating(self.errors):
            plan = self._image_plan(prompt, model, params, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            answer = await transport.asend_json(self.clients, plan.request)
            images = []
            for raw, url in parse_images(answer):
                if raw is None and download and url is not None:
                    fetched = await transport.asend(self.clients, self._request("GET", url))
                    raw = fetched.content
                    kind = fetched.headers.get("content-type")
                    images.append(GeneratedImage.from_bytes(raw, url, kind))
                else:
                    images.append(GeneratedImage.from_bytes(raw, url) if raw is not None
                                  else GeneratedImage(None, url))
            return self._images_done(plan, answer, images)

    # ------------------------------------------------------------------ speech

    def _speech_plan(self, text: str, model: str | None, voice: str | None,
                     response_format: str | None, extra_body: Mapping[str, Any] | None) -> _Plan:
        model = self.models.speech if model is None else model
        body = speech_body(model, text, {"voice": voice, "response_format": response_format},
                           extra_body)
        request = self._request("POST", SPEECH_PATH, body=body, billed=True)
        return _Plan(request, model, SPEECH_PATH, (text, body.get("response_format")))

    def _speech_done(self, plan: _Plan, response: Any) -> SpeechAudio:
        text, fmt = plan.asked
        audio = speech_answer(response.content, response.headers.get("content-type"), fmt,
                              plan.model, text)
        _account(self.clients, plan.model, endpoint=plan.endpoint,
                 speech_characters=audio.characters)
        return audio

    def speech(self, text: str, *, model: str | None = None, voice: str | None = None,
               response_format: str | None = None,
               extra_body: Mapping[str, Any] | None = None) -> SpeechAudio:
        """Speak ``text``: the audio bytes and their format (``mp3`` or ``pcm``)."""
        with translating(self.errors):
            plan = self._speech_plan(text, model, voice, response_format, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            return self._speech_done(plan, transport.send(self.clients, plan.request))

    async def aspeech(self, text: str, *, model: str | None = None, voice: str | None = None,
                      response_format: str | None = None,
                      extra_body: Mapping[str, Any] | None = None) -> SpeechAudio:
        """Async twin of :meth:`speech`."""
        with translating(self.errors):
            plan = self._speech_plan(text, model, voice, response_format, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            return self._speech_done(plan, await transport.asend(self.clients, plan.request))

    # ------------------------------------------------------------------ transcription

    def _transcription_fields(self, model: str | None, language: str | None,
                              response_format: str | None,
                              extra_body: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        model = self.models.transcription if model is None else model
        params = {"language": language, "response_format": response_format}
        return model, transcription_fields(model, params, extra_body)

    def _transcription_plan(self, model: str, fields: dict[str, Any], audio: AudioFile,
                            source: str) -> _Plan:
        request = self._request("POST", TRANSCRIPTIONS_PATH, body=fields,
                                files={"file": audio.upload()})
        return _Plan(request, model, TRANSCRIPTIONS_PATH,
                     (fields.get("response_format") or "json", source))

    def _transcribed(self, plan: _Plan, response: Any) -> Transcript:
        fmt, source = plan.asked
        transcript = parse_transcript(response.content, response.headers.get("content-type"),
                                      fmt, plan.model, source)
        _account(self.clients, plan.model, endpoint=plan.endpoint,
                 audio_seconds=transcript.duration or 0.0)
        return transcript

    def transcribe(self, audio: AudioInput, *, model: str | None = None,
                   language: str | None = None, response_format: str | None = None,
                   filename: str | None = None,
                   extra_body: Mapping[str, Any] | None = None) -> Transcript:
        """Transcribe ``audio`` (a path, bytes, a binary file object or an http(s) URL);
        ``response_format`` ``json`` (default), ``text``, ``srt`` or ``vtt`` (timed
        segments); ``language`` an ISO-639-1 hint."""
        with translating(self.errors):
            model, fields = self._transcription_fields(model, language, response_format,
                                                       extra_body)
            if is_url(audio):
                url = str(audio)
                fetched = transport.send(self.clients, self._request("GET", url))
                upload = downloaded_audio(url, fetched.content,
                                          fetched.headers.get("content-type"))
                source = url
            else:
                upload = audio_file(audio, filename)
                source = _source_of(audio, upload)
            plan = self._transcription_plan(model, fields, upload, source)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            return self._transcribed(plan, transport.send(self.clients, plan.request))

    async def atranscribe(self, audio: AudioInput, *, model: str | None = None,
                          language: str | None = None, response_format: str | None = None,
                          filename: str | None = None,
                          extra_body: Mapping[str, Any] | None = None) -> Transcript:
        """Async twin of :meth:`transcribe` (a local file is read in this thread: it is
        small, at most 25 MiB)."""
        with translating(self.errors):
            model, fields = self._transcription_fields(model, language, response_format,
                                                       extra_body)
            if is_url(audio):
                url = str(audio)
                fetched = await transport.asend(self.clients, self._request("GET", url))
                upload = downloaded_audio(url, fetched.content,
                                          fetched.headers.get("content-type"))
                source = url
            else:
                upload = audio_file(audio, filename)
                source = _source_of(audio, upload)
            plan = self._transcription_plan(model, fields, upload, source)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            answer = await transport.asend(self.clients, plan.request)
            return self._transcribed(plan, answer)

    # ------------------------------------------------------------------ video

    def _video_plan(self, prompt: str, model: str | None, params: Mapping[str, Any],
                    extra_body: Mapping[str, Any] | None) -> _Plan:
        model = self.models.video if model is None else model
        body = video_body(model, prompt, params, extra_body)
        return _Plan(self._request("POST", VIDEOS_PATH, body=body, billed=True), model,
                     VIDEOS_PATH, body.get("duration"))

    def _submitted(self, plan: _Plan, answer: Mapping[str, Any]) -> VideoJob:
        job = VideoJob.parse(answer)
        seconds = job.duration if job.duration is not None else plan.asked
        _account(self.clients, plan.model, endpoint=plan.endpoint,
                 video_seconds=float(seconds or 0.0))
        if job.duration is None and isinstance(plan.asked, (int, float)):
            job = VideoJob(job.id, job.status, job.model or plan.model, float(plan.asked),
                           job.error, job.raw)
        return job

    def submit_video(self, prompt: str, *, model: str | None = None,
                     duration: float | None = None, aspect_ratio: str | None = None,
                     width: int | None = None, height: int | None = None,
                     extra_body: Mapping[str, Any] | None = None) -> VideoJob:
        """Start a video job (billed per second, sent once: never resent after its body may
        have reached the server, except on 429/503); the job, usually ``queued``."""
        params = {"duration": duration, "aspect_ratio": aspect_ratio, "width": width,
                  "height": height}
        with translating(self.errors):
            plan = self._video_plan(prompt, model, params, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            return self._submitted(plan, transport.send_json(self.clients, plan.request))

    async def asubmit_video(self, prompt: str, *, model: str | None = None,
                            duration: float | None = None, aspect_ratio: str | None = None,
                            width: int | None = None, height: int | None = None,
                            extra_body: Mapping[str, Any] | None = None) -> VideoJob:
        """Async twin of :meth:`submit_video`."""
        params = {"duration": duration, "aspect_ratio": aspect_ratio, "width": width,
                  "height": height}
        with translating(self.errors):
            plan = self._video_plan(prompt, model, params, extra_body)
            _before_spend(self.clients, plan.model, endpoint=plan.endpoint)
            answer = await transport.asend_json(self.clients, plan.request)
            return self._submitted(plan, answer)

    def video_status(self, job_id: str) -> VideoJob:
        """The job as the server describes it now."""
        with translating(self.errors):
            request = self._request("GET", job_path(job_id))
            return VideoJob.parse(transport.send_json(self.clients, request))

    async def avideo_status(self, job_id: str) -> VideoJob:
        """Async twin of :meth:`video_status`."""
        with translating(self.errors):
            request = self._request("GET", job_path(job_id))
            return VideoJob.parse(await transport.asend_json(self.clients, request))

    def download_video(self, job: str | VideoJob) -> Video:
        """The MP4 of a completed job (a 409 while it is not done yet)."""
        job = job if isinstance(job, VideoJob) else VideoJob(job, "completed")
        with translating(self.errors):
            response = transport.send(self.clients, self._request("GET", job_path(job.id,
                                                                                  "download")))
            return _video(job, response)

    async def adownload_video(self, job: str | VideoJob) -> Video:
        """Async twin of :meth:`download_video`."""
        job = job if isinstance(job, VideoJob) else VideoJob(job, "completed")
        with translating(self.errors):
            request = self._request("GET", job_path(job.id, "download"))
            return _video(job, await transport.asend(self.clients, request))

    def _look(self, waiting: Waiting) -> tuple[Request, str]:
        return Request("GET", job_path(waiting.job_id), deadline=waiting.deadline), waiting.job_id

    def _poll(self, waiting: Waiting) -> tuple[VideoJob, float | None]:
        from ..errors import APITimeoutError

        request, _ = self._look(waiting)
        try:
            response = transport.send(self.clients, request)
        except APITimeoutError as exc:
            if waiting.expired():
                raise waiting.timed_out() from exc
            raise
        return VideoJob.parse(transport.json_body(response)), _retry_after(response)

    async def _apoll(self, waiting: Waiting) -> tuple[VideoJob, float | None]:
        from ..errors import APITimeoutError

        request, _ = self._look(waiting)
        try:
            response = await transport.asend(self.clients, request)
        except APITimeoutError as exc:
            if waiting.expired():
                raise waiting.timed_out() from exc
            raise
        return VideoJob.parse(transport.json_body(response)), _retry_after(response)

    def _wait(self, waiting: Waiting, cancel: threading.Event | None, look_first: bool
              ) -> VideoJob:
        hint: float | None = None
        look = look_first
        while True:
            if not look:
                pause = waiting.pause(hint)
                if cancel is not None:
                    if cancel.wait(pause):
                        raise waiting.cancelled()
                else:
                    time.sleep(pause)
            look = False
            if cancel is not None and cancel.is_set():
                raise waiting.cancelled()
            job, hint = self._poll(waiting)
            if waiting.finished(job):
                return job

    async def _await(self, waiting: Waiting, look_first: bool) -> VideoJob:
        hint: float | None = None
        look = look_first
        while True:
            if not look:
                await asyncio.sleep(waiting.pause(hint))
            look = False
            job, hint = await self._apoll(waiting)
            if waiting.finished(job):
                return job

    def wait_video(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT,
                   cancel: threading.Event | None = None) -> VideoJob:
        """Poll the job until it completes (looking at once, then from about 2 s apart up to
        15 s, longer when the server's ``Retry-After`` asks). A failed job raises
        :class:`JobFailedError`; past ``timeout`` seconds, :class:`JobTimeoutError`; setting
        ``cancel`` stops the wait with :class:`JobCancelledError` (all carry ``job_id``)."""
        with translating(self.errors):
            waiting = Waiting(job_id, self.poll, timeout)
            job_path(job_id)
            return self._wait(waiting, cancel, look_first=True)

    async def await_video(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT
                          ) -> VideoJob:
        """Async twin of :meth:`wait_video`; cancel it by cancelling its task."""
        with translating(self.errors):
            waiting = Waiting(job_id, self.poll, timeout)
            job_path(job_id)
            return await self._await(waiting, look_first=True)

    def generate_video(self, prompt: str, *, model: str | None = None,
                       duration: float | None = None, aspect_ratio: str | None = None,
                       width: int | None = None, height: int | None = None,
                       extra_body: Mapping[str, Any] | None = None,
                       timeout: float | None = DEFAULT_WAIT,
                       cancel: threading.Event | None = None) -> Video:
        """Submit, wait (see :meth:`wait_video`) and download: the finished video."""
        job = self.submit_video(prompt, model=model, duration=duration,
                                aspect_ratio=aspect_ratio, width=width, height=height,
                                extra_body=extra_body)
        with translating(self.errors):
            done = self._wait(Waiting(job.id, self.poll, timeout), cancel, look_first=False)
        return self.download_video(_merged(job, done))

    async def agenerate_video(self, prompt: str, *, model: str | None = None,
                              duration: float | None = None, aspect_ratio: str | None = None,
                              width: int | None = None, height: int | None = None,
                              extra_body: Mapping[str, Any] | None = None,
                              timeout: float | None = DEFAULT_WAIT) -> Video:
        """Async twin of :meth:`generate_video`."""
        job = await self.asubmit_video(prompt, model=model, duration=duration,
                                       aspect_ratio=aspect_ratio, width=width, height=height,
                                       extra_body=extra_body)
        with translating(self.errors):
            done = await self._await(Waiting(job.id, self.poll, timeout), look_first=False)
        return await self.adownload_video(_merged(job, done))


def _merged(submitted: VideoJob, done: VideoJob) -> VideoJob:
    """The finished job, keeping what only the submission said (model, duration)."""
    return VideoJob(done.id, done.status, done.model or submitted.model,
                    done.duration if done.duration is not None else submitted.duration,
                    done.error, done.raw)


def _video(job: VideoJob, response: Any) -> Video:
    from .common import format_error

    kind = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind.startswith(("application/json", "text/")) or not response.content:
        raise format_error(
            f"the download of video job {job.id} answered {kind or 'nothing'!r}, not a video"
        )
    return Video(response.content, job, kind if kind.startswith("video/") else "video/mp4")


def _source_of(audio: AudioInput, upload: AudioFile) -> str:
    """How a transcript names its audio: the path given, else the upload's file name."""
    if isinstance(audio, str):
        return audio
    import os

    if isinstance(audio, os.PathLike):
        return os.fspath(audio)
    return upload.name
