"""Billing as a ledger answers it, replayed: balance, usage, transactions and a wrong key.

Recorded from the STAND-IN ledger of ``../shared/local-media/serve`` (Runcrate's documented
shapes, made-up prices; see cassettes/README.md), so these tests check how the client reads
Runcrate's shapes, not what anything costs.
"""

from __future__ import annotations

import datetime as dt

import pytest

import runcrate_integrations as core
from runcrate_integrations import Balance, BillingUsage, Transaction

from .conftest import MakeBilling

START, END = dt.date(2026, 12, 1), dt.date(2026, 12, 31)


def test_balance(billing: MakeBilling) -> None:
    balance = billing().balance()
    assert isinstance(balance, Balance)
    assert isinstance(balance.credits_balance, float) and balance.credits_balance > 0
    assert isinstance(balance.active_usage_cost, float) and balance.active_usage_cost >= 0


def test_usage_between_dates(billing: MakeBilling) -> None:
    usage = billing().usage(start=START, end=END)
    assert isinstance(usage, BillingUsage) and (usage.start, usage.end) == (START, END)
    counts = (
        usage.total_requests,
        usage.total_prompt_tokens,
        usage.total_completion_tokens,
        usage.total_tokens,
    )
    assert all(isinstance(n, int) and n >= 0 for n in counts)
    assert isinstance(usage.total_cost, float) and usage.total_cost >= 0


async def test_async_balance_and_usage(billing: MakeBilling) -> None:
    client = billing()
    assert isinstance(await client.abalance(), Balance)
    assert isinstance(await client.ausage(start=START), BillingUsage)


@pytest.mark.usefixtures("spend")
def test_transactions_after_a_charge(billing: MakeBilling) -> None:
    client = billing()
    found = list(client.transactions())
    assert found, "the ledger shows the charge made before recording"
    newest = found[0]
    assert isinstance(newest, Transaction) and newest.id
    assert newest.amount < 0  # spend is negative
    assert newest.created_at is not None and newest.created_at.tzinfo is not None
    assert client.usage().total_cost > 0 and client.balance().credits_balance < 100


def test_a_wrong_key_is_a_typed_401(billing: MakeBilling) -> None:
    wrong = "rc_live_wrong_key_for_the_billing_test"
    with pytest.raises(core.AuthenticationError) as denied:
        billing(api_key=wrong).balance()
    assert denied.value.status_code == 401
    assert "Check the API key" in str(denied.value) and wrong not in str(denied.value)
