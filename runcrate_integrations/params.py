"""Runcrate's parameter ranges, checked before any request is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# name -> (low, high), inclusive.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}
POSITIVE_INTS = ("max_tokens", "max_completion_tokens", "n")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_range(name: str, value: object) -> None:
    """Raise ``ValueError`` when a sampling parameter is outside Runcrate's range."""
    if value is None:
        return
    if name in RANGES:
        low, high = RANGES[name]
        if not _is_number(value) or not low <= value <= high:  # type: ignore[operator]  # checked
            raise ValueError(f"{name} must be a number between {low:g} and {high:g}, got {value!r}")
    elif name in POSITIVE_INTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    elif name == "top_logprobs":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 20:
            raise ValueError(f"top_logprobs must be an integer between 0 and 20, got {value!r}")
    elif name == "seed":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"seed must be an integer, got {value!r}")
    elif name == "stop":
        ok = isinstance(value, str) or (
            isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value)
        )
        if not ok:
            raise ValueError(f"stop must be a string or a list of strings, got {value!r}")


def check_params(params: Mapping[str, Any]) -> None:
    """Check every known parameter in a request body (unknown keys pass through)."""
    for name, value in params.items():
        check_range(name, value)
