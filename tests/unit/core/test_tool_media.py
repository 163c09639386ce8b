"""The one rule for media in agent loops (``runcrate_integrations.chat.media``): a tool
message carries text; images reach a model that reads them as a user message after the turn's
tool messages; nothing changes (and the catalog is not read) when no tool returned media."""

from __future__ import annotations

import base64
from typing import Any

from runcrate_integrations.chat.engine import ChatEngine
from runcrate_integrations.chat.media import artifact_parts, tool_media_to_user
from runcrate_integrations.chat.request import ChatOptions
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net.clients import Clients
from tests.helpers import Recorder, completion_body

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
IMAGE = {
    "type": "image_url",
    "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "generate_image", "arguments": '{"prompt": "a fox"}'},
}
INTRO = {"type": "text", "text": "The tool results above returned these images:"}


def _turn(*tool_contents: Any) -> list[dict[str, Any]]:
    calls = [{**CALL, "id": f"call_{i}"} for i in range(len(tool_contents))]
    return [
        {"role": "user", "content": "draw a fox"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *(
            {"role": "tool", "tool_call_id": f"call_{i}", "content": c}
            for i, c in enumerate(tool_contents)
        ),
    ]


class Asked:
    def __init__(self, answer: bool) -> None:
        self.answer, self.count = answer, 0

    def __call__(self) -> bool:
        self.count += 1
        return self.answer


def test_without_media_the_messages_are_untouched_and_nothing_is_asked() -> None:
    messages = _turn("Made an image.", [{"type": "text", "text": "plain parts"}])
    asked = Asked(True)
    assert tool_media_to_user(messages, asked) is messages
    assert asked.count == 0


def test_a_vision_model_sees_the_pixels_in_a_user_message_after_the_tool_messages() -> None:
    messages = _turn(
        [{"type": "text", "text": "Made an image: 8x8 PNG."}, IMAGE], "second tool: text only"
    )
    asked = Asked(True)
    out = tool_media_to_user([*messages, {"role": "assistant", "content": "Here it is."}], asked)
    assert out[2] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": "Made an image: 8x8 PNG.\n[image (image/png, 68 B); shown in the next message]",
    }
    assert out[3] == messages[3]
    assert out[4] == {"role": "user", "content": [INTRO, IMAGE]}
    assert out[5] == {"role": "assistant", "content": "Here it is."}
    assert asked.count == 1


def test_a_text_only_model_gets_the_description_and_no_pixels() -> None:
    url_image = {"type": "image_url", "image_url": {"url": "https://cdn.example/fox.png"}}
    out = tool_media_to_user(_turn([IMAGE, url_image]), Asked(False))
    assert out[-1] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": "[image (image/png, 68 B); not shown: this model reads no images]\n"
        "[image at https://cdn.example/fox.png; not shown: this model reads no "
        "images]",
    }
    assert [m["role"] for m in out] == ["user", "assistant", "tool"]


def test_audio_and_video_are_described_never_forwarded() -> None:
    audio = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(b"x" * 300).decode(), "format": "mp3"},
    }
    video = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}
    asked = Asked(True)
    out = tool_media_to_user(_turn([{"type": "text", "text": "Spoke."}, audio, video]), asked)
    assert out[-1]["content"] == (
        "Spoke.\n[mp3 audio (300 B); not played to the model]\n"
        "[video (video/mp4, 3 B); not shown to the model]"
    )
    assert asked.count == 0  # no image: the catalog is not consulted


def test_images_of_an_earlier_turn_are_placed_after_that_turn() -> None:
    first = _turn([IMAGE])
    later = [{"role": "assistant", "content": "Drawn."}, {"role": "user", "content": "again"}]
    out = tool_media_to_user(first + later, Asked(True))
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "user", "assistant", "user"]
    assert out[3] == {"role": "user", "content": [INTRO, IMAGE]}


def test_a_media_artifact_becomes_the_parts_a_block_would() -> None:
    png = {"type": "image", "data": PNG, "mime_type": "image/png", "url": "https://x/y.png"}
    assert artifact_parts(png) == [IMAGE]
    assert artifact_parts({"type": "image", "data": None, "url": "https://x/y.png"}) == [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    ]
    assert artifact_parts({"type": "audio", "data": b"abc", "format": "pcm"}) == [
        {"type": "input_audio", "input_audio": {"data": "YWJj", "format": "pcm"}}
    ]
    assert artifact_parts({"type": "video", "data": b"abc", "mime_type": "video/mp4"}) == [
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,YWJj"}}
    ]
    for other in (None, "text", {"type": "transcript", "text": "hi"}, {"type": "image"}):
        assert artifact_parts(other) == []


# ---------------------------------------------------------------------------- in the engine

VISION = {"id": "acme/vision", "input_modalities": ["text", "image"], "output_modalities": ["text"]}


def _engine(model: str, recorder: Recorder) -> ChatEngine:
    settings = ClientSettings.resolve(api_key="rc_live_x", base_url="http://runcrate.test/v1")
    return ChatEngine(Clients(settings, http_client=recorder.client()), ChatOptions(model))


def test_the_engine_applies_the_rule_with_the_catalogs_answer() -> None:
    recorder = Recorder([completion_body("ok")] * 2, models=[VISION])
    vision = _engine("acme/vision", recorder)
    body = vision.request(_turn([IMAGE]), {}).body
    assert body["messages"][-1] == {"role": "user", "content": [INTRO, IMAGE]}
    text_only = _engine("acme/text", recorder)  # not in the catalog: no images
    body = text_only.request(_turn([IMAGE]), {}).body
    assert body["messages"][-1]["role"] == "tool"
    assert "not shown" in body["messages"][-1]["content"]
    assert len(recorder.catalog_requests) == 1  # read once for the base URL


def test_the_engine_reads_no_catalog_for_plain_chat() -> None:
    recorder = Recorder([completion_body("ok")], models=[VISION])
    engine = _engine("acme/vision", recorder)
    engine.complete(engine.request(_turn("Made an image."), {}))
    assert recorder.catalog_requests == []
