"""``from llama_index.llms.runcrate import Runcrate``: LlamaIndex's usual import path and name.

``Runcrate`` is ``llama_index_runcrate.RuncrateLLM`` (one class, two names): LlamaIndex names a
provider's LLM after the provider, as the 0.1 ``llama-index-llms-runcrate`` did, while this
project's own package keeps ``RuncrateLLM`` beside ``RuncrateEmbedding``.

Lives in the ``llama_index`` / ``llama_index.llms`` namespace packages (no ``__init__.py`` above
this one), like every ``llama-index-llms-*`` integration.
"""

try:  # a wheel: the package's own stamped copy of the check, which works with any core
    from ._distribution import check_installation  # type: ignore[import-not-found]  # wheels only
except ModuleNotFoundError:  # a source checkout: the core beside it has the check
    from runcrate_integrations._installation import check_installation

check_installation(__name__)  # before the import below, which a stale install could break

from llama_index_runcrate.llms import Runcrate, RuncrateLLM  # noqa: E402

__all__ = ["Runcrate", "RuncrateLLM"]
