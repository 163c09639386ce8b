"""Alias: ``from llama_index.embeddings.runcrate import RuncrateEmbedding``, LlamaIndex's usual
import path for an embeddings integration.

Lives in the ``llama_index`` / ``llama_index.embeddings`` namespace packages (no ``__init__.py``
above this one), like every ``llama-index-embeddings-*`` integration.
"""

from llama_index_runcrate.embeddings import RuncrateEmbedding

__all__ = ["RuncrateEmbedding"]
