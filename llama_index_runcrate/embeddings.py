"""``RuncrateEmbedding``: LlamaIndex's ``BaseEmbedding`` over Runcrate's ``/embeddings``.

LlamaIndex batches texts itself (``embed_batch_size``) and each of its batches goes out as one
request, up to ``num_workers`` at once (sync and async); bodies, parsing and the ordered
thread map live in :mod:`runcrate_integrations.embeddings`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index_instrumentation import get_dispatcher
from pydantic import AliasChoices, ConfigDict, Field

from runcrate_integrations.embeddings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    EmbeddingSettings,
    batches,
    check_texts,
    map_in_threads,
    progress_bar,
)

dispatcher = get_dispatcher(__name__)


class RuncrateEmbedding(EmbeddingSettings, BaseEmbedding):
    """Runcrate embedding models for LlamaIndex (indexes, retrievers, ingestion pipelines).

    Example:
        ```python
        from llama_index_runcrate import RuncrateEmbedding

        embed_model = RuncrateEmbedding(model="BAAI/bge-m3")  # key from RUNCRATE_API_KEY
        vectors = embed_model.get_text_embedding_batch(["Runcrate runs models.", "Vectors!"])
        query = await embed_model.aget_query_embedding("What does Runcrate run?")
        ```
    """

    # extra="forbid": a misspelt option (dimension=...) fails; errors never echo the key.
    model_config = ConfigDict(
        protected_namespaces=("pydantic_model_",),
        arbitrary_types_allowed=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    model_field: ClassVar[str] = "model_name"
    batch_size_field: ClassVar[str] = "embed_batch_size"
    concurrency_field: ClassVar[str] = "num_workers"

    model_name: str = Field(
        validation_alias=AliasChoices("model_name", "model"),
        description="Embedding model id, e.g. 'BAAI/bge-m3' (alias: model).",
    )
    embed_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        gt=0,
        le=2048,
        validation_alias=AliasChoices("embed_batch_size", "chunk_size"),
        description="Texts sent per request.",
    )
    num_workers: int | None = Field(
        default=DEFAULT_MAX_CONCURRENCY,
        validation_alias=AliasChoices("num_workers", "max_concurrency"),
        description="Batches in flight at once in get_text_embedding_batch and its async twin "
        "(order is kept); 1 or None sends them one after another.",
    )

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Outside pydantic validation so MissingAPIKeyError keeps its type.
        self._rebuild()

    @classmethod
    def class_name(cls) -> str:
        return "RuncrateEmbedding"

    # Every text is checked first, so a bad text near the end fails before any batch is sent
    # (and paid for). LlamaIndex's sync loop sends one batch after another; with num_workers
    # > 1 the batches go out as in the async path: up to num_workers at once, in order, each
    # with LlamaIndex's own events, callbacks, cache and rate limiter.
    @dispatcher.span
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        check_texts(texts)
        chunks = batches(texts, self.embed_batch_size)
        workers = min(self.num_workers or 1, len(chunks))
        if workers <= 1:
            return super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)
        model_dict = self.to_payload()

        def embed(batch: list[str]) -> list[Embedding]:
            return self._embed_batch(batch, model_dict)

        with progress_bar(show_progress, len(texts)) as progress:
            nested = map_in_threads(embed, chunks, workers, progress)
        return [vector for batch in nested for vector in batch]

    def _embed_batch(self, batch: list[str], model_dict: dict[str, Any]) -> list[Embedding]:
        """One batch as LlamaIndex's own loop sends it: start and end events, the callback
        manager's EMBEDDING event, its rate limiter and its embeddings cache."""
        dispatcher.event(EmbeddingStartEvent(model_dict=model_dict))
        with self.callback_manager.event(
            CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: model_dict}
        ) as event:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            if self.embeddings_cache:
                embeddings = self._get_text_embeddings_cached(batch)
            else:
                embeddings = self._get_text_embeddings(batch)
            event.on_end(payload={EventPayload.CHUNKS: batch, EventPayload.EMBEDDINGS: embeddings})
        dispatcher.event(EmbeddingEndEvent(chunks=batch, embeddings=embeddings))
        return embeddings

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        check_texts(texts)
        return await super().aget_text_embedding_batch(texts, show_progress=show_progress, **kwargs)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.embedder.embed_text(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await self.embedder.aembed_text(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self.embedder.embed_text(text)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await self.embedder.aembed_text(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        # LlamaIndex hands over at most embed_batch_size texts: one request.
        return self.embedder.embed_texts(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self.embedder.aembed_texts(texts)
