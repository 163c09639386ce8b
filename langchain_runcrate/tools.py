"""Runcrate's media endpoints as LangChain tools, and a toolkit that hands an agent all four.

Each tool answers ``(content, artifact)`` (``response_format="content_and_artifact"``): the
content is a short text for the model (what was made, its size, where it was saved, its URL),
the artifact a dict holding the bytes and metadata (``{"type", "data", "mime_type", "url",
"path", "model", ...}``). Called by an agent, the tool answers a ``ToolMessage`` whose
``artifact`` is that dict; ``ChatRuncrate`` then shows an image to a vision model in a user
message, never in the tool message (one rule for both frameworks,
:mod:`runcrate_integrations.chat.media`).

What the tools do (arguments, limits, saving, the text) is the core's
(:mod:`runcrate_integrations.media.tools`); their settings are the core's spec
(:mod:`runcrate_integrations.media.settings`). An argument a model got wrong (an empty prompt,
a video longer than ``max_duration``) is answered to the model as an error message, nothing
sent, and so is a video job that ended failed; API errors (401, 402, ...) and timeouts are
raised, typed as for ``ChatRuncrate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.load import Serializable
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import ConfigDict, Field, model_validator

from runcrate_integrations.config import CONNECTION_FIELDS
from runcrate_integrations.media import tools as media_tools
from runcrate_integrations.media.settings import (
    DEFAULT_MAX_DURATION,
    ImageSettings,
    MediaSettings,
    SpeechSettings,
    TranscriptionSettings,
    VideoSettings,
)
from runcrate_integrations.media.tools import (
    ImageToolArgs,
    MediaOutcome,
    SpeechToolArgs,
    ToolSettings,
    TranscriptionToolArgs,
    VideoToolArgs,
)
from runcrate_integrations.net.transport import ErrorHook

from ._error_hook import langchain_error
from ._serializable import LangChainSerializable

__all__ = [
    "RuncrateImageGenerationTool",
    "RuncrateSpeechToTextTool",
    "RuncrateTextToSpeechTool",
    "RuncrateToolkit",
    "RuncrateVideoGenerationTool",
]

Answer = tuple[str, dict[str, Any]]


@contextmanager
def _told_to_the_model() -> Iterator[None]:
    # What the model can act on becomes a ToolException, which handle_tool_error=True answers
    # to it as text: a bad argument (nothing was sent), a video job that ended failed (it may
    # ask again differently). Everything else (API errors, timeouts) is raised.
    from runcrate_integrations.errors import JobFailedError

    try:
        yield
    except (ValueError, JobFailedError) as exc:
        if isinstance(exc, ToolException):
            raise
        raise ToolException(str(exc)) from exc


def _answer(outcome: MediaOutcome) -> Answer:
    return outcome.text, outcome.artifact()


class _MediaTool(LangChainSerializable):
    """What every media tool shares: construction, error translation, the answer shape.
    Listed before the core's settings class and ``BaseTool`` in each tool's bases, so the
    settings' copy and pickle rules apply."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Outside pydantic validation so MissingAPIKeyError keeps its type.
        self._rebuild()  # type: ignore[attr-defined]  # a Configured's, in every tool's MRO

    def _error_hook(self) -> ErrorHook:
        return langchain_error

    _tool: ClassVar[str]  # the core's name of the tool (the user may rename ``name``)

    def _call(self, values: tuple[Any, ...], args: dict[str, Any]) -> media_tools.ToolCall:
        # A plain string input reaches _run positionally (LangChain's convention): it is the
        # schema's first argument.
        tool: Any = self  # a BaseTool and a media settings class, in every tool's MRO
        given = {**dict(zip(tool.args_schema.model_fields, values, strict=False)), **args}
        return media_tools.tool_call(self._tool, tool.media, given, ToolSettings.of(self))

    def _run(
        self, *values: Any, run_manager: CallbackManagerForToolRun | None = None, **args: Any
    ) -> Answer:
        with _told_to_the_model():
            return _answer(self._call(values, args).run())

    async def _arun(
        self,
        *values: Any,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **args: Any,
    ) -> Answer:
        with _told_to_the_model():
            return _answer(await self._call(values, args).arun())


_CONFIG = ConfigDict(extra="forbid", hide_input_in_errors=True, arbitrary_types_allowed=True)
_FORMAT = Literal["content", "content_and_artifact"]


class RuncrateImageGenerationTool(_MediaTool, ImageSettings, BaseTool):
    """Draw images with Runcrate's image models.

    Example:
        ```python
        from langchain_runcrate import RuncrateImageGenerationTool

        tool = RuncrateImageGenerationTool(save_dir="images")  # key from RUNCRATE_API_KEY
        message = tool.invoke({"type": "tool_call", "id": "1", "name": "generate_image",
                               "args": {"prompt": "a lighthouse at dusk"}})
        png = message.artifact["data"]  # message.content: what the model reads
        ```
    """

    model_config = _CONFIG
    response_format: _FORMAT = "content_and_artifact"
    handle_tool_error: Any = True
    name: str = media_tools.IMAGE_TOOL
    description: str = media_tools.IMAGE_DESCRIPTION
    args_schema: Any = Field(default=ImageToolArgs, exclude=True)  # fixed per class
    _tool: ClassVar[str] = media_tools.IMAGE_TOOL


