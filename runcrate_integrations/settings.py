"""Where the API key, base URL and client defaults come from: arguments first, then the env."""

from __future__ import annotations

import os

from pydantic import SecretStr

DEFAULT_BASE_URL = "https://api.runcrate.ai/v1"
API_KEY_ENV = "RUNCRATE_API_KEY"
BASE_URL_ENV = "RUNCRATE_BASE_URL"
#: The same setting under the name Runcrate's 0.1 wrappers (``langchain-runcrate``,
#: ``llama-index-llms-runcrate``) and their docs use; read too, so their users' setups keep working.
API_BASE_ENV = "RUNCRATE_API_BASE"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
# Longest we wait for an X-RateLimit-Reset before retrying a 429 (seconds).
RATE_LIMIT_RESET_CAP = 60.0
# Pacing by the X-RateLimit-* headers (runcrate_integrations.ratelimit):
# requests sent to a base URL and key before any answer has shown whether it sends them,
RATE_LIMIT_COLD_START = 4
# and the longest the others wait for that first answer (seconds);
RATE_LIMIT_COLD_WAIT = 0.5
# how long after a reset the next request goes, so the server's clock has passed it too (s);
RATE_LIMIT_GUARD = 0.005
# waits for a reset at least this long are logged at INFO, once per reset (seconds);
RATE_LIMIT_LOG_WAIT = 1.0
# the most a process slows down below the server's rate after repeated 429s (a factor).
RATE_LIMIT_MAX_SLOWDOWN = 16.0


def base_url_from_env() -> str | None:
    """``RUNCRATE_BASE_URL``, else ``RUNCRATE_API_BASE``, else ``None``.

    Both name one setting, so both set to different URLs is an error: silently picking one
    would send requests (and the key) to a server the user did not mean.
    """
    new = os.environ.get(BASE_URL_ENV) or None
    old = os.environ.get(API_BASE_ENV) or None
    if new and old and new.rstrip("/") != old.rstrip("/"):
        raise ValueError(
            f"{BASE_URL_ENV}={new!r} and {API_BASE_ENV}={old!r} are both set and differ; they "
            f"name the same setting ({API_BASE_ENV} is the 0.1 wrappers' name): unset one of "
            "them, or pass base_url=... explicitly"
        )
    return new or old


def resolve_base_url(base_url: str | None = None) -> str:
    """The explicit base URL, else the environment's (:func:`base_url_from_env`), else
    Runcrate's public endpoint."""
    url = base_url or base_url_from_env() or DEFAULT_BASE_URL
    return url.rstrip("/")


def resolve_api_key(api_key: str | SecretStr | None, base_url: str) -> SecretStr | None:
    """The explicit key, else ``RUNCRATE_API_KEY``.

    Runcrate itself always needs a key, so a missing key with the default base URL fails here,
    at construction, instead of as a 401 on the first call. A custom base URL (a local
    OpenAI-compatible server, a proxy) may run without one.
    """
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    raw = raw or os.environ.get(API_KEY_ENV) or None
    if raw is None and base_url.rstrip("/") == DEFAULT_BASE_URL:
        from .errors import MissingAPIKeyError  # errors imports openai: load it only to raise

        raise MissingAPIKeyError(
            f"No Runcrate API key: pass api_key=... or set the {API_KEY_ENV} environment "
            "variable (keys start with 'rc_live_'; create one in the Runcrate dashboard)."
        )
    return SecretStr(raw) if raw is not None else None
