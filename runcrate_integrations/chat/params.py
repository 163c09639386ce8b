"""Runcrate's parameter ranges and the names a call may use, checked before anything is sent:
a near miss of a known name is a typo; a name that looks like a secret never goes in a body."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

# name -> (low, high), inclusive.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}
POSITIVE_INTS = ("max_tokens", "max_completion_tokens", "n")
TOP_LOGPROBS = (0, 20)


def is_int(value: object) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_params(params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for a known parameter (set: not ``None``) outside Runcrate's range;
    unknown ones pass."""
    for name, value in params.items():
        if name in RANGES:
            low, high = RANGES[name]
            if not (is_int(value) or isinstance(value, float)) or not low <= value <= high:
                raise ValueError(
                    f"{name} must be a number between {low:g} and {high:g}, got {value!r}"
                )
        elif name in POSITIVE_INTS and (not is_int(value) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        elif name == "top_logprobs" and (
            not is_int(value) or not TOP_LOGPROBS[0] <= value <= TOP_LOGPROBS[1]
        ):
            low, high = TOP_LOGPROBS
            raise ValueError(
                f"top_logprobs must be an integer between {low} and {high}, got {value!r}"
            )
        elif name == "seed" and not is_int(value):
            raise ValueError(f"seed must be an integer, got {value!r}")
        elif name == "stop" and not (
            isinstance(value, str)
            or (isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value))
        ):
            raise ValueError(f"stop must be a string or a list of strings, got {value!r}")


# What a chat call accepts besides the messages (known parameters and the engine's controls).
CHAT_PARAMS = frozenset(
    {*RANGES, *POSITIVE_INTS, "top_logprobs", "seed", "stop", "logprobs", "response_format"}
    | {"parallel_tool_calls", "tools", "tool_choice"}
)
CALL_NAMES = CHAT_PARAMS | frozenset(
    {"model", "extra_body", "extra_headers", "stream_usage", "timeout", "max_retries", "deadline"}
)
# Real parameters of OpenAI-compatible servers, never taken for a typo (top_k is not top_p).
PASSTHROUGH = frozenset(
    # sampling
    {"top_k", "min_p", "top_a", "typical_p", "repetition_penalty", "min_tokens", "logit_bias"}
    # OpenAI's
    | {"reasoning_effort", "user", "metadata", "store", "service_tier", "modalities", "audio"}
    | {"prediction", "verbosity", "web_search_options"}
    # routers' (OpenRouter, Mistral) and local servers' (vLLM, llama.cpp)
    | {"reasoning", "safe_prompt", "transforms", "provider", "models", "route"}
    | {"chat_template_kwargs", "guided_json", "grammar"}
)


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is a typo of (case, ``-``/space for ``_``, or one or two letters
    off a name of four or more, a swap counting one), else ``None``; never for PASSTHROUGH."""
    known = tuple(known)
    if name in PASSTHROUGH or name in known:
        return None
    folded = name.lower().replace("-", "_").replace(" ", "_")
    if folded in known:
        return folded
    best: tuple[int, str] | None = None
    for candidate in known:
        if len(candidate) < 4 or abs(len(candidate) - len(folded)) > 2:
            continue
        allowed = 1 if len(candidate) < 8 else 2
        distance = _edit_distance(folded, candidate, allowed)
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours costs 1), capped at limit+1."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return prev[-1]


def check_call_names(names: Iterable[str]) -> None:
    """Raise ``ValueError`` for a per-call argument that is a near miss of a known option."""
    for name in names:
        if name not in CALL_NAMES and (intended := near_miss(name, CALL_NAMES)) is not None:
            raise ValueError(
                f"Unknown parameter {name!r}; did you mean {intended!r}? (nothing was sent; "
                "parameters the server knows but this package does not are passed through, "
                "so a misspelt one would have been sent unnoticed)"
            )


# A word of a parameter name that marks a secret.
_SECRET = re.compile(r".*(key|token|secret)|password|passwd|auth(orization)?|credentials?|bearer")


def check_not_secret(names: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` for a name like a secret (``api_key``, ``clientSecret``; not a known
    one like ``max_tokens``): request bodies get logged; the key belongs in ``api_key``."""
    for name in names:
        if name in PASSTHROUGH or name in CHAT_PARAMS:
            continue
        words = re.split(r"[_\-\s.]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
        if any(_SECRET.fullmatch(w) for w in words if w):
            raise ValueError(
                f"{name!r} looks like a secret, and {where} would send it in the JSON body of "
                "every request. Pass the Runcrate key as api_key=... (or set RUNCRATE_API_KEY); "
                "nothing was sent."
            )
