"""``RuncrateTranscriptionParser``: audio blobs to ``Document``s through Runcrate's
speech-to-text, for RAG over meetings, calls and lectures.

A ``BaseBlobParser`` (langchain-core only), so it also plugs into langchain-community's
``GenericLoader`` when that is installed. Documents and their metadata (``source``,
``duration``, ``language``, ``model``; per segment also ``start``, ``end``, ``segment``) are
made by the core, the same as LlamaIndex's ``RuncrateTranscriptionReader``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseBlobParser, Blob
from langchain_core.documents import Document
from langchain_core.load import Serializable
from pydantic import ConfigDict

from runcrate_integrations.media.settings import TranscriptDocumentSettings
from runcrate_integrations.net.transport import ErrorHook

from ._error_hook import langchain_error
from ._serializable import LangChainSerializable

__all__ = ["RuncrateTranscriptionParser"]


def _where(blob: Blob) -> tuple[str | None, str]:
    """The blob's file name (its format) and how its documents name it."""
    source = blob.source or (str(blob.path) if blob.path is not None else None)
    name = Path(str(blob.path)).name if blob.path is not None else None
    return name, source or name or "audio"


class RuncrateTranscriptionParser(
    LangChainSerializable, TranscriptDocumentSettings, BaseBlobParser, Serializable
):
    """Transcribe audio blobs with Runcrate: one ``Document`` per file, or per timed segment
    with ``segments=True``.

    Example:
        ```python
        from langchain_core.document_loaders import Blob
        from langchain_runcrate import RuncrateTranscriptionParser

        parser = RuncrateTranscriptionParser(language="en")  # key from RUNCRATE_API_KEY
        docs = parser.parse(Blob.from_path("standup.mp3"))
        print(docs[0].page_content, docs[0].metadata["duration"])
        ```
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._rebuild()  # a missing key fails here, typed

    def _error_hook(self) -> ErrorHook:
        return langchain_error

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """The documents of one audio blob (sent as the blob's bytes, named by its path)."""
        name, source = _where(blob)
        for text, metadata in self.transcribe_pieces(blob.as_bytes(), name, source):
            yield Document(page_content=text, metadata=metadata)

    async def alazy_parse(self, blob: Blob) -> AsyncIterator[Document]:
        """Async twin of :meth:`lazy_parse` (``BaseBlobParser`` has none of its own)."""
        name, source = _where(blob)
        for text, metadata in await self.atranscribe_pieces(blob.as_bytes(), name, source):
            yield Document(page_content=text, metadata=metadata)

    async def aparse(self, blob: Blob) -> list[Document]:
        """Async twin of :meth:`parse`."""
        return [doc async for doc in self.alazy_parse(blob)]
