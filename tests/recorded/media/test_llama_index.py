"""LlamaIndex's media classes replayed from cassettes of a real server: the tool spec's four
tools, sync and async (images and video are the local server's labelled stand-ins; speech and
transcription real models), and the transcription reader, alone and in SimpleDirectoryReader."""

from __future__ import annotations

import shutil
from pathlib import Path

from llama_index.core import SimpleDirectoryReader
from llama_index.core.base.llms.types import AudioBlock, ImageBlock, TextBlock, VideoBlock

from llama_index_runcrate import RuncrateToolSpec, RuncrateTranscriptionReader

from .conftest import STANDUP, connection, polling


def _spec(**fields: object) -> RuncrateToolSpec:
    return RuncrateToolSpec(**connection(), **polling(), **fields)


def test_image_and_speech_tools_answer_blocks(tmp_path: Path) -> None:
    tools = {t.metadata.name: t for t in _spec(save_dir=str(tmp_path)).to_tool_list()}
    image = tools["generate_image"].call(
        prompt="a red fox in the snow", aspect_ratio="1:1", seed=11
    )
    text, block = image.blocks
    assert isinstance(text, TextBlock) and isinstance(block, ImageBlock)
    assert block.image_mimetype == "image/png" and "PNG" in text.text
    speech = tools["text_to_speech"].call(text="The fox is ready.")
    assert isinstance(speech.blocks[1], AudioBlock) and speech.blocks[1].format == "mp3"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".mp3", ".png"]


async def test_async_video_and_transcription_tools() -> None:
    tools = {t.metadata.name: t for t in _spec(language="en").to_tool_list()}
    video = await tools["generate_video"].acall(prompt="waves rolling onto a beach", duration=2)
    assert isinstance(video.blocks[1], VideoBlock)
    assert video.blocks[1].resolve_video(as_base64=False).read()[4:8] == b"ftyp"
    heard = await tools["speech_to_text"].acall(audio=str(STANDUP))
    assert "release notes" in heard.content.lower()


def test_the_reader_alone_and_in_simple_directory_reader(tmp_path: Path) -> None:
    reader = RuncrateTranscriptionReader(**connection(), language="en")
    (doc,) = reader.load_data(STANDUP)
    assert "friday" in doc.text.lower()
    assert doc.metadata["model"] == "openai/whisper-large-v3"
    folder = tmp_path / "calls"
    folder.mkdir()
    shutil.copy(STANDUP, folder / "standup.mp3")
    (doc,) = SimpleDirectoryReader(str(folder), file_extractor={".mp3": reader}).load_data()
    assert doc.metadata["file_name"] == "standup.mp3" and "release notes" in doc.text.lower()


async def test_the_reader_by_segment_async() -> None:
    reader = RuncrateTranscriptionReader(**connection(), language="en", segments=True)
    docs = await reader.aload_data([STANDUP])
    assert docs and all(d.metadata["end"] > d.metadata["start"] for d in docs)
    assert "notes" in " ".join(d.text for d in docs).lower()
