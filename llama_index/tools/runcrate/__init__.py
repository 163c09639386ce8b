"""``from llama_index.tools.runcrate import RuncrateToolSpec``: LlamaIndex's usual import path
for a tool spec.

Lives in the ``llama_index`` / ``llama_index.tools`` namespace packages (no ``__init__.py``
above this one), like every ``llama-index-tools-*`` integration; the implementation is
``llama_index_runcrate.tools``.
"""

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)  # before the import below, which a stale install could break

from llama_index_runcrate.tools import RuncrateToolSpec  # noqa: E402

__all__ = ["RuncrateToolSpec"]
