"""Chat calls under :mod:`~runcrate_integrations.usage`: a call's worst case is held before it
is sent, and its answer, or its stream's end however it ends, is counted.

The engine calls :func:`meter` / :func:`ameter` right before sending (``None`` when nothing
watches, after one ContextVar read), then :func:`settle_answer` with a JSON answer, or
:func:`settle_stream` when a stream ends. A call's worst case is its estimated prompt (the
package's token counter, held larger by
:data:`~runcrate_integrations.usage.ESTIMATE_MARGIN`) and ``max_tokens`` per choice, or, when
``max_tokens`` is unset, the rest of the model's context window (from the catalog, read only
then). An answer without usage is counted from an estimate and flagged ``estimated``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import catalog, usage
from ..tokens import TokenCounter, counter_for
from .answer import StreamFold, Usage, parse_usage

if TYPE_CHECKING:
    from ..catalog import ModelInfo
    from ..net.clients import Clients

JSONDict = dict[str, Any]


def meter(clients: Clients, body: JSONDict, deadline: float | None) -> usage.Meter | None:
    """The call's hold (``None`` when nothing watches); raises ``BudgetExceededError``."""
    if not usage.watching():
        return None
    info = catalog.model_info(clients, body["model"], deadline) if _needs_window(body) else None
    return _open(clients, body, info)


async def ameter(clients: Clients, body: JSONDict, deadline: float | None) -> usage.Meter | None:
    """Async twin of :func:`meter` (the catalog, if needed, is read without blocking)."""
    if not usage.watching():
        return None
    model = body["model"]
    info = await catalog.amodel_info(clients, model, deadline) if _needs_window(body) else None
    return _open(clients, body, info)


def settle_answer(meter: usage.Meter, clients: Clients, body: JSONDict, data: JSONDict) -> None:
    """Count a JSON answer: its usage, else an estimate of the request and the answer's text."""
    found = parse_usage(data.get("usage"))
    if found is not None:
        meter.settle(_record(body["model"], found))
    else:
        meter.settle(_estimate(clients, body, _answer_text(data)))


def settle_stream(
    meter: usage.Meter, clients: Clients, body: JSONDict, fold: StreamFold | None
) -> None:
    """Count a stream that ended, however: ``fold`` is ``None`` when no answer started (the
    hold is released), else its usage chunk counts, or an estimate of what it said so far."""
    if fold is None:
        meter.release()
    elif fold.usage is not None:
        meter.settle(_record(body["model"], fold.usage))
    else:
        meter.settle(_estimate(clients, body, fold.received_text()))


# ---------------------------------------------------------------------------- worst cases


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _needs_window(body: Mapping[str, Any]) -> bool:
    return usage.budgeted() and _max_tokens(body) is None and usage.has_price(body["model"])


def _counter(clients: Clients, model: str) -> TokenCounter:
    return counter_for(clients.settings.base_url, model)


def _open(clients: Clients, body: JSONDict, info: ModelInfo | None) -> usage.Meter:
    model = body["model"]
    if not usage.budgeted():
        return usage.open_meter(model, None)
    estimate = _counter(clients, model).count_messages(body["messages"], body.get("tools"))
    prompt = math.ceil(estimate * usage.ESTIMATE_MARGIN)
    limit = _max_tokens(body)
    if limit is None and usage.has_price(model):
        window = info.context_length if info is not None else None
        if window is None:
            return usage.open_meter(
                model,
                None,
                (
                    "max_tokens is unset and the model catalog gives no context length for it; "
                    "set max_tokens"
                ),
            )
        limit = max(window - prompt, 0)
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    worst = usage.UsageRecord(model, 0, prompt, (limit or 0) * choices)
    return usage.open_meter(model, worst)


# ---------------------------------------------------------------------------- answers


def _record(model: str, found: Usage) -> usage.UsageRecord:
    return usage.UsageRecord(
        model, 1, found.input_tokens, found.output_tokens, found.total_tokens, cost=found.cost
    )


def _estimate(clients: Clients, body: JSONDict, text: str) -> usage.UsageRecord:
    model = body["model"]
    counter = _counter(clients, model)
    prompt = counter.count_messages(body["messages"], body.get("tools"))
    completion = counter.count_text(text)
    return usage.UsageRecord(model, 1, prompt, completion, prompt + completion, estimated=True)


def _answer_text(data: Mapping[str, Any]) -> str:
    """The text of every choice of a JSON answer (content, reasoning, tool calls)."""
    parts: list[str] = []
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, Mapping) else None
        if not isinstance(message, Mapping):
            continue
        for key in ("content", "reasoning_content", "reasoning", "refusal"):
            value = message.get(key)
            if isinstance(value, str):
                parts.append(value)
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                parts += [str(fn.get("name") or ""), str(fn.get("arguments") or "")]
    return "".join(parts)
