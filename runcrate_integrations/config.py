"""The one settings spec every public class that talks to Runcrate is configured with.

Endpoints (default URL, overriding variables), the connection fields of :class:`Connection`
(defaults, environment variables, the aliases ``ChatOpenAI`` / ``OpenAILike`` / Runcrate's 0.1
wrappers use, checks), the derived state and copy rules of :class:`Configured`, and the
resolved :class:`ClientSettings` that pick the pooled client. Model settings live beside their
engines (:mod:`.chat.settings`, :mod:`.embeddings`, :mod:`.media`).
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
)
from typing_extensions import Self

if TYPE_CHECKING:
    import httpx2

    Timeout = float | httpx2.Timeout | None
    TimeoutField = Timeout

API_KEY_ENV = "RUNCRATE_API_KEY"
BASE_URL_ENV = "RUNCRATE_BASE_URL"
#: The base-URL variable of Runcrate's 0.1 wrappers, read too so their users' setups keep working.
API_BASE_ENV = "RUNCRATE_API_BASE"
BILLING_URL_ENV = "RUNCRATE_BILLING_URL"
DEFAULT_BASE_URL = "https://api.runcrate.ai/v1"
DEFAULT_BILLING_URL = "https://runcrate.ai/api/v1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An API: its default URL and the variables that override it, first match wins."""

    default_url: str
    env: tuple[str, ...]

    def from_env(self) -> str | None:
        """The URL the environment sets, if any; two variables that disagree are an error."""
        found = [(name, os.environ[name]) for name in self.env if os.environ.get(name)]
        if len({url.rstrip("/") for _, url in found}) > 1:
            # Silently picking one would send requests (and the key) where the user did not mean.
            shown = " and ".join(f"{name}={url!r}" for name, url in found)
            raise ValueError(
                f"{shown} are both set and differ; they name the same setting (the second is "
                "the name Runcrate's 0.1 wrappers read): unset one of them, or pass "
                "base_url=... explicitly"
            )
        return found[0][1] if found else None

    def resolve(self, base_url: str | None) -> str:
        """The explicit URL, else the environment's, else the default; no trailing slash."""
        return (base_url or self.from_env() or self.default_url).rstrip("/")


INFERENCE = Endpoint(DEFAULT_BASE_URL, (BASE_URL_ENV, API_BASE_ENV))
BILLING = Endpoint(DEFAULT_BILLING_URL, (BILLING_URL_ENV,))


def check_timeout(timeout: Any) -> Timeout:
    """``timeout`` if valid: seconds > 0, an ``httpx2.Timeout`` (or its fields) or ``None``."""
    if timeout is None:
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        if timeout > 0:
            return float(timeout)
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    import httpx2  # only for a value that is neither None nor a number

    if isinstance(timeout, httpx2.Timeout):
        return timeout
    if isinstance(timeout, Mapping):  # an httpx2.Timeout as saved by to_json / dumpd
        try:
            return httpx2.Timeout(**timeout)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timeout: not an httpx2.Timeout's fields: {exc}") from None
    raise ValueError(
        f"timeout must be seconds > 0, an httpx2.Timeout or None, got {type(timeout).__name__}"
    )


def dump_timeout(timeout: Any) -> Any:
    """A timeout as plain data: a number, ``None``, or an ``httpx2.Timeout``'s fields."""
    as_dict = getattr(timeout, "as_dict", None)  # an httpx2.Timeout
    return as_dict() if callable(as_dict) else timeout


def check_deadline(deadline: object) -> float | None:
    """``deadline`` (seconds a whole call may take) if it is ``None`` or a number > 0."""
    if deadline is None:
        return None
    if not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or deadline <= 0:
        raise ValueError(f"deadline must be a number of seconds > 0, got {deadline!r}")
    return float(deadline)


if not TYPE_CHECKING:
    # Checked by the one rule above, without importing httpx2 to declare it; dumped as plain
    # numbers (to_dict, to_json, model_dump) and read back on load.
    TimeoutField = Annotated[
        Any,
        BeforeValidator(check_timeout),
        PlainSerializer(dump_timeout, when_used="unless-none"),
    ]


