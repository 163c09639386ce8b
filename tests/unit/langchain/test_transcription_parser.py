"""``RuncrateTranscriptionParser``: a blob's upload (fields and file), one Document per file
or per timed segment with the shared metadata, async, errors in the dual classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.document_loaders import BaseBlobParser, Blob
from langchain_core.exceptions import ModelAuthenticationError

from langchain_runcrate import RuncrateTranscriptionParser
from runcrate_integrations import AuthenticationError
from tests.support.fake_media import fake_audio, multipart_fields
from tests.support.fake_openai_server import FakeOpenAIServer, error

KEY = "rc_live_LC_PARSER_KEY_11"


@pytest.fixture
def parser(fake_server: FakeOpenAIServer, no_runcrate_env: None) -> RuncrateTranscriptionParser:
    return RuncrateTranscriptionParser(api_key=KEY, base_url=fake_server.base_url, max_retries=0)


def _blob(tmp_path: Path, text: str = "we ship on friday after review") -> Blob:
    path = tmp_path / "standup.mp3"
    path.write_bytes(fake_audio(text))
    return Blob.from_path(path)


def test_one_document_per_file_with_the_shared_metadata(
    parser: RuncrateTranscriptionParser, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    assert isinstance(parser, BaseBlobParser)
    blob = _blob(tmp_path)
    (doc,) = parser.parse(blob)
    assert doc.page_content == "we ship on friday after review"
    assert doc.metadata == {
        "source": str(tmp_path / "standup.mp3"),
        "duration": 2.4,
        "language": "en",
        "model": "openai/whisper-large-v3",
    }
    assert multipart_fields(fake_server.last_request) == {
        "model": "openai/whisper-large-v3",
        "response_format": "json",
        "file": ("standup.mp3", fake_audio("we ship on friday after review"), "audio/mpeg"),
    }


def test_one_document_per_segment_when_asked(
    fake_server: FakeOpenAIServer, tmp_path: Path, no_runcrate_env: None
) -> None:
    parser = RuncrateTranscriptionParser(
        api_key=KEY, base_url=fake_server.base_url, segments=True, language="en", model="acme/stt"
    )
    docs = list(parser.lazy_parse(_blob(tmp_path)))
    fields = multipart_fields(fake_server.last_request)
    assert (fields["response_format"], fields["language"], fields["model"]) == (
        "vtt",
        "en",
        "acme/stt",
    )
    assert [d.page_content for d in docs] == ["we ship on", "friday after review"]
    base = {
        "source": str(tmp_path / "standup.mp3"),
        "duration": 3.0,
        "language": "en",
        "model": "acme/stt",
    }
    assert [d.metadata for d in docs] == [
        {**base, "start": 0.0, "end": 1.5, "segment": 0},
        {**base, "start": 1.5, "end": 3.0, "segment": 1},
    ]


async def test_async_parse_and_a_blob_of_bytes(
    parser: RuncrateTranscriptionParser, fake_server: FakeOpenAIServer
) -> None:
    blob = Blob.from_data(
        fake_audio("from memory"), path="memo.m4a", metadata={"source": "s3://bucket/memo.m4a"}
    )
    (doc,) = await parser.aparse(blob)
    assert doc.page_content == "from memory"
    assert doc.metadata["source"] == "s3://bucket/memo.m4a"
    assert multipart_fields(fake_server.last_request)["file"][0] == "memo.m4a"


def test_errors_are_the_dual_classes(
    parser: RuncrateTranscriptionParser, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_server.enqueue(error(401, "invalid_api_key", "no"))
    with pytest.raises(AuthenticationError) as info:
        parser.parse(_blob(tmp_path))
    assert isinstance(info.value, ModelAuthenticationError)


def test_a_blob_that_is_not_audio_sends_nothing(
    parser: RuncrateTranscriptionParser, fake_server: FakeOpenAIServer
) -> None:
    with pytest.raises(ValueError, match=r"\.pdf is not a format Runcrate transcribes"):
        parser.parse(Blob.from_data(b"%PDF-1.4", path="report.pdf"))
    assert fake_server.request_count == 0
