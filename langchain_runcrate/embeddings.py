"""``RuncrateEmbeddings``: LangChain's ``Embeddings`` protocol over Runcrate's ``/embeddings``.

Request bodies, batching and answer parsing live in :mod:`runcrate_integrations.embeddings`;
this class holds the configuration and maps LangChain's four methods onto it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from langchain_core.utils import secret_from_env
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, SecretStr

from runcrate_integrations.adapters import Configured, TimeoutField
from runcrate_integrations.embeddings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    Embedder,
    progress_bar,
)
from runcrate_integrations.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    base_url_from_env,
)

from ._error_hook import langchain_error


class RuncrateEmbeddings(Configured, Serializable, Embeddings):
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

    model: str = Field(description="Embedding model id, e.g. 'BAAI/bge-m3'.")
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(API_KEY_ENV, default=None),
        description=f"Runcrate API key (starts with 'rc_live_'); defaults to ${API_KEY_ENV}.",
    )
    base_url: str | None = Field(
        default_factory=base_url_from_env,
        description=f"API base URL; defaults to ${BASE_URL_ENV}, then Runcrate's endpoint.",
    )
    chunk_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, description="Texts sent per request."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Ask for shorter vectors (models that support it)."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="Wire format of the vectors; both come back as lists of floats.",
    )
    timeout: TimeoutField = Field(
        default=DEFAULT_TIMEOUT,
        description="Seconds per request (or an httpx2.Timeout); None waits forever.",
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES, ge=0, description="Retries on 429, 5xx and timeouts."
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, ge=1,
        description="Batches in flight at once for a large input (order is always kept).",
    )
    show_progress_bar: bool = Field(
        default=False, description="Show a tqdm progress bar over the texts (needs tqdm)."
    )
    rate_limits: bool = Field(
        default=True,
        description="Pace requests by the server's X-RateLimit-* headers (shared per key and "
        "base URL in the process); False sends at once.",
    )
    default_headers: dict[str, str] | None = Field(
        default=None, description="Extra HTTP headers sent with every request."
    )
    http_client: Any = Field(
        default=None, exclude=True, description="An httpx2.Client to send sync requests with."
    )
    http_async_client: Any = Field(
        default=None, exclude=True, description="An httpx2.AsyncClient for async requests."
    )
    extra_body: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("extra_body", "model_kwargs"),
        description="Extra top-level JSON fields for the request body (alias: model_kwargs).",
    )

    _embedder: Embedder = PrivateAttr()
    _derived_from: ClassVar[frozenset[str]]  # set below the class

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Outside pydantic validation so MissingAPIKeyError keeps its type.
        self._reconfigure()

    def _reconfigure(self) -> None:
        self._embedder = Embedder.configure(
            self.model,
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            default_headers=self.default_headers,
            dimensions=self.dimensions,
            encoding_format=self.encoding_format,
            chunk_size=self.chunk_size,
            max_concurrency=self.max_concurrency,
            rate_limits=self.rate_limits,
            extra_body=self.extra_body,
            http_client=self.http_client,
            http_async_client=self.http_async_client,
            errors=langchain_error,
        )

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": API_KEY_ENV}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed ``texts`` in batches of ``chunk_size`` (up to ``max_concurrency`` at once);
        one vector per text, in order."""
        with progress_bar(self.show_progress_bar, len(texts)) as progress:
            return self._embedder.embed_texts(texts, progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self._embedder.embed_text(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (native, no thread pool)."""
        with progress_bar(self.show_progress_bar, len(texts)) as progress:
            return await self._embedder.aembed_texts(texts, progress)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (native, no thread pool)."""
        return await self._embedder.aembed_text(text)


# Every field feeds the Embedder (settings or options).
RuncrateEmbeddings._derived_from = frozenset(RuncrateEmbeddings.model_fields)
