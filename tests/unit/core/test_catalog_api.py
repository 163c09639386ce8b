"""The model catalog and the streaming request path."""

from __future__ import annotations

import httpx2
import pytest

from runcrate_integrations import catalog, errors
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net import transport
from tests.helpers import Recorder, post, private_async_client, private_client, sse, text_chunks

CATALOG = {
    "object": "list",
    "data": [
        {
            "id": "deepseek/deepseek-v3.2",
            "context_length": 131072,
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "supported_features": ["tools", "structured_outputs"],
        },
        {
            "id": "qwen/qwen2.5-vl-72b",
            "context_length": 32768,
            "input_modalities": ["text", "image"],
        },
        {"id": "bare"},
        {"id": "llamacpp", "architecture": {"input_modalities": ["text"]}},
        {"no_id": True},
    ],
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    catalog.clear_cache()


def _settings() -> ClientSettings:
    return ClientSettings.resolve(api_key="k", base_url="http://catalog/v1")


def test_list_models_parses_and_caches() -> None:
    rec = Recorder([CATALOG], models=None)
    client = private_client(_settings(), rec.client())
    models = catalog.fetch(client)
    assert [m.id for m in models] == [
        "deepseek/deepseek-v3.2",
        "qwen/qwen2.5-vl-72b",
        "bare",
        "llamacpp",
    ]
    assert rec.requests[0].method == "GET" and rec.requests[0].url.path == "/v1/models"
    ds = models[0]
    assert (
        ds.context_length,
        ds.supports_tools,
        ds.supports_structured_output,
        ds.supports_image_input,
    ) == (131072, True, True, False)
    vl = models[1]
    assert (vl.supports_image_input, vl.supports_tools) == (True, None)
    bare = models[2]
    assert (bare.context_length, bare.supports_tools, bare.supports_image_input) == (
        None,
        None,
        None,
    )
    assert models[3].input_modalities == ("text",)
    # cached: no second request, and lookups need no network
    assert catalog.fetch(client) == models
    assert len(rec.requests) == 1
    assert catalog.cached_model_info("http://catalog/v1/", "bare") == bare
    assert catalog.cached_model_info("http://catalog/v1", "unknown") is None
    assert catalog.cached_model_info("http://elsewhere/v1", "bare") is None
    rec.add(CATALOG)
    catalog.fetch(client, refresh=True)
    assert len(rec.requests) == 2


async def test_alist_models() -> None:
    rec = Recorder([CATALOG], models=None)
    client = private_async_client(_settings(), rec.async_client())
    models = await catalog.afetch(client)
    assert len(models) == 4
    assert catalog.cached_model_info("http://catalog/v1", "deepseek/deepseek-v3.2") is not None


def _events(client: object, body: dict[str, object]) -> list[dict[str, object]]:
    response = transport.send(client, post(body, stream=True))  # type: ignore[arg-type]
    return list(transport.iter_events(response))


def test_stream_events_are_dicts_and_the_body_is_sent() -> None:
    rec = Recorder([sse(text_chunks(["a", "b"]))])
    client = private_client(_settings(), rec.client())
    body = {"model": "m", "stream": True}
    chunks = _events(client, body)
    assert len(chunks) == 5 and chunks[1]["choices"][0]["delta"]["content"] == "a"
    assert rec.body == {"model": "m", "stream": True}


def test_stream_with_non_json_line_raises_clear_error() -> None:
    resp = httpx2.Response(
        200,
        content=b'data: {"choices": []}\n\ndata: garbage\n\n',
        headers={"content-type": "text/event-stream"},
    )
    client = private_client(_settings(), Recorder([resp]).client())
    with pytest.raises(errors.ResponseFormatError, match="not JSON"):
        _events(client, {"model": "m"})


async def test_astream_json() -> None:
    rec = Recorder([sse(text_chunks(["x"]))])
    client = private_async_client(_settings(), rec.async_client())
    response = await transport.asend(client, post({"model": "m"}, stream=True))
    out = [c async for c in transport.aiter_events(response)]
    assert out[1]["choices"][0]["delta"]["content"] == "x"


def test_stream_error_status_raises_typed_error() -> None:
    rec = Recorder(
        [
            httpx2.Response(
                402, json={"error": {"code": "insufficient_credits", "message": "no credits"}}
            )
        ]
    )
    client = private_client(_settings(), rec.client())
    with pytest.raises(errors.InsufficientCreditsError):
        _events(client, {"model": "m"})