# The openai client insists on a key; a keyless local server gets this harmless placeholder.
NO_KEY = "no-key"


@dataclass(frozen=True)
class ClientSettings:
    """What decides a request's pooled client (the key a ``SecretStr``: the repr never shows it)."""

    base_url: str
    api_key: SecretStr | None
    timeout: Timeout = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    default_headers: tuple[tuple[str, str], ...] = ()
    #: Wait for the rate limit when the server's headers say the quota is used up.
    rate_limits: bool = True

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        rate_limits: bool = True,
        endpoint: Endpoint = INFERENCE,
    ) -> ClientSettings:
        """Settings from explicit arguments, falling back to the environment."""
        url = endpoint.resolve(base_url)
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        key = key or os.environ.get(API_KEY_ENV) or None
        if key is None and url == endpoint.default_url:
            # Runcrate's own URLs need a key: fail here, not as a 401 on the first call (another
            # base URL, a local server or a proxy, may run without one).
            from .errors import MissingAPIKeyError  # errors imports openai: load it only to raise

            raise MissingAPIKeyError(
                f"No Runcrate API key: pass api_key=... or set the {API_KEY_ENV} environment "
                "variable (keys start with 'rc_live_'; create one in the Runcrate dashboard)."
            )
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return cls(
            base_url=url,
            api_key=SecretStr(key) if key is not None else None,
            timeout=check_timeout(timeout),
            max_retries=max_retries,
            default_headers=tuple(sorted((default_headers or {}).items())),
            rate_limits=bool(rate_limits),
        )

    @cached_property
    def pool_key(self) -> tuple[Any, ...]:
        """Equal settings, equal key: the key of the shared client in the pool."""
        timeout: Any = self.timeout
        if timeout is not None and not isinstance(timeout, (int, float)):
            timeout = tuple(sorted(dump_timeout(timeout).items()))
        return (
            self.base_url,
            self.secret,
            timeout,
            self.max_retries,
            self.default_headers,
            self.rate_limits,
        )

    @property
    def secret(self) -> str | None:
        """The key itself, for the Authorization header and for redaction."""
        return self.api_key.get_secret_value() if self.api_key else None


_OWN_PACKAGES = ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate")
# Fields holding the caller's own objects (sockets, locks): shared by copies, never pickled.
_CALLER_OBJECTS = ("http_client", "http_async_client")


class Configured(BaseModel):
    """A pydantic model whose derived state (an engine) is built from its fields: at
    construction (a missing key fails there), on assigning one of this package's fields (a
    rejected value is put back first) and by ``model_copy``. A deep copy shares the caller's
    http clients and the state; a pickle leaves those clients out, with a warning."""

    # An assigned value is checked like a given one (LangChain's models do not by default).
    model_config = ConfigDict(validate_assignment=True)

    #: The fields whose change rebuilds the state: this package's, not the frameworks' (callbacks).
    _derived_from: ClassVar[frozenset[str]] = frozenset()
    _derived_state: Any = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        own: set[str] = set()
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] in _OWN_PACKAGES:
                own.update(inspect.get_annotations(klass))
        cls._derived_from = frozenset(own & set(cls.model_fields))

    def _derive(self) -> Any:
        """Build the derived state from the current fields (raises if they are rejected)."""
        raise NotImplementedError

    def _rebuild(self) -> None:
        self._derived_state = self._derive()

    @property
    def _state(self) -> Any:
        """The derived state (rebuilt on first use after unpickling)."""
        if self._derived_state is None:
            self._rebuild()
        return self._derived_state

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._derived_from:
            super().__setattr__(name, value)
            return
        old = getattr(self, name)
        super().__setattr__(name, value)
        try:
            self._rebuild()
        except Exception:
            super().__setattr__(name, old)
            self._rebuild()
            raise

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied._rebuild()  # pydantic sets the updated fields directly, past __setattr__
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        # The caller's clients, and the state (pooled clients, no socket of its own).
        shared = (*(self.__dict__.get(name) for name in _CALLER_OBJECTS), self._derived_state)
        memo.update({id(value): value for value in shared if value is not None})
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        dropped = [name for name in _CALLER_OBJECTS if self.__dict__.get(name) is not None]
        if dropped:
            warnings.warn(
                f"{type(self).__name__} is pickled without its {' and '.join(dropped)} (a "
                "caller's client holds sockets and locks); the copy uses a pooled client.",
                stacklevel=2,
            )
        bare = copy.copy(self)  # the same field values, without what cannot be pickled
        bare.__dict__.update(dict.fromkeys(dropped))
        bare._derived_state = None
        return super(Configured, bare).__getstate__()


