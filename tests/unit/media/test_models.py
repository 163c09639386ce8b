"""``list_models`` / ``alist_models`` filtered by modality, from the catalog's
``input_modalities`` / ``output_modalities``."""

from __future__ import annotations

import pytest

from runcrate_integrations import alist_models, list_models
from tests.support.fake_openai_server import FakeOpenAIServer

from .conftest import KEY

MODELS = [
    {"id": "openai/whisper-large-v3", "input_modalities": ["audio"], "output_modalities": ["text"]},
    {"id": "hexgrad/Kokoro-82M", "input_modalities": ["text"], "output_modalities": ["audio"]},
    {
        "id": "black-forest-labs/FLUX.1-schnell",
        "input_modalities": ["text"],
        "output_modalities": ["image"],
    },
    {"id": "google/veo-3.0", "input_modalities": ["text"], "output_modalities": ["video"]},
    {
        "id": "qwen/qwen2.5-vl-72b",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
    },
    {"id": "deepseek/deepseek-v3.2", "input_modalities": ["text"], "output_modalities": ["text"]},
]


@pytest.fixture
def catalog(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.models = MODELS
    return fake_server


def test_filters_by_modality(catalog: FakeOpenAIServer) -> None:
    url = catalog.base_url

    def ids(**filters: str) -> list[str]:
        return [m.id for m in list_models(api_key=KEY, base_url=url, refresh=True, **filters)]

    assert ids(output_modality="image") == ["black-forest-labs/FLUX.1-schnell"]
    assert ids(output_modality="audio") == ["hexgrad/Kokoro-82M"]
    assert ids(input_modality="audio") == ["openai/whisper-large-v3"]
    assert ids(output_modality="video") == ["google/veo-3.0"]
    assert ids(modality="image") == ["black-forest-labs/FLUX.1-schnell", "qwen/qwen2.5-vl-72b"]
    assert ids(input_modality="text", output_modality="text") == [
        "qwen/qwen2.5-vl-72b",
        "deepseek/deepseek-v3.2",
    ]
    assert len(ids()) == 6


async def test_async_filters_alike(catalog: FakeOpenAIServer) -> None:
    found = await alist_models(api_key=KEY, base_url=catalog.base_url, modality="audio")
    assert [m.id for m in found] == ["openai/whisper-large-v3", "hexgrad/Kokoro-82M"]


def test_a_bad_modality_is_refused_before_sending(catalog: FakeOpenAIServer) -> None:
    with pytest.raises(ValueError, match="modality must be a modality such as 'image'"):
        list_models(api_key=KEY, base_url=catalog.base_url, modality="")
    assert catalog.request_count == 0
