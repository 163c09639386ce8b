"""What a block of calls used and cost, and a hard stop at a budget: :func:`track_usage`.

:mod:`.prices` (what an answer used and costs), :mod:`.tracker` (trackers and the one lock
they are checked, held and counted under), :mod:`.calls` (a call's hold, the observers, the
media hooks).

Every answer the package receives is counted here, once, from the one place each kind of
answer passes: the chat engine (calls and streams, through
:mod:`~runcrate_integrations.chat.metering`), the embeddings sender
(:mod:`~runcrate_integrations.embeddings`) and media (:func:`record_media`). LangChain's
``get_runcrate_callback`` and LlamaIndex's ``RuncrateUsageHandler`` are views of these counts,
so both frameworks count the same way.

**Scope.** A tracker is held in a ``ContextVar``: it sees the calls of its ``with`` block, of
asyncio tasks started inside it and of worker threads that copy the context (this package's
own, LangChain's ``batch``); a thread started elsewhere never sees it. Trackers nest: a call
counts in every tracker around it.

**Counts** come from the server's ``usage``; a stream always asks for it while anything
watches. An answer without usage (a stream closed before its usage chunk, a server that sends
none) is counted from an estimate of what was sent and received
(:mod:`~runcrate_integrations.tokens`), flagged ``estimated``. A call counts as one request
when its answer arrives, however many attempts (429s, 5xx, dropped connections) it took; a
call that ends in an error counts nothing.

**Cost**: the answer's ``usage.cost`` when it carries one, else the price of its model from the
innermost tracker that has one (USD per million tokens, per image, ...). No price and no
``usage.cost``: the cost is ``None`` (never a silent 0) and one warning names the model.

**Budget**: before a call is sent its worst case is reserved in every budgeted tracker around
it (estimated prompt tokens plus ``max_tokens``, or the context length when ``max_tokens`` is
unset), and the answer settles it; a call whose reservation would pass a budget raises
:class:`~runcrate_integrations.errors.BudgetExceededError` and sends nothing. A call whose worst
case has no price is sent only while nothing else is in flight; an answer whose cost is unknown
stops every later call of a budgeted tracker (a budget that cannot be checked is no guard).
"""

from __future__ import annotations

from .calls import (
    Meter,
    UsageObserver,
    add_observer,
    budgeted,
    has_price,
    open_meter,
    record_media,
    reserve_media,
    watching,
)
from .prices import (
    ESTIMATE_MARGIN,
    PRICE_KEYS,
    ModelUsage,
    Prices,
    UsageRecord,
    check_budget,
    check_prices,
    money,
    price_of,
)
from .tracker import UsageTracker, track_usage

__all__ = [
    "ESTIMATE_MARGIN",
    "PRICE_KEYS",
    "Meter",
    "ModelUsage",
    "Prices",
    "UsageObserver",
    "UsageRecord",
    "UsageTracker",
    "add_observer",
    "budgeted",
    "check_budget",
    "check_prices",
    "has_price",
    "money",
    "open_meter",
    "price_of",
    "record_media",
    "reserve_media",
    "track_usage",
    "watching",
]
