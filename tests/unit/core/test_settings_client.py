"""Settings resolution and pooled client construction."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
from pydantic import SecretStr

from runcrate_integrations import MissingAPIKeyError
from runcrate_integrations.config import (
    DEFAULT_BASE_URL,
    INFERENCE,
    ClientSettings,
)
from runcrate_integrations.net import transport
from runcrate_integrations.net.clients import AsyncPooled, async_client, sync_client, user_agent
from tests.helpers import Recorder, completion_body, post, private_client


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
    monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
    monkeypatch.delenv("RUNCRATE_API_BASE", raising=False)


def test_base_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert INFERENCE.resolve(None) == DEFAULT_BASE_URL
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://127.0.0.1:9/v1/")
    assert INFERENCE.resolve(None) == "http://127.0.0.1:9/v1"
    assert INFERENCE.resolve("http://other/v1") == "http://other/v1"


def test_base_url_from_the_0_1_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # RUNCRATE_API_BASE is what Runcrate's 0.1 wrappers read: their users' setups keep working.
    monkeypatch.setenv("RUNCRATE_API_BASE", "http://127.0.0.1:9/v1/")
    assert INFERENCE.from_env() == "http://127.0.0.1:9/v1/"
    assert INFERENCE.resolve(None) == "http://127.0.0.1:9/v1"
    assert INFERENCE.resolve("http://other/v1") == "http://other/v1"
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://127.0.0.1:9/v1")  # the same URL: fine
    assert INFERENCE.resolve(None) == "http://127.0.0.1:9/v1"


def test_both_base_url_variables_differing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RUNCRATE_API_BASE", "http://127.0.0.1:8/v1")
    with pytest.raises(ValueError, match=r"RUNCRATE_BASE_URL=.*RUNCRATE_API_BASE=.*differ"):
        INFERENCE.resolve(None)
    with pytest.raises(ValueError, match="unset one of them"):
        ClientSettings.resolve(api_key="rc_live_x")
    # An explicit base URL decides; the environment is not read.
    assert INFERENCE.resolve("http://other/v1") == "http://other/v1"


def test_missing_key_with_default_url_fails_with_how_to() -> None:
    with pytest.raises(MissingAPIKeyError, match="RUNCRATE_API_KEY") as info:
        ClientSettings.resolve(base_url=DEFAULT_BASE_URL)
    assert "rc_live_" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_custom_url_may_run_without_key() -> None:
    assert ClientSettings.resolve(base_url="http://127.0.0.1:8091/v1").api_key is None


def test_key_from_env_and_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_env")
    key = ClientSettings.resolve(base_url=DEFAULT_BASE_URL).api_key
    assert key is not None and key.get_secret_value() == "rc_live_env"
    key = ClientSettings.resolve(
        api_key=SecretStr("rc_live_arg"), base_url=DEFAULT_BASE_URL
    ).api_key
    assert key is not None and key.get_secret_value() == "rc_live_arg"


def test_settings_repr_hides_key() -> None:
    s = ClientSettings.resolve(api_key="rc_live_supersecret", base_url="http://x/v1")
    assert "rc_live_supersecret" not in repr(s)
    assert "rc_live_supersecret" not in str(s)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_settings_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClientSettings.resolve(api_key="k", base_url="http://x/v1", **kwargs)  # type: ignore[arg-type]  # bad on purpose


def test_equal_settings_share_one_client_and_pool() -> None:
    a = ClientSettings.resolve(api_key="k1", base_url="http://pool-test/v1", timeout=5)
    b = ClientSettings.resolve(api_key="k1", base_url="http://pool-test/v1", timeout=5)
    c = ClientSettings.resolve(api_key="k2", base_url="http://pool-test/v1", timeout=5)
    assert sync_client(a) is sync_client(b)
    assert sync_client(a).http is sync_client(b).http
    assert sync_client(a) is not sync_client(c)
    assert type(sync_client(a).api) is openai.OpenAI  # the SDK's own class: nothing overridden


def test_client_carries_settings_and_user_agent() -> None:
    s = ClientSettings.resolve(
        api_key="k",
        base_url="http://ua-test/v1",
        timeout=7.5,
        max_retries=4,
        default_headers={"X-Team": "ml"},
    )
    c = sync_client(s).api
    assert c.max_retries == 0  # the transport's one loop retries (settings.max_retries times)
    assert s.max_retries == 4
    assert c.timeout == 7.5
    assert str(c.base_url) == "http://ua-test/v1/"
    assert c.default_headers["User-Agent"] == user_agent()
    assert user_agent().startswith("runcrate-integrations/")
    assert c.default_headers["X-Team"] == "ml"


def test_requests_send_user_agent_and_bearer() -> None:
    rec = Recorder([completion_body()])
    s = ClientSettings.resolve(api_key="rc_live_abc", base_url="http://x/v1")
    transport.send_json(private_client(s, rec.client()), post({"model": "m"}))
    req = rec.requests[0]
    assert req.headers["authorization"] == "Bearer rc_live_abc"
    assert req.headers["user-agent"] == user_agent()
    assert req.url.path == "/v1/chat/completions"


def test_keyless_client_for_local_server() -> None:
    s = ClientSettings.resolve(base_url="http://127.0.0.1:1/v1")
    assert s.api_key is None
    assert isinstance(sync_client(s).api, openai.OpenAI)


def test_async_clients_are_shared_per_loop() -> None:
    s = ClientSettings.resolve(api_key="k", base_url="http://loop-test/v1")

    async def grab() -> tuple[AsyncPooled, AsyncPooled]:
        return async_client(s), async_client(s)

    a1, a2 = asyncio.run(grab())
    b1, _ = asyncio.run(grab())
    assert a1 is a2
    assert a1 is not b1  # a new loop gets its own pool


def test_custom_http_client_is_used() -> None:
    custom = httpx2.Client()
    s = ClientSettings.resolve(api_key="k", base_url="http://x/v1")
    assert private_client(s, custom).sync().http is custom
