"""``from llama_index.readers.runcrate import RuncrateTranscriptionReader``: LlamaIndex's usual
import path for a reader.

Lives in the ``llama_index`` / ``llama_index.readers`` namespace packages (no ``__init__.py``
above this one), like every ``llama-index-readers-*`` integration; the implementation is
``llama_index_runcrate.readers``.
"""

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)  # before the import below, which a stale install could break

from llama_index_runcrate.readers import RuncrateTranscriptionReader  # noqa: E402

__all__ = ["RuncrateTranscriptionReader"]
