"""RuncrateBilling takes the same connection settings as every other class, checked by the
same rules: it derives from the spec (config.BillingConnection), with only its own default
URL and environment variable."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM
from runcrate_integrations import MissingAPIKeyError, RuncrateBilling
from runcrate_integrations.config import (
    BILLING_URL_ENV,
    CONNECTION_FIELDS,
    DEFAULT_BILLING_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ClientSettings,
)

from .conftest import KEY

OTHERS = [ChatRuncrate, RuncrateLLM, RuncrateEmbeddings, RuncrateEmbedding]
SPLIT = httpx2.Timeout(30.0, connect=2.0)


def settings(instance: Any) -> ClientSettings:
    if isinstance(instance, RuncrateBilling):
        return instance.clients.settings
    holder = instance.engine if hasattr(instance, "engine") else instance.embedder
    found: ClientSettings = holder.clients.settings
    return found


def build(cls: type[Any], **fields: Any) -> Any:
    if cls is not RuncrateBilling:
        fields.setdefault("model", "m")
    return cls(**fields)


@pytest.fixture(autouse=True)
def _no_billing_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BILLING_URL_ENV, raising=False)


def test_billing_declares_no_connection_field_of_its_own() -> None:
    assert tuple(RuncrateBilling.model_fields) == CONNECTION_FIELDS


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout": 5},
        {"timeout": None},
        {"timeout": SPLIT},
        {"max_retries": 0},
        {"max_retries": 7},
        {"default_headers": {"X-Team": "search"}},
        {"rate_limits": False},
        {"deadline": 12.5},
        {"request_timeout": 9.0},
    ],
    ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()),
)
def test_the_same_settings_resolve_the_same(fields: dict[str, Any]) -> None:
    billing = settings(build(RuncrateBilling, api_key=KEY, **fields))
    for cls in OTHERS:
        other = settings(build(cls, api_key=KEY, **fields))
        assert (
            billing.timeout,
            billing.max_retries,
            billing.default_headers,
            billing.rate_limits,
        ) == (other.timeout, other.max_retries, other.default_headers, other.rate_limits), cls
    assert build(RuncrateBilling, api_key=KEY, **fields).deadline == fields.get("deadline")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timeout": 0}, "timeout must be > 0 seconds, got 0"),
        ({"timeout": "30"}, "timeout must be seconds > 0, an httpx2.Timeout or None, got str"),
        ({"max_retries": -1}, "greater than or equal to 0"),
        ({"deadline": 0}, "greater than 0"),
    ],
    ids=["timeout-zero", "timeout-str", "retries", "deadline"],
)
def test_the_same_settings_are_refused_the_same(fields: dict[str, Any], message: str) -> None:
    for cls in [RuncrateBilling, *OTHERS]:
        with pytest.raises(ValueError, match=re.escape(message)):
            build(cls, api_key=KEY, **fields)


def test_defaults_and_the_missing_key_rule_are_the_same(no_runcrate_env: None) -> None:
    billing = settings(build(RuncrateBilling, api_key=KEY))
    assert (billing.base_url, billing.timeout, billing.max_retries) == (
        DEFAULT_BILLING_URL,
        DEFAULT_TIMEOUT,
        DEFAULT_MAX_RETRIES,
    )
    for cls in [RuncrateBilling, *OTHERS]:
        with pytest.raises(MissingAPIKeyError, match="No Runcrate API key"):
            build(cls)


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature"):
        RuncrateBilling(api_key=KEY, temperature=0.5)


def test_the_key_comes_from_the_same_variable(
    no_runcrate_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)
    assert settings(RuncrateBilling()).secret == KEY == settings(build(ChatRuncrate)).secret
