"""``generate_image``: the exact request, the parsed images, downloads (never with the key on
another host), checks before any request, malformed answers."""

from __future__ import annotations

import base64
import struct

import pytest

from runcrate_integrations import ResponseFormatError
from runcrate_integrations.media import GeneratedImage
from runcrate_integrations.media.images import sniff_image
from tests.support.fake_media import tiny_png
from tests.support.fake_openai_server import FakeOpenAIServer, JSONResponse, running_server

from .conftest import KEY, MakeMedia


def test_every_option_reaches_the_body_and_b64_answers_are_decoded(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    result = make_media().generate_image(
        "a red fox",
        width=512,
        height=256,
        num_inference_steps=4,
        guidance=3.5,
        seed=7,
        negative_prompt="blur",
        response_format="b64_json",
    )
    sent = fake_server.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert sent.body == {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "a red fox",
        "width": 512,
        "height": 256,
        "num_inference_steps": 4,
        "guidance": 3.5,
        "seed": 7,
        "negative_prompt": "blur",
        "response_format": "b64_json",
    }
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    image = result.image
    assert image.data == tiny_png(32, 16, 7)
    assert (image.mime_type, image.width, image.height, image.url) == ("image/png", 32, 16, None)
    assert image.data_uri == "data:image/png;base64," + base64.b64encode(image.data).decode()
    assert result.model == "black-forest-labs/FLUX.1-schnell" and result.created == 1764000000
    assert fake_server.request_count == 1


def test_unset_options_are_not_sent_and_extras_pass_through(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    make_media(image_model="acme/editor").generate_image(
        "make it blue",
        aspect_ratio="16:9",
        download=False,
        extra_body={"input_image": "https://example.test/in.png", "strength": 0.6},
    )
    assert fake_server.last_request.body == {
        "model": "acme/editor",
        "prompt": "make it blue",
        "aspect_ratio": "16:9",
        "input_image": "https://example.test/in.png",
        "strength": 0.6,
    }


def test_a_named_option_wins_over_extra_body(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    make_media().generate_image("x", seed=1, extra_body={"seed": 2}, download=False)
    assert fake_server.last_request.body["seed"] == 1


def test_a_url_answer_is_downloaded_through_the_pooled_client(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    image = make_media().generate_image("a fox", aspect_ratio="2:1").image
    _, get = fake_server.requests
    assert get.method == "GET" and get.path.startswith("/v1/files/")
    assert image.url == f"http://127.0.0.1:{fake_server.port}{get.path}"
    assert image.data == tiny_png(64, 32, 0) and image.width == 64
    # Same host as the API: the pooled keep-alive connection carried both requests (no new
    # one for the download; the POST may reuse one an earlier test left open).
    assert fake_server.connection_count <= 1


def test_without_download_a_url_answer_has_no_bytes(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    image = make_media().generate_image("a fox", download=False).image
    assert image.data is None and image.data_uri is None and image.url is not None
    assert image.describe() == f"an image at {image.url}"
    assert fake_server.request_count == 1


def test_no_key_leaves_for_another_host(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    """The image URL is on a CDN (another server): it is fetched without the Authorization
    header, nor the key anywhere in the request."""
    with running_server() as cdn:
        fake_server.media.file_host = f"http://localhost:{cdn.port}"
        cdn.default = lambda request: JSONResponse(
            tiny_png(4, 4, 1), headers={"content-type": "image/png"}
        )
        image = make_media(default_headers={"X-Team": "media"}).generate_image("x").image
        (fetched,) = cdn.requests
    assert image.data == tiny_png(4, 4, 1)
    assert "authorization" not in fetched.headers
    assert "x-team" not in fetched.headers  # the API's own headers stay with the API
    assert KEY not in repr(fetched.headers) and KEY not in fetched.path
    assert fetched.headers["user-agent"].startswith("runcrate-integrations/")
    assert fake_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_async_sends_the_same_request_and_downloads_too(
    make_media: MakeMedia, fake_server: FakeOpenAIServer
) -> None:
    media = make_media()
    sync = media.generate_image("a fox", seed=3)
    sync_body = fake_server.requests[0].body
    fake_server.reset()
    result = await media.agenerate_image("a fox", seed=3)
    assert fake_server.requests[0].body == sync_body
    assert [r.method for r in fake_server.requests] == ["POST", "GET"]
    assert result.image.data == sync.image.data


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"num_inference_steps": 0}, "num_inference_steps must be from 1 to 100, got 0"),
        ({"num_inference_steps": 101}, "num_inference_steps must be from 1 to 100, got 101"),
        ({"num_inference_steps": 4.5}, "num_inference_steps must be an integer"),
        ({"width": 255}, "width must be from 256 to 2048, got 255"),
        ({"height": 2049}, "height must be from 256 to 2048, got 2049"),
        ({"response_format": "png"}, "response_format must be one of 'url', 'b64_json'"),
        ({"aspect_ratio": "wide"}, "aspect_ratio must look like '16:9'"),
        ({"guidance": -1}, "guidance must be a number >= 0"),
        ({"seed": -2}, "seed must be >= 0, got -2"),
        ({"negative_prompt": ""}, "negative_prompt must be a non-empty string"),
        ({"extra_body": {"num_inference_steps": 500}}, "num_inference_steps must be from 1"),
        ({"extra_body": {"model": "x"}}, "extra_body must not set 'model'"),
        ({"extra_body": {"mask": object()}}, "not JSON-serialisable"),
        ({"model": ""}, "model must be a non-empty string"),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    make_media: MakeMedia,
    fake_server: FakeOpenAIServer,
    kwargs: dict[str, object],
    message: str,
) -> None:
    args = {"prompt": "a fox", **kwargs}
    media = make_media()
    with pytest.raises(ValueError, match=message):
        media.generate_image(**args)  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(ValueError, match=message):
        await media.agenerate_image(**args)  # type: ignore[arg-type]  # wrong on purpose
    assert fake_server.request_count == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"created": 1}, "has no images"),
        ({"data": []}, "has no images"),
        ({"data": [{"url": None, "b64_json": None}]}, r"data\[0\] .* has no url and no b64_json"),
        ({"data": [{"b64_json": "***not base64***"}]}, "not valid base64"),
        ({"data": ["x"]}, "is not an object"),
    ],
)
def test_unusable_answers_raise_response_format_error(
    make_media: MakeMedia, fake_server: FakeOpenAIServer, body: dict[str, object], message: str
) -> None:
    fake_server.enqueue(JSONResponse(body))
    with pytest.raises(ResponseFormatError, match=message):
        make_media().generate_image("x")


