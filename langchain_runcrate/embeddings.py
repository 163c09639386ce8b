"""``RuncrateEmbeddings``: LangChain's ``Embeddings`` protocol over Runcrate's ``/embeddings``.

Request bodies, batching and answer parsing live in :mod:`runcrate_integrations.embeddings`;
this class holds the configuration and maps LangChain's four methods onto it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from pydantic import AliasChoices, ConfigDict, Field

from runcrate_integrations.embeddings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    EmbeddingSettings,
    progress_bar,
)
from runcrate_integrations.net.transport import ErrorHook

from ._error_hook import langchain_error
from ._serializable import LangChainSerializable


class RuncrateEmbeddings(LangChainSerializable, EmbeddingSettings, Serializable, Embeddings):
    """Runcrate embedding models for LangChain (vector stores, retrievers, RAG).

    Example:
        ```python
        from langchain_runcrate import RuncrateEmbeddings

        embeddings = RuncrateEmbeddings(model="BAAI/bge-m3")  # key from RUNCRATE_API_KEY
        vectors = embeddings.embed_documents(["Runcrate runs models.", "Vectors!"])
        query = await embeddings.aembed_query("What does Runcrate run?")
        ```
    """

    # A misspelt option (dimension=, chunksize=) is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    model: str = Field(
        validation_alias=AliasChoices("model", "model_name"),
        description="Embedding model id, e.g. 'BAAI/bge-m3'.",
    )
    chunk_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        validation_alias=AliasChoices("chunk_size", "embed_batch_size"),
        description="Texts sent per request.",
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY,
        ge=1,
        description="Batches in flight at once for a large input (order is always kept).",
    )
    show_progress_bar: bool = Field(
        default=False, description="Show a tqdm progress bar over the texts (needs tqdm)."
    )

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Outside pydantic validation so MissingAPIKeyError keeps its type.
        self._rebuild()

    def _error_hook(self) -> ErrorHook:
        return langchain_error

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed ``texts`` in batches of ``chunk_size`` (up to ``max_concurrency`` at once);
        one vector per text, in order."""
        with progress_bar(self.show_progress_bar, len(texts)) as progress:
            return self.embedder.embed_texts(texts, progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self.embedder.embed_text(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (native, no thread pool)."""
        with progress_bar(self.show_progress_bar, len(texts)) as progress:
            return await self.embedder.aembed_texts(texts, progress)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (native, no thread pool)."""
        return await self.embedder.aembed_text(text)
