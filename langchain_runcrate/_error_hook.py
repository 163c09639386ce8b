"""The hook through which every error leaving the LangChain classes is translated.

:mod:`.errors` imports ``openai``, which is slow to import, so it is loaded only when an error
is actually raised; the core's engines call this hook from their one ``except``.
"""

from __future__ import annotations

import sys


def langchain_error(err: Exception) -> Exception:
    """The dual-hierarchy counterpart of ``err`` (``err`` itself when there is none)."""
    if "openai" not in sys.modules:  # no client was ever built: cannot be an API error
        return err
    import openai

    if not isinstance(err, openai.APIError):
        return err
    from .errors import to_langchain_error

    return to_langchain_error(err)
