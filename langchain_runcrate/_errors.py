"""The one place where errors leaving the LangChain classes are translated.

Every API error becomes an instance of both hierarchies (see :mod:`._error_types`). That module
imports ``openai``, which is slow to import, so it is loaded only when an error is raised.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


def _langchain_error(err: Exception) -> Exception | None:
    """The dual-hierarchy counterpart of ``err``, or ``None`` to re-raise it unchanged."""
    if "openai" not in sys.modules:  # no client was ever built: cannot be an API error
        return None
    import openai

    if not isinstance(err, openai.APIError):
        return None
    from ._error_types import to_langchain_error

    new = to_langchain_error(err)
    return None if new is err else new


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise API errors raised inside the block as their dual-hierarchy counterparts."""
    try:
        yield
    except Exception as err:
        new = _langchain_error(err)
        if new is None:
            raise
        raise new from err
