"""``from llama_index.embeddings.runcrate import RuncrateEmbedding``: LlamaIndex's usual import
path for an embeddings integration.

Lives in the ``llama_index`` / ``llama_index.embeddings`` namespace packages (no ``__init__.py``
above this one), like every ``llama-index-embeddings-*`` integration.
"""

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)  # before the import below, which a stale install could break

from llama_index_runcrate.embeddings import RuncrateEmbedding  # noqa: E402

__all__ = ["RuncrateEmbedding"]
