"""RuncrateBilling over a mock transport: what it sends, how it reads the answers (paging
included), and what it refuses before sending. The answers' shapes as a real ledger sends
them are replayed from cassettes in tests/recorded/billing/."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import time
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest

import runcrate_integrations as core
from runcrate_integrations import Balance, BillingUsage, RuncrateBilling, Transaction
from runcrate_integrations.config import BILLING_URL_ENV, DEFAULT_BILLING_URL
from tests.helpers import Recorder, error

KEY = "rc_live_BILLING_TEST_KEY_7"
BALANCE = {"data": {"creditsBalance": 97.25, "activeUsageCost": 0.5}}
USAGE = {
    "data": {
        "total_requests": 12,
        "total_prompt_tokens": 3400,
        "total_completion_tokens": 800,
        "total_tokens": 4200,
        "total_cost": 0.0123,
    }
}


def tx(n: int, amount: float = -0.003) -> dict[str, Any]:
    return {
        "id": f"tx_{n}",
        "type": "usage",
        "amount": amount,
        "description": "images",
        "createdAt": 1_767_225_600 + n,
    }


def page(entries: list[dict[str, Any]], cursor: str | None, more: bool) -> dict[str, Any]:
    return {"data": entries, "meta": {"cursor": cursor, "hasMore": more}}


def billing(rec: Recorder, **fields: Any) -> RuncrateBilling:
    fields.setdefault("api_key", KEY)
    return RuncrateBilling(http_client=rec.client(), http_async_client=rec.async_client(), **fields)


def query(request: httpx2.Request) -> dict[str, list[str]]:
    return parse_qs(
        request.url.query.decode()
        if isinstance(request.url.query, bytes)
        else str(request.url.query)
    )


@pytest.fixture(autouse=True)
def _isolated(no_runcrate_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BILLING_URL_ENV, raising=False)


async def test_balance_sync_and_async() -> None:
    rec = Recorder([BALANCE, BALANCE])
    client = billing(rec)
    assert client.balance() == Balance(credits_balance=97.25, active_usage_cost=0.5)
    assert await client.abalance() == Balance(97.25, 0.5)
    for request in rec.requests:
        assert (request.method, str(request.url)) == (
            "GET",
            f"{DEFAULT_BILLING_URL}/billing/balance",
        )
        assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_usage_sends_the_dates_as_from_and_to() -> None:
    rec = Recorder([USAGE, USAGE, USAGE])
    client = billing(rec)
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    got = client.usage(start=start, end=end)
    assert got == BillingUsage(12, 3400, 800, 4200, 0.0123, start, end)
    assert await client.ausage(start=dt.datetime(2026, 11, 1, 23, 59)) == BillingUsage(
        12, 3400, 800, 4200, 0.0123, dt.datetime(2026, 11, 1, 23, 59), None
    )
    client.usage()
    assert [query(r) for r in rec.requests] == [
        {"from": ["2026-11-01"], "to": ["2026-11-30"]},
        {"from": ["2026-11-01"]},
        {},
    ]
    assert {r.url.path for r in rec.requests} == {"/api/v1/billing/usage"}


@pytest.mark.parametrize(
    ("start", "end", "error_type", "message"),
    [
        (
            dt.date(2026, 12, 2),
            dt.date(2026, 12, 1),
            ValueError,
            "start (2026-12-02) is after end (2026-12-01)",
        ),
        ("2026-12-01", None, TypeError, "start must be a datetime.date, got str"),
        (None, 20261201, TypeError, "end must be a datetime.date, got int"),
    ],
)
def test_wrong_dates_fail_before_sending(
    start: Any, end: Any, error_type: type[Exception], message: str
) -> None:
    rec = Recorder()
    with pytest.raises(error_type) as wrong:
        billing(rec).usage(start=start, end=end)
    assert str(wrong.value) == message and rec.requests == []


async def test_transactions_page_through_the_cursor() -> None:
    pages = [
        page([tx(5), tx(4)], "c1", True),
        page([tx(3), tx(2)], "c2", True),
        page([tx(1, amount=50.0)], None, False),
    ]
    rec = Recorder([*pages, *pages])
    client = billing(rec)
    got = list(client.transactions())
    assert [t.id for t in got] == ["tx_5", "tx_4", "tx_3", "tx_2", "tx_1"]
    assert got[0] == Transaction(
        "tx_5",
        "usage",
        -0.003,
        "images",
        dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.timezone.utc),
        raw=tx(5),
    )
    assert got[-1].amount == 50.0
    assert [t.id async for t in client.atransactions()] == [t.id for t in got]
    assert [query(r).get("cursor") for r in rec.requests] == [None, ["c1"], ["c2"]] * 2


def test_transactions_are_fetched_as_the_iteration_reaches_them() -> None:
    rec = Recorder([page([tx(2)], "c1", True), page([tx(1)], None, False)])
    stream = billing(rec).transactions()
    assert rec.requests == []  # nothing before the first item is asked for
    assert next(stream).id == "tx_2" and len(rec.requests) == 1


def test_an_iso_time_is_read_too() -> None:
    rec = Recorder([page([{**tx(1), "createdAt": "2026-12-01T10:00:00Z"}], None, False)])
    (only,) = billing(rec).transactions()
    assert only.created_at == dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("call", "answer", "message"),
    [
        ("balance", {"creditsBalance": 1.0}, "without a 'data' object (keys: ['creditsBalance'])"),
        (
            "balance",
            {"data": {"creditsBalance": "1.0", "activeUsageCost": 0}},
            "'creditsBalance' as '1.0', not a number",
        ),
        (
            "usage",
            {"data": {**USAGE["data"], "total_requests": 1.5}},
            "'total_requests' as 1.5, not a whole number",
        ),
        ("transactions", {"data": {}}, "transactions without a 'data' list"),
        ("transactions", page([tx(1)], None, True), "hasMore without a cursor"),
        ("transactions", page([{"amount": 1.0}], None, False), "not an object with an id"),
    ],
)
def test_a_malformed_answer_says_what_is_wrong(call: str, answer: Any, message: str) -> None:
    client = billing(Recorder([answer]))
    with pytest.raises(core.ResponseFormatError) as malformed:
        result = getattr(client, call)()
        list(result) if call == "transactions" else result
    assert message in str(malformed.value)


async def test_errors_are_the_packages_typed_errors() -> None:
    rec = Recorder(
        [
            error(401, "unauthorized", "Missing or invalid API key."),
            error(402, "insufficient_credits", "No credits."),
        ]
    )
    client = billing(rec, max_retries=0)
    with pytest.raises(core.AuthenticationError, match="Check the API key"):
        client.balance()
    with pytest.raises(core.InsufficientCreditsError):
        await client.abalance()


def test_a_5xx_is_retried_like_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from runcrate_integrations.net import transport

    monkeypatch.setattr(transport, "BACKOFF_START", 0.001)
    rec = Recorder([error(503, "unavailable", "busy"), BALANCE])
    assert billing(rec, max_retries=1).balance().credits_balance == 97.25
    assert len(rec.requests) == 2


def test_a_missing_key_fails_at_construction() -> None:
    with pytest.raises(core.MissingAPIKeyError, match="RUNCRATE_API_KEY"):
        RuncrateBilling()


def test_the_billing_url_comes_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BILLING_URL_ENV, "http://127.0.0.1:8094/api/v1/")
    monkeypatch.setenv("RUNCRATE_BASE_URL", "http://elsewhere.test/v1")  # not the billing one
    client = RuncrateBilling()  # a URL other than Runcrate's own needs no key
    assert client.clients.settings.base_url == "http://127.0.0.1:8094/api/v1"


def test_the_key_is_never_shown_and_a_copy_works_in_another_process() -> None:
    client = RuncrateBilling(api_key=KEY)
    assert KEY not in repr(client) and KEY not in str(client.model_dump())
    assert KEY not in json.dumps(client.model_dump(mode="json"))
    copy = pickle.loads(pickle.dumps(client))  # as a process pool sends it (key included)
    assert copy.clients.settings.base_url == DEFAULT_BILLING_URL
    assert copy.clients.settings.secret == KEY


def test_a_key_echoed_back_by_the_server_is_blanked_out() -> None:
    rec = Recorder([error(401, "unauthorized", f"Invalid API key {KEY}")])
    with pytest.raises(core.AuthenticationError) as denied:
        billing(rec, max_retries=0).balance()
    assert KEY not in str(denied.value) and "Invalid API key ***" in str(denied.value)
    assert KEY not in repr(pickle.loads(pickle.dumps(denied.value)).__dict__)


async def test_the_deadline_bounds_a_billing_call() -> None:
    # The server asks for a 5 s wait: waiting would pass the deadline, so the call stops at
    # once with the timeout error, as chat does (sync and async alike).
    for run_async in (False, True):
        busy = error(429, "rate_limited", "slow down", {"retry-after": "5"})
        rec = Recorder([busy, BALANCE])
        # A key of its own each time: the first 429 holds back every caller of its key.
        client = billing(rec, api_key=f"{KEY}_{run_async}", deadline=0.5, max_retries=3)
        started = time.monotonic()
        with pytest.raises(core.APITimeoutError):
            await client.abalance() if run_async else client.balance()
        assert time.monotonic() - started < 0.5 + 0.5
        assert len(rec.requests) == 1
