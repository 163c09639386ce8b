"""Video jobs: ``POST /videos`` starts one (``{"id", "status"}``), ``GET /videos/{id}`` tells
how it goes (queued, processing, completed, failed), ``GET /videos/{id}/download`` gives the
MP4. Bodies, job answers and the polling rule are here, shared by the sync and async waits.

Polling (:class:`PollPolicy`): the first look after about 2 s, each later one 1.5 times as
long after, at most 15 s apart; a ``Retry-After`` on a status answer is waited for when it
asks for longer. A wait has a time limit; a job still running when it is spent raises
:class:`~runcrate_integrations.errors.JobTimeoutError` carrying the job id, so the wait can be
resumed. A failed job raises :class:`~runcrate_integrations.errors.JobFailedError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .common import (
    Check,
    JSONDict,
    build_body,
    check_number,
    check_prompt,
    check_ratio,
    check_seed,
    check_side,
    check_text,
    format_error,
    human_size,
)

VIDEOS_PATH = "/videos"
#: Statuses after which a job does not change any more.
COMPLETED = frozenset({"completed", "succeeded"})
FAILED = frozenset({"failed", "cancelled", "canceled", "expired", "error"})
#: How long :meth:`~runcrate_integrations.media.MediaClient.wait_video` waits by default (s).
DEFAULT_WAIT = 900.0

VIDEO_CHECKS: dict[str, Check] = {
    "duration": check_number(0.0, above=True),
    "aspect_ratio": check_ratio,
    "width": check_side,
    "height": check_side,
    "seed": check_seed,
    "negative_prompt": check_text,
}


def video_body(
    model: str, prompt: str, params: Mapping[str, Any], extra_body: Mapping[str, Any] | None
) -> JSONDict:
    check_text("model", model)
    check_prompt("prompt", prompt)
    body = build_body({"model": model, "prompt": prompt}, params, extra_body, VIDEO_CHECKS)
    duration = body.get("duration")
    if isinstance(duration, float) and duration.is_integer():
        body["duration"] = int(duration)  # whole seconds, as video models take them
    return body


def job_path(job_id: str, *rest: str) -> str:
    """``/videos/<id>[/rest]``; an id that is not a plain non-empty string is refused."""
    if not isinstance(job_id, str) or not job_id.strip() or "/" in job_id:
        raise ValueError(f"job_id must be a video job's id (e.g. 'vid_...'), got {job_id!r}")
    return "/".join((VIDEOS_PATH, quote(job_id, safe=""), *rest))


@dataclass(frozen=True)
class VideoJob:
    """A video job as the server last described it."""

    id: str
    status: str
    model: str | None = None
    duration: float | None = None
    error: Any = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in COMPLETED

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> VideoJob:
        job_id, status = data.get("id"), data.get("status")
        if not isinstance(job_id, str) or not job_id or not isinstance(status, str):
            raise format_error(
                f"a /videos answer has no job 'id' and 'status': {str(dict(data))[:200]}"
            )
        duration = data.get("duration", data.get("seconds"))
        model = data.get("model")
        return cls(
            job_id,
            status.lower(),
            model if isinstance(model, str) else None,
            float(duration) if isinstance(duration, (int, float)) else None,
            data.get("error"),
            dict(data),
        )

    def failure_message(self) -> str:
        error = self.error
        if isinstance(error, Mapping):
            detail = error.get("message") or error.get("code") or str(dict(error))
        else:
            detail = error or "no reason given"
        return f"video job {self.id} ended {self.status}: {detail}"


@dataclass(frozen=True)
class Video:
    """A finished video: the MP4 bytes and the job that made them."""

    data: bytes = field(repr=False)
    job: VideoJob
    mime_type: str = "video/mp4"

    @property
    def duration(self) -> float | None:
        return self.job.duration

    def describe(self) -> str:
        seconds = f"{self.duration:g} s " if self.duration else ""
        kind = self.mime_type.split("/")[-1].upper()
        return f"{seconds}{kind}, {human_size(len(self.data))}"


@dataclass(frozen=True)
class PollPolicy:
    """When to look at a job again: ``first`` seconds, then ``factor`` times longer each time,
    at most ``most`` seconds apart (tests pass small numbers)."""

    first: float = 2.0
    factor: float = 1.5
    most: float = 15.0

    def __post_init__(self) -> None:
        if self.first <= 0 or self.most < self.first or self.factor < 1:
            raise ValueError("PollPolicy needs 0 < first <= most and factor >= 1")


class Waiting:
    """One wait for one job: the next pause and the end of the wait (the sync and async loops
    share it and differ only in how they sleep and send)."""

    __slots__ = ("clock", "deadline", "delay", "job_id", "policy", "timeout")

    def __init__(
        self,
        job_id: str,
        policy: PollPolicy,
        timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout is not None:
            check_number(0.0, above=True)("timeout", timeout)
        self.job_id = job_id
        self.policy = policy
        self.timeout = timeout
        self.clock = clock
        self.deadline = None if timeout is None else clock() + timeout
        self.delay = policy.first

    def pause(self, retry_after: float | None) -> float:
        """Seconds to wait before the next look (the policy's, or the server's when it asks
        for longer; never past the end). Raises :class:`JobTimeoutError` once time is up."""
        wait = max(self.delay, retry_after or 0.0)
        self.delay = min(self.delay * self.policy.factor, self.policy.most)
        if self.deadline is None:
            return wait
        left = self.deadline - self.clock()
        if left <= 0:
            raise self.timed_out()
        return min(wait, left)

    def timed_out(self) -> Exception:
        from ..errors import JobTimeoutError

        return JobTimeoutError(
            f"video job {self.job_id} was still running after {self.timeout:g} s; it goes on "
            f"on the server: wait again with wait_video({self.job_id!r}) or download it later",
            job_id=self.job_id,
        )

    def cancelled(self) -> Exception:
        from ..errors import JobCancelledError

        return JobCancelledError(
            f"waiting for video job {self.job_id} was cancelled; the job goes on on the "
            f"server: wait again with wait_video({self.job_id!r})",
            job_id=self.job_id,
        )

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def finished(self, job: VideoJob) -> bool:
        """True when ``job`` is done; a failed job raises :class:`JobFailedError`."""
        if job.done:
            return True
        if job.failed:
            from ..errors import JobFailedError

            raise JobFailedError(job.failure_message(), job_id=job.id, details=job.error)
        return False