def _key_from_env() -> SecretStr | None:
    value = os.environ.get(API_KEY_ENV)
    return SecretStr(value) if value else None


class Connection(Configured):
    """The connection settings every public class shares (Runcrate's inference API); the
    names ``ChatOpenAI``, ``OpenAILike`` and Runcrate's 0.1 wrappers use are aliases."""

    endpoint: ClassVar[Endpoint] = INFERENCE

    api_key: SecretStr | None = Field(
        default_factory=_key_from_env,
        exclude=True,  # never dumped; LangChain writes a secret reference (lc_secrets)
        validation_alias=AliasChoices("api_key", "openai_api_key"),
        description=f"Runcrate API key (rc_live_...); defaults to ${API_KEY_ENV}.",
    )
    base_url: str | None = Field(
        default_factory=INFERENCE.from_env,
        validation_alias=AliasChoices("base_url", "api_base", "openai_api_base"),
        description=f"API base URL; defaults to ${BASE_URL_ENV} (or ${API_BASE_ENV}), then "
        f"{DEFAULT_BASE_URL}.",
    )
    timeout: TimeoutField = Field(
        default=DEFAULT_TIMEOUT,
        validation_alias=AliasChoices("timeout", "request_timeout"),
        description="Seconds per request (or an httpx2.Timeout); None waits forever.",
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES,
        ge=0,
        description="Retries on connection errors, timeouts, 408/409/429 and 5xx (never 402).",
    )
    default_headers: dict[str, str] | None = Field(
        default=None, description="Extra HTTP headers on every request."
    )
    rate_limits: bool = Field(
        default=True,
        description="Wait for the rate limit when the server's X-RateLimit-* headers say the "
        "quota is used up (shared per key and base URL in the process); False sends at once.",
    )
    deadline: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a whole call may take, retries, waits and streaming included "
        "(off by default); past it the call raises a timeout error and closes its connection.",
    )
    http_client: Any = Field(
        default=None,
        exclude=True,
        description="An httpx2.Client for sync requests (proxies, mTLS, tests); the caller's.",
    )
    http_async_client: Any = Field(
        default=None,
        exclude=True,
        validation_alias=AliasChoices("http_async_client", "async_http_client"),
        description="An httpx2.AsyncClient for async requests; the caller's.",
    )

    def client_settings(self) -> ClientSettings:
        """The resolved connection settings (environment read, key checked)."""
        settings = {field.name: getattr(self, field.name) for field in fields(ClientSettings)}
        return ClientSettings.resolve(endpoint=self.endpoint, **settings)


class BillingConnection(Connection):
    """:class:`Connection` for Runcrate's billing API (its own URL and variable)."""

    endpoint: ClassVar[Endpoint] = BILLING

    base_url: str | None = Field(
        default_factory=BILLING.from_env,
        validation_alias=AliasChoices("base_url", "api_base"),
        description=f"Billing API URL; defaults to ${BILLING_URL_ENV}, then {DEFAULT_BILLING_URL}.",
    )


#: Every connection setting, in declaration order.
CONNECTION_FIELDS = tuple(Connection.model_fields)
