"""The one request loop (``runcrate_integrations.net.transport``) on openai's public surface.

What it decides, against the loopback fault server: which answers are retried and how long each
retry waits (per status and per header form), that a started stream is never sent again, that a
call's own retries and timeout win over the instance's, and that the package touches no private
attribute of ``openai`` or ``httpx2`` (a minor release of either must not break it).
"""

from __future__ import annotations

import ast
import email.utils
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import runcrate_integrations as core
from runcrate_integrations.config import ClientSettings
from runcrate_integrations.net import transport
from runcrate_integrations.net.clients import Clients
from tests.reliability.cases import KEY, ChatCase
from tests.support.fake_openai_server import (
    FakeOpenAIServer,
    JSONResponse,
    SSEResponse,
    chat_completion,
    chat_stream,
    error,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate", "llama_index")


# ---------------------------------------------------------------------- public surface only


def _private_names(*modules: Any) -> set[str]:
    """Every private (single-underscore) name defined by the classes of ``modules``."""
    names: set[str] = set()
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for klass in cls.__mro__:
                if klass.__module__.split(".")[0] in ("openai", "httpx2"):
                    names.update(
                        n for n in vars(klass) if n.startswith("_") and not n.startswith("__")
                    )
    return names


def _sources() -> Iterator[tuple[Path, ast.AST]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _uses(tree: ast.AST, private: set[str]) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in ("openai", "httpx2") and any(p.startswith("_") for p in parts[1:]):
                found.append(f"from {node.module} import ...")
            for alias in node.names:
                if parts[0] in ("openai", "httpx2") and alias.name.startswith("_"):
                    found.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in ("openai", "httpx2") and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in private:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.FunctionDef) and node.name in private:
            found.append(f"def {node.name} (an override)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append(f"{node.func.id}(..., {node.args[1].value!r})")
    return found


def test_no_private_attribute_of_openai_or_httpx2_is_used() -> None:
    private = _private_names(openai, httpx2) - {"_abc_impl"}
    assert {"_make_status_error", "_should_retry", "_client", "_prepare_options"} <= private
    used = {
        str(path.relative_to(ROOT)): names
        for path, tree in _sources()
        if (names := _uses(tree, private))
    }
    assert not used, used


def test_the_scan_finds_what_it_looks_for() -> None:
    private = _private_names(openai, httpx2)
    code = (
        "import openai._base_client\n"
        "from openai._types import NOT_GIVEN\n"
        "class C(openai.OpenAI):\n"
        "    def _should_retry(self, r): return False\n"
        "x = client._client\n"
        "getattr(client, '_parse_retry_after_header')\n"
    )
    assert len(_uses(ast.parse(code), private)) == 5


# ---------------------------------------------------------------------- the retry rule


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The loop's waits, recorded instead of slept (the rule under test, not the clock)."""
    waits: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(0)

    monkeypatch.setattr(transport.time, "sleep", sleep)
    return waits


def _clients(server: FakeOpenAIServer, retries: int = 3) -> Clients:
    settings = ClientSettings.resolve(
        api_key=KEY, base_url=server.base_url, max_retries=retries, timeout=5.0, rate_limits=False
    )
    return Clients(settings)


def _post(**how: Any) -> transport.Request:
    return transport.Request(
        "POST", "/chat/completions", body={"model": "m", "messages": []}, **how
    )


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_which_statuses_are_retried(
    fake_server: FakeOpenAIServer, no_backoff: list[float], status: int, retried: bool
) -> None:
    fake_server.default = error(status, "some_code", "nope")
    with pytest.raises(core.RuncrateAPIError) as caught:
        transport.send_json(_clients(fake_server, retries=3), _post())
    assert fake_server.request_count == (4 if retried else 1)
    assert caught.value.is_retryable is retried
    assert len(no_backoff) == (3 if retried else 0)


@pytest.mark.parametrize(
    ("status", "verdict", "sent"),
    [
        (400, "true", 3),
        (503, "false", 1),
        (402, "true", 1),  # a 402 never, whatever it says
    ],
)
def test_x_should_retry_is_obeyed_but_never_for_a_402(
    fake_server: FakeOpenAIServer, no_backoff: list[float], status: int, verdict: str, sent: int
) -> None:
    fake_server.default = error(status, "c", "m", {"x-should-retry": verdict})
    with pytest.raises(core.RuncrateAPIError):
        transport.send_json(_clients(fake_server, retries=2), _post())
    assert fake_server.request_count == sent


def test_a_connection_error_is_retried(
    fake_server: FakeOpenAIServer, no_backoff: list[float]
) -> None:
    from tests.support.fake_openai_server import Disconnect

    fake_server.enqueue(Disconnect(), chat_completion("ok"))
    answer = transport.send_json(_clients(fake_server), _post())
    assert answer["choices"][0]["message"]["content"] == "ok"
    assert fake_server.request_count == 2 and len(no_backoff) == 1


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "waits_at_least"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after": "HTTPDATE"}, 3.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "UNIX"}, 3.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}, 3.0),  # seconds from now
        ({"retry-after-ms": "5"}, transport.BACKOFF_START * 0.75),  # never less than the backoff
        ({}, transport.BACKOFF_START * 0.75),
    ],
    ids=[
        "retry-after",
        "retry-after-ms",
        "http-date",
        "reset-unix",
        "reset-seconds",
        "a-5-ms-hint",
        "no-hint",
    ],
)
def test_a_retry_waits_the_larger_of_the_server_hint_and_the_backoff(
    fake_server: FakeOpenAIServer,
    no_backoff: list[float],
    headers: dict[str, str],
    waits_at_least: float,
) -> None:
    values = {
        k: (_http_date(4) if v == "HTTPDATE" else f"{time.time() + 4:.3f}" if v == "UNIX" else v)
        for k, v in headers.items()
    }
    fake_server.enqueue(error(429, "rate_limited", "slow down", values), chat_completion("ok"))
    transport.send_json(_clients(fake_server), _post())
    assert len(no_backoff) == 1
    # (a hint read as seconds from now has run down a little by the time the wait is set)
    assert waits_at_least - 0.05 <= no_backoff[0] <= max(waits_at_least, 0.5) + 1.01