def _jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + b"\x03" + b"\x00" * 9
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof


def test_sniffing_reads_type_and_size_from_the_bytes() -> None:
    assert sniff_image(tiny_png(3, 5)) == ("image/png", 3, 5)
    assert sniff_image(_jpeg(640, 480)) == ("image/jpeg", 640, 480)
    assert sniff_image(b"GIF89a" + struct.pack("<HH", 7, 9)) == ("image/gif", 7, 9)
    vp8x = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + b"\x00" * 8
        + (99).to_bytes(3, "little")
        + (49).to_bytes(3, "little")
    )
    assert sniff_image(vp8x) == ("image/webp", 100, 50)
    assert sniff_image(b"not an image") == (None, None, None)


def test_an_image_describes_and_saves_itself(tmp_path: object) -> None:
    image = GeneratedImage.from_bytes(tiny_png(2, 3), "https://cdn.example/i.png")
    assert image.describe() == f"2x3 PNG, {len(tiny_png(2, 3))} B"
    from pathlib import Path

    target = image.save(Path(str(tmp_path)) / "i.png")
    assert target.read_bytes() == tiny_png(2, 3)
    with pytest.raises(ValueError, match="no bytes"):
        GeneratedImage(None, "https://cdn.example/i.png").save(Path(str(tmp_path)) / "j.png")
