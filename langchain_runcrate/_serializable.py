"""What every LangChain class of this package shares for ``dumpd``/``load``: the key is saved
as a reference to ``RUNCRATE_API_KEY`` (never its value), and an ``httpx2.Timeout`` as its
fields (plain numbers), which loading reads back."""

from __future__ import annotations

from typing import Any

from runcrate_integrations.config import API_KEY_ENV, dump_timeout


class LangChainSerializable:
    """Mixin of LangChain's serialisation hooks for a class built on the core's spec."""

    timeout: Any

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": API_KEY_ENV}

    @property
    def lc_attributes(self) -> dict[str, Any]:
        if self.timeout is None or isinstance(self.timeout, (int, float)):
            return {}
        return {"timeout": dump_timeout(self.timeout)}
