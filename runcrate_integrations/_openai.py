"""The ``openai`` client subclasses; imported on first client construction, not at import.

``import openai`` costs about half a second, so the rest of the package refers to this module
only when a client is actually built.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai

from .errors import make_status_error
from .settings import RATE_LIMIT_RESET_CAP


def reset_delay(headers: httpx2.Headers | None) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (a Unix time), capped, when no Retry-After is sent."""
    if headers is None or "retry-after" in headers or "retry-after-ms" in headers:
        return None
    reset = headers.get("x-ratelimit-reset")
    if reset is None:
        return None
    try:
        delay = float(reset) - time.time()
    except ValueError:
        return None
    return min(max(delay, 0.0), RATE_LIMIT_RESET_CAP)


class _RuncrateBehaviour:
    """What both clients change in openai's request path: error classes and rate-limit waits."""

    api_key: str

    def _make_status_error(
        self, err_msg: str, *, body: object, response: httpx2.Response
    ) -> openai.APIStatusError:
        return make_status_error(err_msg, body=body, response=response, secret=self.api_key)

    def _should_retry(self, response: httpx2.Response) -> bool:
        # 402 cannot succeed until someone adds credits, whatever x-should-retry says.
        if response.status_code == 402:
            return False
        parent: Any = super()
        return bool(parent._should_retry(response))

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: httpx2.Headers | None = None
    ) -> float:
        delay = reset_delay(response_headers)
        if delay is not None:
            return delay
        parent: Any = super()
        return float(parent._calculate_retry_timeout(remaining_retries, options, response_headers))


class RuncrateOpenAI(_RuncrateBehaviour, openai.OpenAI):
    """``openai.OpenAI`` that raises this package's typed errors and honours X-RateLimit-Reset."""


class AsyncRuncrateOpenAI(_RuncrateBehaviour, openai.AsyncOpenAI):
    """Async twin of :class:`RuncrateOpenAI`."""
