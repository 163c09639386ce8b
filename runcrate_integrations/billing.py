"""Runcrate's billing API (``https://runcrate.ai/api/v1``, same key): the account's balance,
its usage over dates, and its transactions.

:class:`RuncrateBilling` takes the connection settings of the spec
(:class:`~runcrate_integrations.config.BillingConnection`: its own default URL and
``RUNCRATE_BILLING_URL``) and sends through the one request loop, so it has the same typed
errors, retries, rate-limit pacing and deadline as every other class, and a missing key fails
at construction. Money is ``float`` (USD credits, as the API sends it), dates ``datetime.date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict

from .config import BillingConnection
from .net import transport
from .net.clients import Clients

__all__ = ["Balance", "BillingUsage", "RuncrateBilling", "Transaction"]

JSONDict = dict[str, Any]
BALANCE_PATH = "/billing/balance"
USAGE_PATH = "/billing/usage"
TRANSACTIONS_PATH = "/billing/transactions"


@dataclass(frozen=True, slots=True)
class Balance:
    """``credits_balance``: credits left (USD); ``active_usage_cost``: spend not yet settled."""

    credits_balance: float
    active_usage_cost: float


@dataclass(frozen=True, slots=True)
class BillingUsage:
    """The account's totals between ``start`` and ``end`` (``None``: the API's default)."""

    total_requests: int
    total_prompt_tokens: int
    total_completion_tokens: int
    total_tokens: int
    total_cost: float
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One ledger entry; ``amount`` is negative for spend; ``raw`` is the entry as sent."""

    id: str
    type: str | None
    amount: float
    description: str | None
    created_at: dt.datetime | None
    raw: JSONDict = field(repr=False, compare=False)


class RuncrateBilling(BillingConnection):
    """The account's balance, usage and transactions (``abalance``, ... for async). Example::

    from runcrate_integrations import RuncrateBilling

    billing = RuncrateBilling()  # RUNCRATE_API_KEY; RUNCRATE_BILLING_URL or Runcrate's URL
    print(billing.balance().credits_balance)
    print(billing.usage(start=datetime.date(2026, 12, 1)).total_cost)
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._rebuild()  # outside validation: a missing key raises MissingAPIKeyError itself

    def _derive(self) -> Clients:
        return Clients.of(self)

    @property
    def clients(self) -> Clients:
        """The clients requests go through (pooled per settings)."""
        clients: Clients = self._state
        return clients

    # ------------------------------------------------------------------ requests

    def _request(self, path: str, params: Mapping[str, str] | None = None) -> transport.Request:
        return transport.Request(
            "GET", path, params=params, deadline=transport.deadline_in(self.deadline)
        )

    def balance(self) -> Balance:
        """``GET /billing/balance``: credits left and spend not yet settled."""
        return _balance(_data(transport.send_json(self.clients, self._request(BALANCE_PATH))))

    async def abalance(self) -> Balance:
        """Async twin of :meth:`balance`."""
        data = await transport.asend_json(self.clients, self._request(BALANCE_PATH))
        return _balance(_data(data))

    def usage(self, start: dt.date | None = None, end: dt.date | None = None) -> BillingUsage:
        """``GET /billing/usage?from=&to=``: requests, tokens and cost between two dates."""
        params = _dates(start, end)
        data = transport.send_json(self.clients, self._request(USAGE_PATH, params))
        return _usage(_data(data), start, end)

    async def ausage(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> BillingUsage:
        """Async twin of :meth:`usage`."""
        params = _dates(start, end)
        data = await transport.asend_json(self.clients, self._request(USAGE_PATH, params))
        return _usage(_data(data), start, end)

    def transactions(self) -> Iterator[Transaction]:
        """Every transaction, newest first as the API sends them; pages are fetched as the
        iteration reaches them (``meta.cursor`` / ``hasMore``)."""
        cursor: str | None = None
        while True:
            params = {"cursor": cursor} if cursor else None
            page = transport.send_json(self.clients, self._request(TRANSACTIONS_PATH, params))
            entries, cursor = _page(page)
            yield from entries
            if cursor is None:
                return

    async def atransactions(self) -> AsyncIterator[Transaction]:
        """Async twin of :meth:`transactions`."""
        cursor: str | None = None
        while True:
            params = {"cursor": cursor} if cursor else None
            request = self._request(TRANSACTIONS_PATH, params)
            entries, cursor = _page(await transport.asend_json(self.clients, request))
            for entry in entries:
                yield entry
            if cursor is None:
                return


# ---------------------------------------------------------------------------- answers


def _malformed(what: str) -> Exception:
    from .errors import ResponseFormatError  # errors imports openai: only when raising

    return ResponseFormatError(f"The billing API answered {what}")


def _data(body: Mapping[str, Any]) -> Mapping[str, Any]:
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise _malformed(f"without a 'data' object (keys: {sorted(body)})")
    return data


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _malformed(f"{key!r} as {value!r}, not a number")
    return float(value)


def _count(data: Mapping[str, Any], key: str) -> int:
    value = _number(data, key)
    if not value.is_integer():
        raise _malformed(f"{key!r} as {value!r}, not a whole number")
    return int(value)


def _balance(data: Mapping[str, Any]) -> Balance:
    return Balance(_number(data, "creditsBalance"), _number(data, "activeUsageCost"))


def _usage(data: Mapping[str, Any], start: dt.date | None, end: dt.date | None) -> BillingUsage:
    return BillingUsage(
        _count(data, "total_requests"),
        _count(data, "total_prompt_tokens"),
        _count(data, "total_completion_tokens"),
        _count(data, "total_tokens"),
        _number(data, "total_cost"),
        start,
        end,
    )


def _dates(start: dt.date | None, end: dt.date | None) -> dict[str, str]:
    """The ``from``/``to`` query; checked before anything is sent."""
    params: dict[str, str] = {}
    for name, value in (("from", start), ("to", end)):
        if value is None:
            continue
        if isinstance(value, dt.datetime):  # a datetime is a date too; its day is meant
            value = value.date()
        if not isinstance(value, dt.date):
            raise TypeError(
                f"{'start' if name == 'from' else 'end'} must be a datetime.date, "
                f"got {type(value).__name__}"
            )
        params[name] = value.isoformat()
    if "from" in params and "to" in params and params["from"] > params["to"]:
        raise ValueError(f"start ({params['from']}) is after end ({params['to']})")
    return params


def _when(value: object) -> dt.datetime | None:
    """A transaction's time: Unix seconds or an ISO 8601 string (UTC when no zone is given)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    return None


def _transaction(raw: object) -> Transaction:
    if not isinstance(raw, Mapping) or raw.get("id") is None:
        raise _malformed(f"a transaction that is not an object with an id: {raw!r:.200}")
    kind, text = raw.get("type"), raw.get("description")
    return Transaction(
        str(raw["id"]),
        kind if isinstance(kind, str) else None,
        _number(raw, "amount"),
        text if isinstance(text, str) else None,
        _when(raw.get("createdAt", raw.get("created_at"))),
        dict(raw),
    )


def _page(body: Mapping[str, Any]) -> tuple[list[Transaction], str | None]:
    """A page's transactions and the cursor of the next page (``None``: the last one)."""
    entries = body.get("data")
    if not isinstance(entries, list):
        raise _malformed(f"transactions without a 'data' list (keys: {sorted(body)})")
    meta = body.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    cursor = meta.get("cursor")
    more = meta.get("hasMore") is True
    if more and not cursor:
        raise _malformed("hasMore without a cursor for the next page")
    return [_transaction(e) for e in entries], (str(cursor) if more else None)
