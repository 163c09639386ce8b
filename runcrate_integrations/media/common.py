"""What the media endpoints share: parameter checks (each says what is allowed), the merge of
explicit parameters over ``extra_body``, and small helpers for bytes (sizes, file names).

Every check raises ``ValueError`` before any request is sent; a known parameter is checked
whether it was passed by name or inside ``extra_body``, and unknown ones (a model's own
extras, e.g. ``input_image`` for an editing model) go to the server as given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

JSONDict = dict[str, Any]
Check = Callable[[str, Any], None]

#: The side lengths Runcrate accepts for images and videos (pixels).
MIN_SIDE = 256
MAX_SIDE = 2048
_RATIO = re.compile(r"^[1-9][0-9]*:[1-9][0-9]*$")


def check_prompt(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} is empty; say what to make")


def check_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def check_int(lo: int | None, hi: int | None) -> Check:
    """A check for an integer in ``lo..hi`` (either end open when ``None``)."""

    def check(name: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = (
                f"from {lo} to {hi}"
                if lo is not None and hi is not None
                else (f">= {lo}" if lo is not None else f"<= {hi}")
            )
            raise ValueError(f"{name} must be {span}, got {value}")

    return check


def check_number(lo: float, *, above: bool = False) -> Check:
    """A check for a finite number ``>= lo`` (``> lo`` when ``above``)."""

    def check(name: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < lo or (above and value == lo):
            sign = ">" if above else ">="
            raise ValueError(f"{name} must be a number {sign} {lo:g}, got {value!r}")

    return check


def check_choice(*allowed: str) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in allowed:
            raise ValueError(
                f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
            )

    return check


def check_ratio(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _RATIO.match(value.strip()):
        raise ValueError(f"{name} must look like '16:9' (width:height), got {value!r}")


check_side = check_int(MIN_SIDE, MAX_SIDE)
check_seed = check_int(0, None)


def build_body(
    fixed: JSONDict,
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
    checks: Mapping[str, Check],
) -> JSONDict:
    """``fixed`` (model and the like) plus ``extra_body`` and ``params`` (``None`` values left
    out, ``params`` winning), every known parameter checked wherever it came from."""
    body = dict(fixed)
    merged = {**(extra_body or {}), **{k: v for k, v in params.items() if v is not None}}
    for key, value in merged.items():
        if key in fixed:
            raise ValueError(f"extra_body must not set {key!r}; it is set by its own argument")
        if value is None:
            continue
        check = checks.get(key)
        if check is not None:
            check(key, value)
        body[key] = value
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the request parameters are not JSON-serialisable: {exc}") from None
    return body


def human_size(size: int) -> str:
    """``812 B``, ``1.2 kB``, ``3.4 MB``: a byte count for people (decimal units)."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1e3:.1f} kB"
    if size < 1_000_000_000:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.1f} GB"


def format_error(message: str) -> Exception:
    """A ResponseFormatError; errors (which imports openai) is loaded only when one is raised."""
    from ..errors import ResponseFormatError

    return ResponseFormatError(message)
