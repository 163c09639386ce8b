"""``RuncrateTranscriptionReader``: audio files to LlamaIndex ``Document``s through Runcrate's
speech-to-text, for RAG over meetings, calls and lectures.

A ``BaseReader`` whose ``load_data`` / ``aload_data`` take one path or a list, and which
plugs into ``SimpleDirectoryReader(file_extractor={".mp3": reader})`` (which calls
``load_data(file, extra_info=..., fs=...)``). Documents and their metadata (``source``,
``duration``, ``language``, ``model``; per segment also ``start``, ``end``, ``segment``) are
made by the core, the same as LangChain's ``RuncrateTranscriptionParser``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import ConfigDict

from runcrate_integrations.media.settings import TranscriptDocumentSettings

__all__ = ["RuncrateTranscriptionReader"]

PathLike = str | os.PathLike[str]


def _paths(file: PathLike | Sequence[PathLike]) -> list[PathLike]:
    if isinstance(file, (str, os.PathLike)):
        return [file]
    return list(file)


def _documents(
    pieces: list[tuple[str, dict[str, Any]]], extra_info: dict[str, Any] | None
) -> list[Document]:
    return [
        Document(text=text, metadata={**(extra_info or {}), **metadata})
        for text, metadata in pieces
    ]


class RuncrateTranscriptionReader(TranscriptDocumentSettings, BasePydanticReader):
    """Transcribe audio files with Runcrate: one ``Document`` per file, or per timed segment
    with ``segments=True``.

    Example:
        ```python
        from llama_index.core import SimpleDirectoryReader
        from llama_index.readers.runcrate import RuncrateTranscriptionReader

        reader = RuncrateTranscriptionReader(language="en")  # key from RUNCRATE_API_KEY
        docs = SimpleDirectoryReader("calls/", file_extractor={".mp3": reader}).load_data()
        ```
    """

    model_config = ConfigDict(
        extra="forbid", hide_input_in_errors=True, arbitrary_types_allowed=True
    )

    is_remote: bool = True  # the audio is sent to Runcrate

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._rebuild()  # a missing key fails here, typed

    @classmethod
    def class_name(cls) -> str:
        return "RuncrateTranscriptionReader"

    def _audio(self, path: PathLike, fs: Any) -> tuple[Any, str | None, str]:
        """What to send for ``path``: the path itself, or its bytes read through ``fs``."""
        where = os.fspath(path)
        if fs is None:
            return where, None, where
        with fs.open(where, "rb") as handle:
            return handle.read(), Path(where).name, where

    def lazy_load_data(
        self,
        file: PathLike | Sequence[PathLike],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        **kwargs: Any,
    ) -> Iterator[Document]:
        """The documents of each file in turn (``fs``: an fsspec filesystem to read from)."""
        for path in _paths(file):
            audio, name, source = self._audio(path, fs)
            yield from _documents(self.transcribe_pieces(audio, name, source), extra_info)

    def load_data(
        self,
        file: PathLike | Sequence[PathLike],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Transcribe one audio file or a list of them; ``extra_info`` is added to every
        document's metadata (``SimpleDirectoryReader`` passes the file's)."""
        return list(self.lazy_load_data(file, extra_info, fs))

    async def aload_data(
        self,
        file: PathLike | Sequence[PathLike],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`load_data` (requests made natively, not in a thread)."""
        documents: list[Document] = []
        for path in _paths(file):
            audio, name, source = self._audio(path, fs)
            pieces = await self.atranscribe_pieces(audio, name, source)
            documents += _documents(pieces, extra_info)
        return documents
