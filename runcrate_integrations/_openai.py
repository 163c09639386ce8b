"""The ``openai`` client subclasses; imported on first client construction, not at import.

``import openai`` costs about half a second, so the rest of the package refers to this module
only when a client is actually built.

What they change in openai's request path:

* error statuses become this package's typed errors (402 is never retried);
* a retry waits the larger of the server's hint (``Retry-After``, ``retry-after-ms``,
  ``X-RateLimit-Reset``) and openai's own jittered exponential backoff, so a reset a few
  milliseconds away never makes many callers retry at once;
* every attempt (retries included) first asks the process's :class:`~.ratelimit.RateLimiter`
  for this base URL and key when it may go (``_prepare_request``), and every answer's headers
  are shown to it (``_send_request``; streams as soon as their headers arrive);
* under a call's deadline (:data:`~.transport.DEADLINE`) each attempt's timeout is capped to
  what is left (``_prepare_options``), and no attempt or retry wait starts past it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import httpx2
import openai

from . import ratelimit
from .errors import make_status_error
from .settings import RATE_LIMIT_RESET_CAP
from .transport import DEADLINE, past_deadline

log = logging.getLogger(__name__)

# Where an attempt keeps the sequence number the limiter gave it, until its answer arrives.
_SEQ_ATTR = "_runcrate_rate_limit_seq"
# openai's own ceiling for honouring Retry-After (it refuses to retry beyond it).
_MAX_RETRY_AFTER = 120.0


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
    if not math.isfinite(delay):
        return None
    return min(max(delay, 0.0), RATE_LIMIT_RESET_CAP)


class _RuncrateBehaviour:
    """What both clients change in openai's request path: error classes and retry waits."""

    api_key: str
    timeout: Any

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
        """The larger of the server's hint and openai's backoff (computed without the hint)."""
        parent: Any = super()
        backoff = float(parent._calculate_retry_timeout(remaining_retries, options, None))
        hint = self._server_hint(response_headers)
        delay = backoff if hint is None else max(hint, backoff)
        deadline = DEADLINE.get()
        if deadline is not None and time.monotonic() + delay >= deadline:
            raise past_deadline(f"The call (its retry would wait {delay:.2f} s)")
        return delay

    def _within_deadline(self, options: Any) -> Any:
        """Cap this attempt's timeout to what is left of the call's deadline."""
        deadline = DEADLINE.get()
        if deadline is None:
            return options
        left = deadline - time.monotonic()
        if left <= 0:
            raise past_deadline("The call")
        current = options.timeout
        if not isinstance(current, (int, float)):
            current = self.timeout if isinstance(self.timeout, (int, float)) else None
        if current is None or left < current:
            options.timeout = left
        return options

    @staticmethod
    def _check_deadline() -> None:
        deadline = DEADLINE.get()
        if deadline is not None and time.monotonic() >= deadline:
            raise past_deadline("The call (waiting for the rate limit)")

    def _server_hint(self, headers: httpx2.Headers | None) -> float | None:
        if headers is None:
            return None
        hints: list[float] = []
        parse: Any = getattr(self, "_parse_retry_after_header", None)
        if parse is not None:
            retry_after = parse(headers)
            if retry_after is not None and math.isfinite(retry_after):
                hints.append(min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER))
        reset = headers.get("x-ratelimit-reset")
        if reset is not None:
            try:
                delay = float(reset) - time.time()
            except ValueError:
                delay = math.nan
            if math.isfinite(delay):
                hints.append(min(max(delay, 0.0), RATE_LIMIT_RESET_CAP))
        return max(hints) if hints else None

    # The limiter of this client's base URL and key, in this process (a forked child gets a
    # fresh one: the registry is replaced after fork and looked up per attempt).

    def _limiter_setup(self, base_url: object, rate_limits: bool) -> None:
        self._runcrate_rate_limits = rate_limits
        self._runcrate_limiter_key = ratelimit.limiter_key(str(base_url), self.api_key)

    def _limiter(self) -> ratelimit.RateLimiter | None:
        key = getattr(self, "_runcrate_limiter_key", None)
        return ratelimit.limiter(key) if key is not None else None

    def _observe(self, request: httpx2.Request, response: httpx2.Response) -> None:
        limiter = self._limiter()
        if limiter is None:
            return
        seq = getattr(request, _SEQ_ATTR, None)
        try:
            limiter.observe(response.headers, response.status_code, seq)
        except Exception:  # the limiter must never fail a request that got its answer
            log.debug("could not read the rate-limit headers", exc_info=True)

    def _unanswered(self, request: httpx2.Request) -> None:
        limiter = self._limiter()
        if limiter is not None:
            limiter.failed(getattr(request, _SEQ_ATTR, None))


class RuncrateOpenAI(_RuncrateBehaviour, openai.OpenAI):
    """``openai.OpenAI`` with typed errors, hint-aware retries and rate-limit pacing.

    ``rate_limits=False`` sends without waiting for the limiter (answers are still read, so
    :func:`~.ratelimit.rate_limit_state` stays current).
    """

    def __init__(self, *, rate_limits: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limiter_setup(kwargs.get("base_url") or self.base_url, rate_limits)

    def _prepare_options(self, options: Any) -> Any:
        parent: Any = super()
        return self._within_deadline(parent._prepare_options(options))

    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)
        if getattr(self, "_runcrate_rate_limits", False):
            limiter = self._limiter()
            seq = limiter.acquire() if limiter is not None else None
            if seq is not None:
                setattr(request, _SEQ_ATTR, seq)
            self._check_deadline()

    def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> Any:
        parent: Any = super()
        try:
            response = parent._send_request(request, stream=stream, **kwargs)
        except BaseException:
            self._unanswered(request)
            raise
        self._observe(request, response)
        return response


class AsyncRuncrateOpenAI(_RuncrateBehaviour, openai.AsyncOpenAI):
    """Async twin of :class:`RuncrateOpenAI`; its waits suspend the task, not the loop."""

    def __init__(self, *, rate_limits: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limiter_setup(kwargs.get("base_url") or self.base_url, rate_limits)

    async def _prepare_options(self, options: Any) -> Any:
        parent: Any = super()
        return self._within_deadline(await parent._prepare_options(options))

    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)
        if getattr(self, "_runcrate_rate_limits", False):
            limiter = self._limiter()
            seq = await limiter.aacquire() if limiter is not None else None
            if seq is not None:
                setattr(request, _SEQ_ATTR, seq)
            self._check_deadline()

    async def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> Any:
        parent: Any = super()
        try:
            response = await parent._send_request(request, stream=stream, **kwargs)
        except BaseException:
            self._unanswered(request)
            raise
        self._observe(request, response)
        return response