def test_backoff_doubles_and_has_a_ceiling() -> None:
    first = [transport.backoff(0) for _ in range(50)]
    third = [transport.backoff(2) for _ in range(50)]
    late = [transport.backoff(10) for _ in range(50)]
    assert all(0.375 <= w <= 0.5 for w in first) and len(set(first)) > 1  # jittered
    assert all(1.5 <= w <= 2.0 for w in third)
    assert all(w <= transport.BACKOFF_MAX for w in late)


# ---------------------------------------------------------------------- streams and billed jobs


async def test_a_started_stream_is_never_sent_again(fake_server: FakeOpenAIServer) -> None:
    for framework in ("langchain", "llama_index"):
        fake_server.reset()
        case = ChatCase(framework, "astream", fake_server)
        stream = chat_stream(["one ", "two ", "three"])
        fake_server.enqueue(SSEResponse(stream.events, done=False, drop_after=2))
        with pytest.raises(case.error(core.StreamInterruptedError)):
            await case.ask(case.model(max_retries=3))
        assert fake_server.request_count == 1, framework


def test_a_billed_request_is_not_resent_after_its_body_went_out(
    fake_server: FakeOpenAIServer, no_backoff: list[float]
) -> None:
    from tests.support.fake_openai_server import Disconnect

    fake_server.enqueue(Disconnect(), chat_completion("twice?"))
    with pytest.raises(core.APIConnectionError):
        transport.send_json(_clients(fake_server), _post(billed=True))
    assert fake_server.request_count == 1
    # ... while a 429 or 503 (the job was not started) is retried as usual.
    for status in (429, 503, 500):
        fake_server.reset()
        fake_server.enqueue(error(status, "c", "m"), chat_completion("ok"))
        if status == 500:
            with pytest.raises(core.InternalServerError):
                transport.send_json(_clients(fake_server), _post(billed=True))
            assert fake_server.request_count == 1
        else:
            transport.send_json(_clients(fake_server), _post(billed=True))
            assert fake_server.request_count == 2


def test_a_billed_request_that_never_connected_is_retried(no_backoff: list[float]) -> None:
    # Nothing listens on port 9: the body cannot have gone out, so trying again is safe.
    settings = ClientSettings.resolve(
        api_key=KEY, base_url="http://127.0.0.1:9/v1", max_retries=2, timeout=2.0, rate_limits=False
    )
    with pytest.raises(core.APIConnectionError, match=r"127\.0\.0\.1:9/v1/chat/completions"):
        transport.send_json(Clients(settings), _post(billed=True))
    assert len(no_backoff) == 2


# ---------------------------------------------------------------------- per call


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_a_calls_own_retries_win_over_the_instances(
    fake_server: FakeOpenAIServer, framework: str
) -> None:
    case = ChatCase(framework, "ainvoke", fake_server)  # type: ignore[arg-type]
    fake_server.default = error(503, "overloaded", "busy")
    with pytest.raises(case.error(core.InternalServerError)):
        await case.ask(case.model(max_retries=5), max_retries=0)
    assert fake_server.request_count == 1


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
async def test_a_calls_own_timeout_wins_over_the_instances(
    fake_server: FakeOpenAIServer, framework: str
) -> None:
    case = ChatCase(framework, "ainvoke", fake_server)  # type: ignore[arg-type]
    fake_server.enqueue(JSONResponse(chat_completion("late").body, delay=2.0))
    with pytest.raises(case.error(core.APITimeoutError)):
        await case.ask(case.model(timeout=30.0, max_retries=0), timeout=0.3)
    assert fake_server.request_count == 1


def test_a_bad_per_call_retry_count_fails_before_sending(fake_server: FakeOpenAIServer) -> None:
    case = ChatCase("langchain", "invoke", fake_server)
    with pytest.raises(ValueError, match="max_retries must be an integer >= 0"):
        case.model().invoke("hi", max_retries=-1)
    assert fake_server.request_count == 0
