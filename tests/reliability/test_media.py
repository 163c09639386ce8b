"""Media under faults, against the loopback server, with the guarantees of chat: the same
error classes as chat for 401/402/429/5xx in each framework, retries (a GET always; a billed
POST only when it was not started), pacing shared with chat for one key and URL, the deadline,
no connection or client growth over many calls, and the key in no log, error or other host's
request."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from typing import Any

import pytest

import runcrate_integrations as core
from langchain_runcrate import RuncrateToolkit
from llama_index_runcrate import RuncrateToolSpec
from runcrate_integrations.media import MediaSettings
from runcrate_integrations.net import transport
from runcrate_integrations.net.clients import pooled_client_count
from tests.reliability.cases import CALL_TIMEOUT, KEY, ChatCase, Framework, Mode
from tests.support.fake_media import tiny_png
from tests.support.fake_openai_server import (
    Disconnect,
    FakeOpenAIServer,
    JSONResponse,
    chat_completion,
    error,
)


@pytest.fixture(autouse=True)
def _fast_transport_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF_START", 0.01)


def _common(server: FakeOpenAIServer, **fields: Any) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "base_url": server.base_url,
        "max_retries": 0,
        "timeout": CALL_TIMEOUT,
        "poll_interval": 0.01,
        **fields,
    }


async def _speak(framework: Framework, server: FakeOpenAIServer, **fields: Any) -> Any:
    if framework == "langchain":
        tools = RuncrateToolkit(**_common(server, **fields)).get_tools()
        return await tools[1].ainvoke({"text": "Hello"})
    spec = RuncrateToolSpec(**_common(server, **fields))
    return await spec.atext_to_speech("Hello")


@pytest.mark.parametrize("status", [401, 402, 429, 500, 503])
@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_media_errors_are_the_classes_chat_raises(
    fake_server: FakeOpenAIServer, framework: Framework, status: int
) -> None:
    fake_server.default = error(status, "some_code", f"status {status}")
    chat = ChatCase(framework, "ainvoke", fake_server)
    with pytest.raises(core.RuncrateError) as from_chat:
        await chat.ask(chat.model())
    with pytest.raises(core.RuncrateError) as from_media:
        await _speak(framework, fake_server)
    assert type(from_media.value) is type(from_chat.value)
    assert from_media.value.status_code == status  # type: ignore[attr-defined]


async def test_a_status_poll_is_retried_and_a_download_too(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.enqueue(
        JSONResponse({"id": "vid_1", "status": "queued", "duration": 2}),
        error(500, "server_error", "blip"),
        JSONResponse({"id": "vid_1", "status": "completed"}),
        Disconnect(),
        JSONResponse(b"\x00\x00\x00\x18ftypmp42", headers={"content-type": "video/mp4"}),
    )
    media = MediaSettings(**_common(fake_server, max_retries=2)).media
    video = await media.agenerate_video("waves", duration=2)
    assert video.data.startswith(b"\x00\x00\x00\x18ftyp")
    assert [r.method for r in fake_server.requests] == ["POST", "GET", "GET", "GET", "GET"]


async def test_a_billed_post_is_retried_after_a_429_with_the_servers_hint(
    fake_server: FakeOpenAIServer,
) -> None:
    fake_server.enqueue(error(429, "rate_limited", "slow down", {"retry-after-ms": "200"}))
    media = MediaSettings(**_common(fake_server, max_retries=1)).media
    image = await media.agenerate_image("a fox", response_format="b64_json")
    first, second = fake_server.requests
    assert second.received_at - first.received_at >= 0.2  # the server's hint was waited for
    assert first.body == second.body and image.image.data is not None


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_pacing_is_shared_with_chat_for_the_same_key_and_url(
    fake_server: FakeOpenAIServer, mode: Mode
) -> None:
    """Chat's answer says the quota is used up until a reset; the media call that follows
    waits for it, since both share the one limiter of this key and URL."""
    reset = time.time() + 0.4
    fake_server.enqueue(
        chat_completion(
            "hi",
            headers={
                "X-RateLimit-Limit": "1",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{reset:.3f}",
            },
        )
    )
    chat = ChatCase("langchain", mode, fake_server)
    await chat.ask(chat.model())
    media = MediaSettings(**_common(fake_server)).media
    if mode == "invoke":
        media.speech("Hello")
    else:
        await media.aspeech("Hello")
    assert fake_server.requests[1].received_at >= reset - 0.05  # not before the reset


async def test_the_deadline_bounds_a_media_call(fake_server: FakeOpenAIServer) -> None:
    fake_server.default = JSONResponse({"created": 1, "data": []}, delay=3.0)
    media = MediaSettings(**_common(fake_server, deadline=0.2)).media
    started = time.monotonic()
    with pytest.raises(core.APITimeoutError, match=r"deadline|timed out"):
        await media.agenerate_image("a fox")
    assert time.monotonic() - started < 2.5  # well before the server would have answered


def test_many_calls_and_instances_open_no_new_connections_or_clients(
    fake_server: FakeOpenAIServer,
) -> None:
    media = MediaSettings(**_common(fake_server)).media
    media.generate_image("warm up", response_format="b64_json")
    clients = pooled_client_count()
    for i in range(60):
        media.generate_image(f"fox {i}")  # a POST and a download each
        media.speech(f"line {i}")
    tools = [RuncrateToolkit(**_common(fake_server)).get_tools() for _ in range(25)]
    for toolkit in tools[:5]:
        toolkit[0].invoke({"prompt": "one more"})
    assert pooled_client_count() == clients
    assert fake_server.connection_count <= 1  # one keep-alive connection carried them all
    assert fake_server.request_count == 1 + 60 * 3 + 5 * 2


async def test_async_calls_share_one_pooled_client(fake_server: FakeOpenAIServer) -> None:
    media = MediaSettings(**_common(fake_server)).media
    await media.aspeech("warm up")
    clients = pooled_client_count()
    await asyncio.gather(*(media.agenerate_image(f"fox {i}") for i in range(20)))
    assert pooled_client_count() == clients
    assert fake_server.connection_count <= 20


def test_the_key_is_in_no_log_or_error(
    fake_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_server.media.polls_to_complete = 10**6
    media = MediaSettings(**_common(fake_server)).media
    with caplog.at_level(logging.DEBUG):
        media.generate_image("a fox")  # the download logs too
        fake_server.enqueue(error(401, "invalid_api_key", f"key {KEY} is not valid"))
        with pytest.raises(core.AuthenticationError) as denied:
            media.speech("Hello")
        with pytest.raises(core.JobTimeoutError) as waited:
            media.generate_video("waves", timeout=0.05)
    assert caplog.records
    for text in (
        caplog.text,
        str(denied.value),
        repr(pickle.loads(pickle.dumps(denied.value))),
        str(waited.value),
        repr(media),
        repr(media.clients),
    ):
        assert KEY not in text
    assert "***" in str(denied.value)  # the echoed key was blanked out


def test_an_image_answer_is_never_mistaken_for_json(fake_server: FakeOpenAIServer) -> None:
    fake_server.media.file_host = None
    png = tiny_png(2, 2)
    fake_server.enqueue(
        JSONResponse({"data": [{"url": f"{fake_server.base_url}/files/x.png"}]}),
        JSONResponse(png, headers={"content-type": "image/png"}),
    )
    media = MediaSettings(**_common(fake_server)).media
    assert media.generate_image("x").image.data == png


@pytest.mark.parametrize(
    ("call", "billed"),
    [("image", True), ("speech", True), ("video", True), ("transcription", False)],
)
def test_only_the_requests_that_start_a_billed_job_are_not_resent_after_a_500(
    fake_server: FakeOpenAIServer, call: str, billed: bool
) -> None:
    """A 500 may come after the job started: an image, speech or video request is not sent
    twice; a transcription (no job is started, nothing is made twice) is retried."""
    fake_server.enqueue(error(500, "server_error", "boom"))
    media = MediaSettings(**_common(fake_server, max_retries=2)).media
    calls = {
        "image": lambda: media.generate_image("a fox", response_format="b64_json"),
        "speech": lambda: media.speech("Hello"),
        "video": lambda: media.submit_video("waves"),
        "transcription": lambda: media.transcribe(b"ID3\x04 audio", filename="a.mp3"),
    }
    if billed:
        with pytest.raises(core.InternalServerError):
            calls[call]()
        assert fake_server.request_count == 1
    else:
        calls[call]()
        assert fake_server.request_count == 2
