"""The video-job calls of :class:`~runcrate_integrations.media.MediaClient` (submit, status,
wait, download, all in one), sync and async, kept apart from the other endpoints because a job
has a life of its own: the wait loops share :class:`~.video.Waiting` (the next pause, the end)
and differ only in how they sleep and send.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from ..net import transport
from ..net.clients import Clients
from ..net.headers import read_rate_limit
from ..net.transport import ErrorHook, Request, translating
from . import accounting
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


@dataclass(frozen=True, slots=True)
class _Plan:
    """A checked request and what finishing it needs."""

    request: Request
    model: str
    endpoint: str
    asked: Any = None  # the format asked for, the text spoken, the audio's name...
    # The most it may be billed for, in the usage tracker's units (None: unknown before the
    # answer): images, speech_characters, video_seconds, audio_seconds.
    most: Mapping[str, Any] = field(default_factory=dict)


def _retry_after(response: Any) -> float | None:
    state = read_rate_limit(response.headers)
    return state["retry_after"] if state is not None else None


class VideoCalls:
    """Video jobs through the one request loop; mixed into ``MediaClient``, which holds the
    attributes below and builds requests."""

    __slots__ = ()

    clients: Clients
    errors: ErrorHook | None
    poll: PollPolicy
    models: Any  # MediaModels

    def _request(
        self, method: str, path: str, deadline: float | None = None, **kwargs: Any
    ) -> Request:
        raise NotImplementedError  # MediaClient's

    def _video_plan(
        self,
        prompt: str,
        model: str | None,
        params: Mapping[str, Any],
        extra_body: Mapping[str, Any] | None,
    ) -> _Plan:
        model = self.models.video if model is None else model
        body = video_body(model, prompt, params, extra_body)
        duration = body.get("duration")
        seconds = float(duration) if isinstance(duration, (int, float)) else None
        return _Plan(
            self._request("POST", VIDEOS_PATH, body=body, billed=True),
            model,
            VIDEOS_PATH,
            duration,
            {"video_seconds": seconds},
        )

    def _spending(self, plan: _Plan) -> AbstractContextManager[object]:
        """Entered just before a billed request is sent, left when its call ends: every
        budget around the call holds the most it may cost meanwhile (or refuses it, unsent)."""
        return accounting._before_spend(
            self.clients, plan.model, endpoint=plan.endpoint, **plan.most
        )

    def _submitted(self, plan: _Plan, answer: Mapping[str, Any]) -> VideoJob:
        """The job, its model and duration filled in from the request where the answer is
        silent; its seconds are accounted (as billed: when the job is accepted)."""
        job = VideoJob.parse(answer)
        asked = float(plan.asked) if isinstance(plan.asked, (int, float)) else None
        job = replace(
            job,
            model=job.model or plan.model,
            duration=job.duration if job.duration is not None else asked,
        )
        accounting._account(
            self.clients, plan.model, endpoint=plan.endpoint, video_seconds=job.duration or 0.0
        )
        return job

    def submit_video(
        self,
        prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        aspect_ratio: str | None = None,
        width: int | None = None,
        height: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> VideoJob:
        """Start a video job (billed per second, sent once: never resent after its body may
        have reached the server, except on 429/503); the job, usually ``queued``."""
        params = {
            "duration": duration,
            "aspect_ratio": aspect_ratio,
            "width": width,
            "height": height,
        }
        with translating(self.errors):
            plan = self._video_plan(prompt, model, params, extra_body)
            with self._spending(plan):
                return self._submitted(plan, transport.send_json(self.clients, plan.request))

    async def asubmit_video(
        self,
        prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        aspect_ratio: str | None = None,
        width: int | None = None,
        height: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> VideoJob:
        """Async twin of :meth:`submit_video`."""
        params = {
            "duration": duration,
            "aspect_ratio": aspect_ratio,
            "width": width,
            "height": height,
        }
        with translating(self.errors):
            plan = self._video_plan(prompt, model, params, extra_body)
            with self._spending(plan):
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
            response = transport.send(
                self.clients, self._request("GET", job_path(job.id, "download"))
            )
            return _video(job, response)

    async def adownload_video(self, job: str | VideoJob) -> Video:
        """Async twin of :meth:`download_video`."""
        job = job if isinstance(job, VideoJob) else VideoJob(job, "completed")
        with translating(self.errors):
            request = self._request("GET", job_path(job.id, "download"))
            return _video(job, await transport.asend(self.clients, request))

    def _poll(self, waiting: Waiting) -> tuple[VideoJob, float | None]:
        from ..errors import APITimeoutError

        request = Request("GET", job_path(waiting.job_id), deadline=waiting.deadline)
        try:
            response = transport.send(self.clients, request)
        except APITimeoutError as exc:
            if waiting.expired():
                raise waiting.timed_out() from exc
            raise
        return VideoJob.parse(transport.json_body(response)), _retry_after(response)

    async def _apoll(self, waiting: Waiting) -> tuple[VideoJob, float | None]:
        from ..errors import APITimeoutError

        request = Request("GET", job_path(waiting.job_id), deadline=waiting.deadline)
        try:
            response = await transport.asend(self.clients, request)
        except APITimeoutError as exc:
            if waiting.expired():
                raise waiting.timed_out() from exc
            raise
        return VideoJob.parse(transport.json_body(response)), _retry_after(response)

    def _wait(self, waiting: Waiting, cancel: threading.Event | None, look_first: bool) -> VideoJob:
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

    def wait_video(
        self,
        job_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT,
        cancel: threading.Event | None = None,
    ) -> VideoJob:
        """Poll the job until it completes (looking at once, then from about 2 s apart up to
        15 s, longer when the server's ``Retry-After`` asks). A failed job raises
        :class:`JobFailedError`; past ``timeout`` seconds, :class:`JobTimeoutError`; setting
        ``cancel`` stops the wait with :class:`JobCancelledError` (all carry ``job_id``)."""
        with translating(self.errors):
            waiting = Waiting(job_id, self.poll, timeout)
            job_path(job_id)
            return self._wait(waiting, cancel, look_first=True)

    async def await_video(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT) -> VideoJob:
        """Async twin of :meth:`wait_video`; cancel it by cancelling its task."""
        with translating(self.errors):
            waiting = Waiting(job_id, self.poll, timeout)
            job_path(job_id)
            return await self._await(waiting, look_first=True)

    def generate_video(
        self,
        prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        aspect_ratio: str | None = None,
        width: int | None = None,
        height: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = DEFAULT_WAIT,
        cancel: threading.Event | None = None,
    ) -> Video:
        """Submit, wait (see :meth:`wait_video`) and download: the finished video."""
        job = self.submit_video(
            prompt,
            model=model,
            duration=duration,
            aspect_ratio=aspect_ratio,
            width=width,
            height=height,
            extra_body=extra_body,
        )
        with translating(self.errors):
            done = self._wait(Waiting(job.id, self.poll, timeout), cancel, look_first=False)
        return self.download_video(_merged(job, done))

    async def agenerate_video(
        self,
        prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        aspect_ratio: str | None = None,
        width: int | None = None,
        height: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = DEFAULT_WAIT,
    ) -> Video:
        """Async twin of :meth:`generate_video`."""
        job = await self.asubmit_video(
            prompt,
            model=model,
            duration=duration,
            aspect_ratio=aspect_ratio,
            width=width,
            height=height,
            extra_body=extra_body,
        )
        with translating(self.errors):
            done = await self._await(Waiting(job.id, self.poll, timeout), look_first=False)
        return await self.adownload_video(_merged(job, done))


def _merged(submitted: VideoJob, done: VideoJob) -> VideoJob:
    """The finished job, keeping what only the submission said (model, duration)."""
    return replace(
        done,
        model=done.model or submitted.model,
        duration=done.duration if done.duration is not None else submitted.duration,
    )


def _video(job: VideoJob, response: Any) -> Video:
    from .common import format_error

    kind = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind.startswith(("application/json", "text/")) or not response.content:
        raise format_error(
            f"the download of video job {job.id} answered {kind or 'nothing'!r}, not a video"
        )
    return Video(response.content, job, kind if kind.startswith("video/") else "video/mp4")
