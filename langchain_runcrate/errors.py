"""Errors that belong to both hierarchies: the core's (hence ``openai``'s) and LangChain's.

Every API error leaving :class:`~langchain_runcrate.ChatRuncrate` is an instance of the core
class it came from (``runcrate_integrations.RateLimitError``, itself an
``openai.RateLimitError``) *and* of the matching ``langchain_core.exceptions`` class
(``ModelRateLimitError``), so ``except openai.RateLimitError``, ``except RateLimitError`` and
LangChain's retry and summarisation middleware (which read ``ModelError.is_retryable``) all work.

``is_retryable`` comes from the core class, so it means the same in both frameworks.
This module imports ``openai``; :mod:`._error_hook` loads it only once an error is raised.
"""

from __future__ import annotations

import openai
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
    OutputParserException,
)

from runcrate_integrations import errors as core
from runcrate_integrations.errors import status_error

__all__ = [
    "RuncrateAPIStatusError",
    "RuncrateAuthenticationError",
    "RuncrateBadRequestError",
    "RuncrateConflictError",
    "RuncrateConnectionError",
    "RuncrateContextOverflowError",
    "RuncrateInsufficientCreditsError",
    "RuncrateInternalServerError",
    "RuncrateInvalidRequestError",
    "RuncrateJobTimeoutError",
    "RuncrateNotFoundError",
    "RuncratePermissionDeniedError",
    "RuncrateRateLimitError",
    "RuncrateResponseFormatError",
    "RuncrateStreamErrorEvent",
    "RuncrateStreamInterruptedError",
    "RuncrateStructuredOutputError",
    "RuncrateTimeoutError",
    "RuncrateUnprocessableEntityError",
    "to_langchain_error",
]


class RuncrateBadRequestError(core.BadRequestError, ModelInvalidRequestError):
    """400: the request was rejected as invalid."""


class RuncrateContextOverflowError(core.ContextLengthExceededError, ContextOverflowError):
    """400: the prompt does not fit the model's context window (LangChain's
    ``ContextOverflowError``, which the summarisation middleware catches)."""


class RuncrateAuthenticationError(core.AuthenticationError, ModelAuthenticationError):
    """401: the API key is missing or wrong."""


class RuncrateInsufficientCreditsError(core.InsufficientCreditsError, ModelAPIError):
    """402: the account is out of credits.

    A ``ModelAPIError`` (the provider cannot serve the call, so falling back to another model
    is the right reaction) that is *not* retryable: retrying cannot succeed until someone tops
    up the account.
    """


class RuncratePermissionDeniedError(core.PermissionDeniedError, ModelPermissionDeniedError):
    """403: the key may not use this model or endpoint."""


class RuncrateNotFoundError(core.NotFoundError, ModelNotFoundError):
    """404: unknown model or path."""


class RuncrateConflictError(core.ConflictError, ModelAPIError):
    """409 after the client's own retries."""


class RuncrateUnprocessableEntityError(core.UnprocessableEntityError, ModelInvalidRequestError):
    """422: the server understood the request but cannot process it."""


class RuncrateRateLimitError(core.RateLimitError, ModelRateLimitError):
    """429 after the client's own retries; ``.limit``/``.remaining``/``.reset_at`` explain it."""


class RuncrateInternalServerError(core.InternalServerError, ModelAPIError):
    """5xx after the client's own retries."""


class RuncrateInvalidRequestError(core.APIStatusError, ModelInvalidRequestError):
    """Another 4xx the server refused the request with (405, 413, 415, 422, ...)."""


class RuncrateAPIStatusError(core.APIStatusError, ModelAPIError):
    """Any other error status (408 and 409 are retryable, like the openai client treats them)."""


class RuncrateResponseFormatError(core.ResponseFormatError, ModelAPIError):
    """The server answered 2xx with a body that is not a usable chat completion."""


class RuncrateStructuredOutputError(core.StructuredOutputError, OutputParserException):
    """A structured answer that is not valid JSON for its schema: also LangChain's
    ``OutputParserException``, which its retry and fixing parsers catch."""


class RuncrateStreamInterruptedError(core.StreamInterruptedError, ModelConnectionError):
    """The stream stopped before the server finished the answer."""


class RuncrateStreamErrorEvent(core.StreamErrorEvent, ModelAPIError):
    """The server reported an error inside a stream that had already started."""


class RuncrateConnectionError(core.APIConnectionError, ModelConnectionError):
    """The server could not be reached (after the client's own retries)."""


class RuncrateTimeoutError(core.APITimeoutError, ModelTimeoutError):
    """The request timed out (after the client's own retries)."""


class RuncrateJobTimeoutError(core.JobTimeoutError, ModelTimeoutError):
    """Waiting for a video job ran out of time; ``job_id`` names the job, which goes on."""


# Looked up along the raised error's MRO, so the most specific entry wins.
_DUALS: dict[type[BaseException], type[openai.APIError]] = {
    core.ContextLengthExceededError: RuncrateContextOverflowError,
    core.BadRequestError: RuncrateBadRequestError,
    core.AuthenticationError: RuncrateAuthenticationError,
    core.InsufficientCreditsError: RuncrateInsufficientCreditsError,
    core.PermissionDeniedError: RuncratePermissionDeniedError,
    core.NotFoundError: RuncrateNotFoundError,
    core.ConflictError: RuncrateConflictError,
    core.UnprocessableEntityError: RuncrateUnprocessableEntityError,
    core.RateLimitError: RuncrateRateLimitError,
    core.InternalServerError: RuncrateInternalServerError,
    core.APIStatusError: RuncrateAPIStatusError,
    core.StreamInterruptedError: RuncrateStreamInterruptedError,
    core.StreamErrorEvent: RuncrateStreamErrorEvent,
    core.StructuredOutputError: RuncrateStructuredOutputError,
    openai.APIResponseValidationError: RuncrateResponseFormatError,
    core.JobTimeoutError: RuncrateJobTimeoutError,
    openai.APITimeoutError: RuncrateTimeoutError,
    openai.APIConnectionError: RuncrateConnectionError,
}


def _recast(err: openai.APIError, cls: type[openai.APIError]) -> openai.APIError:
    """A copy of ``err`` as an instance of ``cls``: same message, fields and response.

    Copying the instance state avoids re-running each class's constructor, whose signatures
    differ (``response=``, ``request=``, positional ``message``...).
    """
    new = cls.__new__(cls)
    new.__dict__.update(err.__dict__)
    new.args = err.args
    return new


def to_langchain_error(err: openai.APIError) -> openai.APIError:
    """The dual-hierarchy counterpart of ``err`` (``err`` itself when already translated)."""
    if isinstance(err, ModelError):
        return err
    if isinstance(err, openai.APIStatusError) and not isinstance(err, core.RuncrateAPIError):
        # Only reachable if something other than the core's client raised; classify it the
        # same way the core does so the mapping below applies.
        err = status_error(err.response, err.body)
    cls = next((_DUALS[c] for c in type(err).__mro__ if c in _DUALS), None)
    if cls is None:
        return err
    if cls is RuncrateAPIStatusError and isinstance(err, openai.APIStatusError):
        status = err.status_code
        if 400 <= status < 500 and status not in core.RETRYABLE_STATUSES:
            cls = RuncrateInvalidRequestError
    return _recast(err, cls)
