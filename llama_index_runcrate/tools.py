"""``RuncrateToolSpec``: Runcrate's media endpoints as LlamaIndex tools (images, speech,
video, transcription), sync and async.

The tools answer LlamaIndex content blocks: a ``TextBlock`` for the model (what was made, its
size, file and URL) and the media itself as an ``ImageBlock``, ``AudioBlock`` or
``VideoBlock``. In an agent loop ``RuncrateLLM`` sends a tool's blocks as text and shows an
image to a vision model in a user message (one rule for both frameworks,
:mod:`runcrate_integrations.chat.media`). Names, descriptions, argument schemas, limits and
texts are the core's (:mod:`runcrate_integrations.media.tools`), the same as LangChain's tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from llama_index.core.base.llms.types import (
    AudioBlock,
    ContentBlock,
    ImageBlock,
    TextBlock,
    VideoBlock,
)
from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import ConfigDict

from runcrate_integrations.media import tools as media_tools
from runcrate_integrations.media.settings import MediaSettings
from runcrate_integrations.media.tools import (
    IMAGE_TOOL,
    SPEECH_TOOL,
    TRANSCRIPTION_TOOL,
    VIDEO_TOOL,
    MediaOutcome,
    ToolSettings,
)

__all__ = ["RuncrateToolSpec"]


def _blocks(outcome: MediaOutcome) -> list[ContentBlock]:
    """The text for the model, then the media as LlamaIndex's own block."""
    blocks: list[ContentBlock] = [TextBlock(text=outcome.text)]
    data, url = outcome.data, outcome.url
    path = Path(outcome.path) if outcome.path else None
    if outcome.kind == "image" and (data is not None or url is not None):
        blocks.append(ImageBlock(image=data, url=url, path=path, image_mimetype=outcome.mime_type))
    elif outcome.kind == "audio" and data is not None:
        blocks.append(AudioBlock(audio=data, path=path, format=outcome.metadata.get("format")))
    elif outcome.kind == "video" and data is not None:
        blocks.append(VideoBlock(video=data, path=path, video_mimetype=outcome.mime_type))
    return blocks


class RuncrateToolSpec(MediaSettings, BaseToolSpec):
    """Images, speech, video and transcription as LlamaIndex tools, one model each
    (Runcrate's catalog ids by default, so a key is all it needs).

    Example:
        ```python
        from llama_index.core.agent.workflow import FunctionAgent
        from llama_index.tools.runcrate import RuncrateToolSpec

        tools = RuncrateToolSpec(save_dir="media").to_tool_list()  # key: RUNCRATE_API_KEY
        agent = FunctionAgent(tools=tools, llm=RuncrateLLM(model="deepseek/deepseek-v3.2"))
        ```
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # A ClassVar for pydantic (a field otherwise); BaseToolSpec only reads it.
    spec_functions: ClassVar[list[SPEC_FUNCTION_TYPE]] = [  # type: ignore[misc]
        ("generate_image", "agenerate_image"),
        ("text_to_speech", "atext_to_speech"),
        ("generate_video", "agenerate_video"),
        ("speech_to_text", "aspeech_to_text"),
    ]

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._rebuild()  # a missing key fails here, typed

    def _tool_metadata(self) -> dict[str, ToolMetadata]:
        """Each function's name, description and argument schema: the core's."""
        return {
            "generate_image": ToolMetadata(
                name=media_tools.IMAGE_TOOL,
                description=media_tools.IMAGE_DESCRIPTION,
                fn_schema=media_tools.ImageToolArgs,
            ),
            "text_to_speech": ToolMetadata(
                name=media_tools.SPEECH_TOOL,
                description=media_tools.SPEECH_DESCRIPTION,
                fn_schema=media_tools.SpeechToolArgs,
            ),
            "generate_video": ToolMetadata(
                name=media_tools.VIDEO_TOOL,
                description=media_tools.video_description(self.max_duration),
                fn_schema=media_tools.VideoToolArgs,
            ),
            "speech_to_text": ToolMetadata(
                name=media_tools.TRANSCRIPTION_TOOL,
                description=media_tools.TRANSCRIPTION_DESCRIPTION,
                fn_schema=media_tools.TranscriptionToolArgs,
            ),
        }

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The four tools (or those named in ``spec_functions``), each with a sync and an
        async function."""
        mapping = {**self._tool_metadata(), **(func_to_metadata_mapping or {})}
        return super().to_tool_list(spec_functions, mapping)

    # ------------------------------------------------------------------ the functions

    def _make(self, tool: str, **args: Any) -> list[ContentBlock]:
        call = media_tools.tool_call(tool, self.media, args, ToolSettings.of(self))
        return _blocks(call.run())

    async def _amake(self, tool: str, **args: Any) -> list[ContentBlock]:
        call = media_tools.tool_call(tool, self.media, args, ToolSettings.of(self))
        return _blocks(await call.arun())

    def generate_image(
        self,
        prompt: str,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> list[ContentBlock]:
        """Draw a picture from a text description."""
        return self._make(
            IMAGE_TOOL,
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        )

    async def agenerate_image(
        self,
        prompt: str,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> list[ContentBlock]:
        """Async twin of :meth:`generate_image`."""
        return await self._amake(
            IMAGE_TOOL,
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        )

    def text_to_speech(self, text: str, voice: str | None = None) -> list[ContentBlock]:
        """Read text aloud."""
        return self._make(SPEECH_TOOL, text=text, voice=voice)

    async def atext_to_speech(self, text: str, voice: str | None = None) -> list[ContentBlock]:
        """Async twin of :meth:`text_to_speech`."""
        return await self._amake(SPEECH_TOOL, text=text, voice=voice)

    def generate_video(
        self, prompt: str, duration: float | None = None, aspect_ratio: str | None = None
    ) -> list[ContentBlock]:
        """Make a short video clip (waits for the job; at most ``max_duration`` seconds)."""
        return self._make(VIDEO_TOOL, prompt=prompt, duration=duration, aspect_ratio=aspect_ratio)

    async def agenerate_video(
        self, prompt: str, duration: float | None = None, aspect_ratio: str | None = None
    ) -> list[ContentBlock]:
        """Async twin of :meth:`generate_video`."""
        return await self._amake(
            VIDEO_TOOL, prompt=prompt, duration=duration, aspect_ratio=aspect_ratio
        )

    def speech_to_text(self, audio: str) -> list[ContentBlock]:
        """Transcribe an audio file (a local path or an http(s) URL)."""
        return self._make(TRANSCRIPTION_TOOL, audio=audio)

    async def aspeech_to_text(self, audio: str) -> list[ContentBlock]:
        """Async twin of :meth:`speech_to_text`."""
        return await self._amake(TRANSCRIPTION_TOOL, audio=audio)
