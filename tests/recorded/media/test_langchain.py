"""LangChain's media classes replayed from cassettes of a real server: langchain-tests'
``ToolsIntegrationTests`` for each tool (images and video are the local server's labelled
stand-ins; speech and transcription real models), and the transcription parser."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.document_loaders import Blob
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests

from langchain_runcrate import (
    RuncrateImageGenerationTool,
    RuncrateSpeechToTextTool,
    RuncrateTextToSpeechTool,
    RuncrateToolkit,
    RuncrateTranscriptionParser,
    RuncrateVideoGenerationTool,
)

from .conftest import SMALL_IMAGES, STANDUP, connection, polling


class TestImageToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**connection(), "extra_body": SMALL_IMAGES}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a lighthouse at dusk, watercolour", "seed": 7}


class TestTextToSpeechToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateTextToSpeechTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return connection()

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "Your picture is ready."}


class TestVideoToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateVideoGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**connection(), **polling(), "extra_body": SMALL_IMAGES}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "waves rolling onto a beach", "duration": 2}


class TestSpeechToTextToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RuncrateSpeechToTextTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**connection(), "language": "en"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"audio": str(STANDUP)}


def test_speech_made_by_one_tool_is_heard_by_another(tmp_path: Any) -> None:
    """The toolkit's speech tool says a sentence, its transcription tool hears it back (real
    models on the local server: piper, then Whisper tiny.en)."""
    tools = {
        t.name: t
        for t in RuncrateToolkit(**connection(), save_dir=str(tmp_path), language="en").get_tools()
    }
    spoken = tools["text_to_speech"].invoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "text_to_speech",
            "args": {"text": "The quarterly report is due on Monday."},
        }
    )
    assert isinstance(spoken, ToolMessage) and spoken.artifact["format"] == "mp3"
    heard = tools["speech_to_text"].invoke({"audio": spoken.artifact["path"]})
    assert "quarterly report" in heard.lower() and "monday" in heard.lower()


@pytest.mark.parametrize("segments", [False, True], ids=["per-file", "per-segment"])
def test_the_parser_transcribes_a_recording(segments: bool) -> None:
    parser = RuncrateTranscriptionParser(**connection(), language="en", segments=segments)
    docs = parser.parse(Blob.from_path(STANDUP))
    text = " ".join(d.page_content for d in docs).lower()
    assert "release notes" in text and "friday" in text
    meta = docs[0].metadata
    assert meta["source"] == str(STANDUP) and meta["model"] == "openai/whisper-large-v3"
    assert meta["language"] == "en" and meta["duration"] > 0
    if segments:
        assert all(d.metadata["end"] > d.metadata["start"] for d in docs)
