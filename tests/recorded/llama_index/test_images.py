"""Image input needs a vision model; these replay only cassettes recorded with one.

Recorded when ``RUNCRATE_TEST_VISION_MODEL`` is set for ``scripts/record`` (live Runcrate);
otherwise the ``vision_model_id`` fixture skips them ("needs a vision model cassette").
"""

from __future__ import annotations

from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.llms import ChatMessage, MessageRole

from tests.recorded.images import png

from .conftest import MakeLLM

QUESTION = "What colour is this image? Answer in one word."


def test_image_block(llm: MakeLLM, vision_model_id: str) -> None:
    message = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text=QUESTION), ImageBlock(image=png(), image_mimetype="image/png")],
    )
    response = llm(model=vision_model_id).chat([message])
    assert (response.message.content or "").strip()
