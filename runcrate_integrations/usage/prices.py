"""What an answer used and what it costs: :class:`UsageRecord`, the price table and its
checks, :class:`ModelUsage` (the figures a tracker adds up), and how money is shown."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass

#: What a model's entry in ``prices`` may hold (USD): per million prompt (``input``) and
#: completion (``output``) tokens, per image, per second of video, per million characters of
#: speech, per minute of transcribed audio.
PRICE_KEYS = (
    "input",
    "output",
    "per_image",
    "per_video_second",
    "per_million_characters",
    "per_audio_minute",
)
Prices = Mapping[str, Mapping[str, float]]
#: An estimated input is held this much larger than estimated: the token counter's error on
#: short or unusual text (docs/benchmarks.md), so holds cover what the answers then report.
ESTIMATE_MARGIN = 1.25
# (record field, price key, record units per priced unit): divided, since 1e6 and 60 are exact
# floats and 1e-6 is not (10 tokens at $1 per million cost 1e-05, not 9.999999999999999e-06).
_RATES = (
    ("prompt_tokens", "input", 1e6),
    ("completion_tokens", "output", 1e6),
    ("images", "per_image", 1.0),
    ("video_seconds", "per_video_second", 1.0),
    ("speech_characters", "per_million_characters", 1e6),
    ("audio_seconds", "per_audio_minute", 60.0),
)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one answer used (``requests=0``: a call's worst case, reserved before sending).

    ``cost`` is the server's ``usage.cost`` when the answer carried one; ``estimated`` marks
    counts estimated because the answer carried no usage.
    """

    model: str
    requests: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    speech_characters: int = 0
    audio_seconds: float = 0.0
    cost: float | None = None
    estimated: bool = False


def price_of(record: UsageRecord, price: Mapping[str, float] | None) -> tuple[float | None, str]:
    """The cost of ``record`` at ``price`` (its model's entry), or ``(None, what is missing)``."""
    if price is None:
        return None, "no price"
    total = 0.0
    for name, key, per in _RATES:
        amount = getattr(record, name)
        if amount:
            rate = price.get(key)
            if rate is None:
                return None, f"no {key!r} price"
            total += amount * rate / per
    return total, ""


@dataclass(slots=True)
class ModelUsage:
    """Counts of one model (or of a whole tracker); ``cost`` is ``None`` once any of its
    answers had no known cost, ``estimated`` once any count was estimated."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = 0.0
    images: int = 0
    video_seconds: float = 0.0
    speech_characters: int = 0
    audio_seconds: float = 0.0
    estimated: bool = False

    def _add(self, record: UsageRecord, cost: float | None) -> None:
        self.requests += record.requests
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.total_tokens += record.total_tokens
        self.images += record.images
        self.video_seconds += record.video_seconds
        self.speech_characters += record.speech_characters
        self.audio_seconds += record.audio_seconds
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        self.estimated = self.estimated or record.estimated


# ---------------------------------------------------------------------------- checks


def check_prices(prices: Prices | None) -> dict[str, dict[str, float]]:
    """``prices`` as plain dicts; a key other than :data:`PRICE_KEYS` or a value that is not a
    number >= 0 is a ``ValueError`` naming the model (a typo must not turn into "unknown")."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ValueError(
            f"prices must be a dict of model id -> prices, got {type(prices).__name__}"
        )
    out: dict[str, dict[str, float]] = {}
    for model, entry in prices.items():
        if not isinstance(model, str) or not isinstance(entry, Mapping):
            raise ValueError(
                f"prices[{model!r}] must be a dict such as {{'input': 0.5, "
                "'output': 1.5}} (USD per million tokens)"
            )
        for key, value in entry.items():
            if key not in PRICE_KEYS:
                close = difflib.get_close_matches(str(key), PRICE_KEYS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"prices[{model!r}] has unknown key {key!r}; {hint}"
                    f"known: {', '.join(PRICE_KEYS)}"
                )
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(
                    f"prices[{model!r}][{key!r}] must be a number >= 0 (USD), got {value!r}"
                )
        out[model] = {k: float(v) for k, v in entry.items()}
    return out


def check_budget(budget: object) -> float | None:
    """``budget`` (USD) if it is ``None`` or a finite number >= 0."""
    if budget is None:
        return None
    if (
        not isinstance(budget, (int, float))
        or isinstance(budget, bool)
        or not math.isfinite(budget)
        or budget < 0
    ):
        raise ValueError(f"budget must be a number of USD >= 0, got {budget!r}")
    return float(budget)


def money(usd: float) -> str:
    """``$0.000037``, ``$0.00000022``, ``$1.50``: to the 10th decimal, no trailing zeros (a
    fraction of a cent per call is what most calls cost)."""
    whole, _, cents = f"{usd:.10f}".partition(".")
    return f"${whole}.{cents.rstrip('0').ljust(2, '0')}"


def describe(counts: ModelUsage) -> str:
    """One line: requests, tokens, media units, cost, and whether any of it was estimated."""
    plural = "" if counts.requests == 1 else "s"
    parts = [
        f"{counts.requests} request{plural}",
        f"{counts.total_tokens} tokens ({counts.prompt_tokens} prompt, "
        f"{counts.completion_tokens} completion)",
    ]
    for amount, unit in (
        (counts.images, "images"),
        (counts.video_seconds, "s of video"),
        (counts.speech_characters, "characters of speech"),
        (counts.audio_seconds, "s of audio"),
    ):
        if amount:
            parts.append(f"{amount:g} {unit}")
    parts.append("cost unknown" if counts.cost is None else money(counts.cost))
    text = ", ".join(parts)
    return f"{text} (partly estimated)" if counts.estimated else text
