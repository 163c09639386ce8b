"""The billing client wired for recording (the ledger ``scripts/record`` names) and replay
(Runcrate's billing URL, answered by the cassette).

The local ledger (``../shared/local-media/serve``) is a STAND-IN: Runcrate's shapes, made-up
prices (cassettes/README.md). While recording, :func:`spend` first buys one stand-in image so
the ledger has a transaction to show; that request goes around the cassette, by the real
``http.client`` taken before any cassette patches it.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from runcrate_integrations import RuncrateBilling
from tests import vcr_support

_HTTP = http.client.HTTPConnection  # the real class: a cassette patches the module's name

MakeBilling = Callable[..., RuncrateBilling]


@pytest.fixture(autouse=True)
def _replay_url(monkeypatch: pytest.MonkeyPatch) -> None:
    if not vcr_support.recording():  # the cassette answers Runcrate's own URL
        monkeypatch.delenv("RUNCRATE_BILLING_URL", raising=False)


@pytest.fixture
def billing() -> MakeBilling:
    """``billing(**fields)``: RuncrateBilling on the recording ledger (or, replayed, Runcrate's
    URL); no retries, so a missing cassette fails at once."""

    def make(**fields: Any) -> RuncrateBilling:
        return RuncrateBilling(
            **{"base_url": vcr_support.billing_url(), "max_retries": 0, **fields}
        )

    return make


@pytest.fixture
def spend() -> None:
    """While recording against the local stand-in ledger: one charged request first."""
    url = vcr_support.billing_url()
    if url is None or "127.0.0.1" not in url:
        return
    where = urlsplit(url)
    connection = _HTTP(where.hostname or "127.0.0.1", where.port or 80, timeout=60)
    body = {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "a ledger entry",
        "width": 256,
        "height": 256,
    }
    headers = {
        "Authorization": f"Bearer {os.environ['RUNCRATE_API_KEY']}",
        "Content-Type": "application/json",
    }
    try:
        connection.request("POST", "/v1/images/generations", json.dumps(body), headers)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
