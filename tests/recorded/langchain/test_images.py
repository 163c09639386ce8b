"""Image input needs a vision model; these replay only cassettes recorded with one.

Recorded when ``RUNCRATE_TEST_VISION_MODEL`` is set for ``scripts/record`` (live Runcrate);
otherwise the ``vision_model_id`` fixture skips them ("needs a vision model cassette").
"""

from __future__ import annotations

import base64

from langchain_core.messages import HumanMessage

from tests.recorded.images import png

from .conftest import MakeChat

IMAGE_B64 = base64.b64encode(png()).decode()
QUESTION = "What colour is this image? Answer in one word."


def test_image_url_data_part(chat: MakeChat, vision_model_id: str) -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": QUESTION},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}},
        ]
    )
    answer = chat(model=vision_model_id).invoke([message])
    assert isinstance(answer.content, str)
    assert answer.content.strip()


def test_standard_image_block(chat: MakeChat, vision_model_id: str) -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": QUESTION},
            {"type": "image", "base64": IMAGE_B64, "mime_type": "image/png"},
        ]
    )
    answer = chat(model=vision_model_id).invoke([message])
    assert isinstance(answer.content, str)
    assert answer.content.strip()
