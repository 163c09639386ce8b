"""Alias: ``from llama_index.llms.runcrate import RuncrateLLM``, LlamaIndex's usual import path.

Lives in the ``llama_index`` / ``llama_index.llms`` namespace packages (no ``__init__.py`` above
this one), like every ``llama-index-llms-*`` integration.
"""

from llama_index_runcrate.llms import RuncrateLLM

__all__ = ["RuncrateLLM"]