class RuncrateTextToSpeechTool(_MediaTool, SpeechSettings, BaseTool):
    """Read text aloud with Runcrate's speech models.

    Example:
        ```python
        from langchain_runcrate import RuncrateTextToSpeechTool

        tool = RuncrateTextToSpeechTool(save_dir="audio", speech_format="mp3")
        text, artifact = tool._run("Hello there.")  # or tool.invoke({"text": ...})
        ```
    """

    model_config = _CONFIG
    response_format: _FORMAT = "content_and_artifact"
    handle_tool_error: Any = True
    name: str = media_tools.SPEECH_TOOL
    description: str = media_tools.SPEECH_DESCRIPTION
    args_schema: Any = Field(default=SpeechToolArgs, exclude=True)  # fixed per class
    _tool: ClassVar[str] = media_tools.SPEECH_TOOL


class RuncrateVideoGenerationTool(_MediaTool, VideoSettings, BaseTool):
    """Make short video clips with Runcrate's video models (jobs of a few minutes; billed per
    second, so ``max_duration`` caps what a model may ask for).

    Example:
        ```python
        from langchain_runcrate import RuncrateVideoGenerationTool

        tool = RuncrateVideoGenerationTool(max_duration=6, save_dir="clips")
        print(tool.invoke({"prompt": "waves rolling onto a beach", "duration": 4}))
        ```
    """

    model_config = _CONFIG
    response_format: _FORMAT = "content_and_artifact"
    handle_tool_error: Any = True
    name: str = media_tools.VIDEO_TOOL
    description: str = ""
    args_schema: Any = Field(default=VideoToolArgs, exclude=True)  # fixed per class
    _tool: ClassVar[str] = media_tools.VIDEO_TOOL

    @model_validator(mode="before")
    @classmethod
    def _describe(cls, data: Any) -> Any:
        """The description states the developer's cap (``max_duration``, as constructed)."""
        if isinstance(data, dict) and not data.get("description"):
            cap = data.get("max_duration", DEFAULT_MAX_DURATION)
            if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0:
                data = {**data, "description": media_tools.video_description(cap)}
        return data


class RuncrateSpeechToTextTool(_MediaTool, TranscriptionSettings, BaseTool):
    """Transcribe audio (a local path or an http(s) URL) with Runcrate's speech-to-text
    models; the content is the transcript, the artifact its metadata and segments.

    Example:
        ```python
        from langchain_runcrate import RuncrateSpeechToTextTool

        tool = RuncrateSpeechToTextTool(language="en")
        print(tool.invoke({"audio": "meeting.mp3"}))
        ```
    """

    model_config = _CONFIG
    response_format: _FORMAT = "content_and_artifact"
    handle_tool_error: Any = True
    name: str = media_tools.TRANSCRIPTION_TOOL
    description: str = media_tools.TRANSCRIPTION_DESCRIPTION
    args_schema: Any = Field(default=TranscriptionToolArgs, exclude=True)  # fixed per class
    _tool: ClassVar[str] = media_tools.TRANSCRIPTION_TOOL


class RuncrateToolkit(LangChainSerializable, MediaSettings, BaseToolkit, Serializable):
    """All four media tools for an agent, on one key and URL: images, speech, video and
    transcription, each with its own model (Runcrate's catalog ids by default).

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_runcrate import ChatRuncrate, RuncrateToolkit

        tools = RuncrateToolkit(save_dir="media", max_duration=6).get_tools()
        agent = create_agent(ChatRuncrate(model="deepseek/deepseek-v3.2"), tools)
        ```
    """

    model_config = _CONFIG

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._rebuild()  # a missing key fails here, typed

    def _error_hook(self) -> ErrorHook:
        return langchain_error

    def _connection(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONNECTION_FIELDS}

    def get_tools(self) -> list[BaseTool]:
        """The image, speech, video and transcription tools, sharing this toolkit's settings
        (and so its pooled connections and rate limiter)."""
        common = {**self._connection(), "save_dir": self.save_dir}
        return [
            RuncrateImageGenerationTool(**common, model=self.image_model),
            RuncrateTextToSpeechTool(
                **common,
                model=self.speech_model,
                voice=self.voice,
                speech_format=self.speech_format,
            ),
            RuncrateVideoGenerationTool(
                **common,
                model=self.video_model,
                max_duration=self.max_duration,
                video_timeout=self.video_timeout,
                poll_interval=self.poll_interval,
            ),
            RuncrateSpeechToTextTool(
                **self._connection(), model=self.transcription_model, language=self.language
            ),
        ]
