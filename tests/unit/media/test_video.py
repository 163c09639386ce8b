"""Video jobs: the submit body (billed: sent once), status and download, and the wait:
completed, failed, timed out and cancelled, sync and async, with the polling schedule checked
on an injected clock and the server's Retry-After honoured."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runcrate_integrations import (
    ConflictError,
    InternalServerError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    RateLimitError,
)
from runcrate_integrations.errors import APIConnectionError
from runcrate_integrations.media import PollPolicy, VideoJob
from runcrate_integrations.media.video import Waiting
from tests.support.fake_media import MP4
from tests.support.fake_openai_server import Disconnect, FakeOpenAIServer, JSONResponse, error

from .conftest import MakeMedia


def _job(status: str, job_id: str = "vid_1", **extra: object) -> JSONResponse:
    return JSONResponse({"id": job_id, "object": "video", "status": status, **extra})


def _paths(server: FakeOpenAIServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


def test_submit_sends_the_body_once_and_reads_the_job(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    job = make_media().submit_video(
        "waves on a beach",
        duration=4,
        aspect_ratio="16:9",
        width=1280,
        height=720,
        extra_body={"fps": 24},
    )
    assert fake_server.last_request.body == {
        "model": "google/veo-3.0",
        "prompt": "waves on a beach",
        "duration": 4,
        "aspect_ratio": "16:9",
        "width": 1280,
        "height": 720,
        "fps": 24,
    }
    assert job.id.startswith("vid_") and job.status == "queued" and job.duration == 4.0
    assert not job.done and not job.failed


@pytest.mark.parametrize(
    ("answers", "raised", "sent"),
    [
        ([error(500, "server_error", "boom")] * 3, InternalServerError, 1),
        ([Disconnect()] * 3, APIConnectionError, 1),
        ([error(429, "rate_limited", "slow", {"retry-after-ms": "10"}), _job("queued")], None, 2),
        ([error(503, "unavailable", "busy", {"retry-after-ms": "10"}), _job("queued")], None, 2),
    ],
    ids=["500-not-resent", "dropped-not-resent", "429-resent", "503-resent"],
)
def test_a_billed_submit_is_resent_only_when_it_was_not_started(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    answers: list[object],
    raised: type[Exception] | None,
    sent: int,
) -> None:
    fake_server.enqueue(*answers)  # type: ignore[arg-type]  # specs
    media = make_media(max_retries=2)
    if raised is None:
        assert media.submit_video("x").id == "vid_1"
    else:
        with pytest.raises(raised):
            media.submit_video("x")
    assert fake_server.request_count == sent


def test_status_and_download(make_media: MakeMedia, fake_server: FakeOpenAIServer) -> None:
    media = make_media()
    fake_server.media.polls_to_complete = 1
    job = media.submit_video("waves", duration=2)
    assert media.video_status(job.id).status == "completed"
    video = media.download_video(job.id)
    assert video.data == MP4 and video.mime_type == "video/mp4"
    assert _paths(fake_server)[1:] == [
        f"GET /v1/videos/{job.id}",
        f"GET /v1/videos/{job.id}/download",
    ]


async def test_async_status_and_download(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    media = make_media()
    fake_server.media.polls_to_complete = 1
    job = await media.asubmit_video("waves", duration=2)
    assert (await media.avideo_status(job.id)).status == "completed"
    video = await media.adownload_video(job)
    assert video.data == MP4 and video.job.id == job.id
    assert _paths(fake_server) == [
        "POST /v1/videos",
        f"GET /v1/videos/{job.id}",
        f"GET /v1/videos/{job.id}/download",
    ]


def test_a_download_before_completion_is_a_conflict(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    media = make_media()
    job = media.submit_video("waves")
    with pytest.raises(ConflictError, match="not_ready"):
        media.download_video(job)


@pytest.mark.parametrize("job_id", ["", "  ", "a/b", None])
def test_a_bad_job_id_sends_nothing(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, job_id: object
) -> None:
    media = make_media()
    for call in (media.video_status, media.download_video, media.wait_video):
        with pytest.raises(ValueError, match="job_id must be a video job's id"):
            call(job_id)  # type: ignore[operator, arg-type]  # wrong on purpose
    assert fake_server.request_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"duration": 0}, "duration must be a number > 0"),
        ({"duration": -3}, "duration must be a number > 0"),
        ({"width": 100}, "width must be from 256 to 2048"),
        ({"aspect_ratio": "16/9"}, "aspect_ratio must look like '16:9'"),
    ],
)
def test_bad_video_arguments_send_nothing(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    kwargs: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        make_media().generate_video(**{"prompt": "waves", **kwargs})  # type: ignore[arg-type]
    assert fake_server.request_count == 0


# ---------------------------------------------------------------------------- waiting


def test_generate_video_submits_polls_until_done_and_downloads(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.media.polls_to_complete = 3
    video = make_media().generate_video("waves", duration=3)
    job_id = video.job.id
    assert _paths(fake_server) == ["POST /v1/videos"] + [f"GET /v1/videos/{job_id}"] * 3 + [
        f"GET /v1/videos/{job_id}/download"
    ]
    assert video.data == MP4 and video.job.status == "completed"
    assert (video.duration, video.job.model) == (3.0, "google/veo-3.0")


async def test_async_generate_video(make_media: MakeMedia, fake_server: FakeOpenAIServer) -> None:
    video = await make_media().agenerate_video("waves", duration=2)
    assert video.data == MP4
    assert _paths(fake_server)[-1] == f"GET /v1/videos/{video.job.id}/download"


def test_wait_looks_at_once(make_media: MakeMedia, fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue(_job("completed", duration=5))
    job = make_media().wait_video("vid_1")
    assert job == VideoJob("vid_1", "completed", duration=5.0)
    assert fake_server.request_count == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_failed_job_raises_with_its_id_and_reason(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, mode: str
) -> None:
    fake_server.enqueue(
        _job("processing"),
        _job("failed", error={"code": "generation_failed", "message": "could not render"}),
    )
    media = make_media()
    with pytest.raises(
        JobFailedError, match="video job vid_1 ended failed: could not render"
    ) as info:
        if mode == "sync":
            media.wait_video("vid_1")
        else:
            await media.await_video("vid_1")
    assert info.value.job_id == "vid_1"
    assert info.value.details == {"code": "generation_failed", "message": "could not render"}
    assert fake_server.request_count == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_wait_that_runs_out_raises_with_the_id_to_resume(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, mode: str
) -> None:
    fake_server.default = _job("processing", "vid_slow")
    media = make_media()
    with pytest.raises(JobTimeoutError, match=r"wait_video\('vid_slow'\)") as info:
        if mode == "sync":
            media.wait_video("vid_slow", timeout=0.1)
        else:
            await media.await_video("vid_slow", timeout=0.1)
    assert info.value.job_id == "vid_slow"
    assert fake_server.request_count >= 2  # it kept looking until the time was up


def test_a_sync_wait_is_cancelled_by_its_event(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = _job("processing")
    media = make_media()
    media.poll = PollPolicy(first=0.05, most=0.05)
    cancel = threading.Event()
    timer = threading.Timer(0.12, cancel.set)
    timer.start()
    with pytest.raises(JobCancelledError, match="cancelled") as info:
        media.wait_video("vid_1", cancel=cancel)
    timer.join()
    assert info.value.job_id == "vid_1"
    looked = fake_server.request_count
    assert looked >= 1
    with pytest.raises(JobCancelledError):  # an event already set stops before any look
        media.wait_video("vid_1", cancel=cancel)
    assert fake_server.request_count == looked


async def test_an_async_wait_is_cancelled_with_its_task(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.default = _job("processing")
    media = make_media()
    media.poll = PollPolicy(first=0.02, most=0.02)
    task = asyncio.ensure_future(media.await_video("vid_1"))
    while fake_server.request_count < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    looked = fake_server.request_count
    await asyncio.sleep(0.1)
    assert fake_server.request_count == looked  # nothing polls after the cancel


def test_a_status_answers_retry_after_is_waited_for(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(
        _job("processing"),
        JSONResponse({"id": "vid_1", "status": "processing"}, headers={"retry-after-ms": "300"}),
        _job("completed"),
    )
    make_media().wait_video("vid_1")
    _, second, third = (r.received_at for r in fake_server.requests)
    assert third - second >= 0.3  # the server asked for 300 ms, the policy for 20 ms
    assert fake_server.request_count == 3


def test_status_errors_during_a_wait_are_typed(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue(error(429, "rate_limited", "slow down"))
    with pytest.raises(RateLimitError):
        make_media().wait_video("vid_1")


# ---------------------------------------------------------------------------- the schedule


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_polling_schedule_backs_off_from_2_to_15_seconds() -> None:
    waiting = Waiting("vid_1", PollPolicy(), None, clock=Clock())
    assert [waiting.pause(None) for _ in range(8)] == [
        2.0,
        3.0,
        4.5,
        6.75,
        10.125,
        15.0,
        15.0,
        15.0,
    ]


def test_retry_after_longer_than_the_schedule_wins_and_the_end_caps_every_pause() -> None:
    clock = Clock()
    waiting = Waiting("vid_1", PollPolicy(), 30.0, clock=clock)
    assert waiting.pause(9.0) == 9.0  # the server asked for longer than 2 s
    assert waiting.pause(1.0) == 3.0  # shorter: the schedule decides
    clock.now += 25.0
    assert waiting.pause(None) == 4.5  # 4.5 s due, 5 s left: the schedule
    clock.now += 3.0
    assert waiting.pause(None) == 2.0  # 6.75 s due, only 2 s left
    clock.now += 2.0
    with pytest.raises(JobTimeoutError) as info:
        waiting.pause(None)
    assert info.value.job_id == "vid_1" and "30 s" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"first": 0}, {"first": 5, "most": 1}, {"factor": 0.5}])
def test_a_policy_that_would_never_end_or_spin_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="PollPolicy needs"):
        PollPolicy(**kwargs)


def test_a_timeout_must_be_positive(make_media: MakeMedia) -> None:
    with pytest.raises(ValueError, match="timeout must be a number > 0"):
        make_media().wait_video("vid_1", timeout=0)


def test_an_answer_without_id_or_status_is_a_format_error(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    from runcrate_integrations import ResponseFormatError

    fake_server.enqueue(JSONResponse({"object": "video"}))
    with pytest.raises(ResponseFormatError, match="no job 'id' and 'status'"):
        make_media().submit_video("waves")
