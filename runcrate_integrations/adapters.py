"""What the adapter classes of both frameworks share, written once.

:class:`Configured`: a pydantic model whose derived state (an engine) is built from some of
its fields and follows them. :class:`ChatAdapter`: the chat engine's conveniences (clients,
model info) on ``ChatRuncrate`` and ``RuncrateLLM`` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

from pydantic import BeforeValidator, PlainSerializer
from typing_extensions import Self

from .clients import check_timeout


def _dump_timeout(timeout: Any) -> Any:
    as_dict = getattr(timeout, "as_dict", None)  # an httpx2.Timeout
    return as_dict() if callable(as_dict) else timeout


if TYPE_CHECKING:
    import httpx2

    from ._openai import AsyncRuncrateOpenAI, RuncrateOpenAI
    from .catalog import ModelInfo
    from .chat import ChatEngine

    TimeoutField = float | httpx2.Timeout | None
else:
    # The `timeout` field of every adapter class: seconds > 0, an httpx2.Timeout or None,
    # checked by the core's one rule (and httpx2 not imported to declare it). Dumped (to_dict,
    # to_json) as a number or an httpx2.Timeout's fields, which check_timeout reads back.
    TimeoutField = Annotated[
        Any,
        BeforeValidator(check_timeout),
        PlainSerializer(_dump_timeout, when_used="unless-none"),
    ]


def assign_checked(
    obj: object,
    name: str,
    value: Any,
    setter: Callable[[str, Any], None],
    rebuild: Callable[[], None],
) -> None:
    """Set a field, then rebuild what is derived from it (settings, default parameters).

    Model classes resolve their configuration once, so a changed field must rebuild it; if
    the new value is rejected the old one is put back, and the error raised.
    """
    old = getattr(obj, name)
    setter(name, value)
    try:
        rebuild()
    except Exception:
        setter(name, old)
        rebuild()
        raise


class Configured:
    """Mixin for a pydantic model with derived state built from ``_derived_from`` fields.

    The state is built once (``_reconfigure``). Assigning one of those fields rebuilds it,
    which re-checks the value; a rejected value is put back before the error is raised. A
    ``model_copy`` rebuilds it too (pydantic sets copied fields directly, past ``__setattr__``).
    """

    _derived_from: ClassVar[frozenset[str]] = frozenset()

    def _reconfigure(self) -> None:
        """Build the derived state from the current fields (raises if they are rejected)."""
        raise NotImplementedError

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._derived_from:
            super().__setattr__(name, value)
            return
        assign_checked(self, name, value, super().__setattr__, self._reconfigure)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = cast(Any, super()).model_copy(update=update, deep=deep)
        copy._reconfigure()
        return cast(Self, copy)


class ChatAdapter(Configured):
    """The chat engine's conveniences, the same on both frameworks' chat models."""

    if TYPE_CHECKING:
        _engine: ChatEngine | None

        def _configure(self) -> ChatEngine: ...

    def _reconfigure(self) -> None:
        self._engine = self._configure()

    @property
    def engine(self) -> ChatEngine:
        """The core engine every request of this instance goes through."""
        engine = self._engine
        if engine is None:
            engine = self._engine = self._configure()
        return engine

    @property
    def client(self) -> RuncrateOpenAI:
        """The ``openai`` client requests go through (shared by instances with equal settings)."""
        return self.engine.client

    @property
    def async_client(self) -> AsyncRuncrateOpenAI:
        """The async ``openai`` client for the running event loop."""
        return self.engine.async_client

    @property
    def model_info(self) -> ModelInfo | None:
        """This model's catalog entry, fetched on first use; ``None`` if not listed."""
        return self.engine.model_info()

    def fetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Load the catalog now (``GET /models``); this model's entry, or ``None`` if the
        catalog does not list it."""
        return self.engine.fetch_model_info(refresh=refresh)

    async def afetch_model_info(self, *, refresh: bool = False) -> ModelInfo | None:
        """Async twin of :meth:`fetch_model_info`."""
        return await self.engine.afetch_model_info(refresh=refresh)
