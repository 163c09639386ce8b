"""``POST /embeddings``: request bodies, answer parsing and batching, shared by both adapters.

:class:`EmbeddingOptions` is built once per adapter instance; it checks everything a server
would reject (and a few things it would silently get wrong) before any request is sent, and
precomputes the constant part of the body. :func:`embed_texts` / :func:`aembed_texts` split
the inputs into batches, send them through the one request loop
(:mod:`runcrate_integrations.net.transport`: retries, typed errors, rate limits, deadline), a
few at once (``max_concurrency``), and return the vectors in input order.
:class:`Embedder` bundles options and clients: it is all an adapter instance needs to hold;
:class:`EmbeddingSettings` is the spec's embeddings part every embeddings class derives from.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import json
import math
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import AliasChoices, Field

from . import usage
from .config import Connection, check_deadline
from .net import transport
from .net.clients import Clients
from .net.transport import ErrorHook, translating
from .tokens import counter_for

JSONDict = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")
EMBEDDINGS_PATH = "/embeddings"
ENCODING_FORMATS = ("float", "base64")
# Inputs per request. With ~1k-token chunks (LangChain's and LlamaIndex's default splitters)
# 256 inputs stay under OpenAI's 300k-token per-request cap, which compatible servers copy.
DEFAULT_BATCH_SIZE = 256
# Batches in flight at once for one call; 1 sends them one after another.
DEFAULT_MAX_CONCURRENCY = 4
#: Told the number of texts in each batch as it finishes (e.g. ``tqdm(...).update``).
Progress = Callable[[int], object]
# Fields the options own; setting them through extra_body would bypass the checks below.
_RESERVED = {
    "model": "the model option",
    "input": "the texts you embed",
    "dimensions": "the dimensions option",
    "encoding_format": "the encoding_format option",
}


def _format_error(message: str) -> Exception:
    """A ResponseFormatError; errors (which imports openai) is loaded only when one is raised."""
    from .errors import ResponseFormatError

    return ResponseFormatError(message)


def _check_batch_size(size: object, name: str) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {size!r}")


def _check_model(model: object) -> None:
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model must be a non-empty embedding model id, e.g. 'BAAI/bge-m3'")


def _check_dimensions(dimensions: object) -> None:
    if dimensions is None:
        return
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise ValueError(f"dimensions must be an integer >= 1, got {dimensions!r}")


def _check_encoding(encoding_format: object) -> None:
    if encoding_format not in ENCODING_FORMATS:
        raise ValueError(
            f"encoding_format must be 'float' or 'base64', got {encoding_format!r} "
            "(it only changes the wire format; vectors are always returned as floats)"
        )


def _check_extra_body(extra_body: Mapping[str, Any] | None) -> None:
    if not extra_body:
        return
    for key, owner in _RESERVED.items():
        if key in extra_body:
            raise ValueError(f"extra_body must not set {key!r}; it is set by {owner}")
    try:
        json.dumps(extra_body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra_body is not JSON-serialisable: {exc}") from exc


def _tail(
    dimensions: int | None, encoding_format: str, extra_body: Mapping[str, Any] | None
) -> JSONDict:
    tail: JSONDict = {}
    if dimensions is not None:
        tail["dimensions"] = dimensions
    # "float" is the server default, so it is left out; base64 must be asked for.
    if encoding_format != "float":
        tail["encoding_format"] = encoding_format
    if extra_body:
        tail.update(extra_body)
    return tail


@dataclass(frozen=True, slots=True)
class EmbeddingOptions:
    """What every embeddings request of one adapter instance shares; checked on creation.

    Example::

        opts = EmbeddingOptions("BAAI/bge-m3", chunk_size=64, encoding_format="base64")
        opts.body(["a", "b"])
        # {"model": "BAAI/bge-m3", "input": ["a", "b"], "encoding_format": "base64"}
    """

    model: str
    dimensions: int | None = None
    encoding_format: str = "float"
    chunk_size: int = DEFAULT_BATCH_SIZE
    extra_body: Mapping[str, Any] | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    deadline: float | None = None
    _tail: JSONDict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_model(self.model)
        _check_dimensions(self.dimensions)
        _check_encoding(self.encoding_format)
        _check_batch_size(self.chunk_size, "chunk_size")
        _check_batch_size(self.max_concurrency, "max_concurrency")
        _check_extra_body(self.extra_body)
        check_deadline(self.deadline)
        # Frozen dataclass: the precomputed constant part of every body is set once, here.
        object.__setattr__(
            self, "_tail", _tail(self.dimensions, self.encoding_format, self.extra_body)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__ on unpickling so _tail is recomputed (and re-checked).
        args = (
            self.model,
            self.dimensions,
            self.encoding_format,
            self.chunk_size,
            self.extra_body,
            self.max_concurrency,
            self.deadline,
        )
        return (EmbeddingOptions, args)

    def body(self, input: str | list[str]) -> JSONDict:
        """The body for already-checked ``input`` (see :func:`check_texts`)."""
        return {"model": self.model, "input": input, **self._tail}


# ---------------------------------------------------------------------------- inputs


def check_text(text: object) -> str:
    """``text`` itself when it is a non-empty string; ``TypeError``/``ValueError`` otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"the text to embed must be a string, got {type(text).__name__}")
    if not text:
        raise ValueError(
            "cannot embed an empty string: Runcrate (like OpenAI) rejects empty inputs"
        )
    return text


def check_texts(texts: object) -> list[str]:
    """``texts`` as a list after checking each item; the error names the first bad index.

    A bare string is refused: iterating it would embed one character at a time.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "expected a list of strings, got a single string; wrap it in a list "
            "(or use the single-text method, e.g. embed_query)"
        )
    if not isinstance(texts, Iterable) or isinstance(texts, Mapping):
        raise TypeError(f"expected a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(text).__name__}")
        if not text:
            raise ValueError(
                f"texts[{i}] is an empty string; Runcrate (like OpenAI) rejects empty inputs, "
                "so drop or replace it before embedding"
            )
    return texts


def batches(texts: Sequence[str], size: int) -> list[list[str]]:
    """``texts`` split into consecutive lists of at most ``size`` items, in order."""
    _check_batch_size(size, "batch size")
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


# ---------------------------------------------------------------------------- answers


def decode_base64_vector(text: str) -> list[float]:
    """Floats from OpenAI's base64 encoding: little-endian float32, packed."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _format_error(f"an embedding is not valid base64: {exc}") from exc
    if len(raw) % 4:
        raise _format_error(
            f"a base64 embedding has {len(raw)} bytes, not a whole number of float32 values"
        )
    values = array("f", raw)
    if sys.byteorder == "big":  # the wire is little-endian whatever this machine is
        values.byteswap()
    return values.tolist()


def _vector(raw: object, index: int) -> list[float]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str):
        return decode_base64_vector(raw)
    raise _format_error(
        f"embedding {index} is neither a list of floats nor a base64 string: {repr(raw)[:100]}"
    )


def parse_embeddings(
    data: Mapping[str, Any], expected: int, *, dimensions: int | None = None
) -> list[list[float]]:
    """The vectors of an ``/embeddings`` answer, ordered by each item's ``index``.

    ``expected`` is how many inputs were sent. A missing ``data`` list, a wrong count, a bad or
    repeated index, or (when ``dimensions`` was asked for) a vector of another length raises
    :class:`ResponseFormatError` saying which.
    """
    items = data.get("data")
    if not isinstance(items, list):
        raise _format_error(f"the /embeddings answer has no 'data' list (keys: {sorted(data)})")
    if len(items) != expected:
        raise _format_error(
            f"sent {expected} input(s) to /embeddings but got {len(items)} vector(s) back"
        )
    out: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _format_error(f"data[{position}] of the /embeddings answer is not an object")
        # Servers that omit the index answer in input order.
        index = item.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < expected:
            raise _format_error(f"data[{position}] has index {index!r}, outside 0..{expected - 1}")
        if out[index] is not None:
            raise _format_error(f"the /embeddings answer repeats index {index}")
        vector = _vector(item.get("embedding"), index)
        if dimensions is not None and len(vector) != dimensions:
            raise _format_error(
                f"asked for dimensions={dimensions} but embedding {index} has {len(vector)} "
                "values; this model may not support the dimensions option"
            )
        out[index] = vector
    # Count matched and no index repeated, so every slot is filled.
    return cast("list[list[float]]", out)


# ---------------------------------------------------------------------------- requests


def _plan(options: EmbeddingOptions, texts: object) -> list[tuple[JSONDict, int]]:
    """Every request body (with its input count) for ``texts``; checks them all first."""
    checked = check_texts(texts)
    return [(options.body(batch), len(batch)) for batch in batches(checked, options.chunk_size)]


def embed_texts(
    clients: Clients,
    options: EmbeddingOptions,
    texts: Sequence[str],
    progress: Progress | None = None,
) -> list[list[float]]:
    """Embed ``texts`` in batches of ``options.chunk_size``; vectors in input order.

    Every text is checked before the first request; an empty list sends nothing. Up to
    ``options.max_concurrency`` batches are in flight at once (threads: the sync openai client
    is thread-safe), each retried on its own; ``options.deadline`` bounds the whole call;
    ``progress`` is told the size of each batch as it finishes. If a batch fails, no further
    batch is sent and its error is raised: there is no partial result.
    """
    plan = _plan(options, texts)
    deadline = transport.deadline_in(options.deadline)
    workers = min(options.max_concurrency, len(plan))
    if workers <= 1:
        vectors: list[list[float]] = []
        for body, count in plan:
            vectors += _send(clients, options, body, count, deadline)
            if progress is not None:
                progress(count)
        return vectors

    def send(step: tuple[JSONDict, int]) -> list[list[float]]:
        return _send(clients, options, *step, deadline)

    done = None if progress is None else (lambda i: progress(plan[i][1]))
    return [vector for batch in map_in_threads(send, plan, workers, done) for vector in batch]


def _request(body: JSONDict, deadline: float | None) -> transport.Request:
    return transport.Request("POST", EMBEDDINGS_PATH, body=body, deadline=deadline)


def _send(
    clients: Clients,
    options: EmbeddingOptions,
    body: JSONDict,
    count: int,
    deadline: float | None,
) -> list[list[float]]:
    meter = _meter(clients, body)  # None unless track_usage is on
    if meter is None:
        answer = transport.send_json(clients, _request(body, deadline))
    else:
        with meter:
            answer = transport.send_json(clients, _request(body, deadline))
            meter.settle(_usage(clients, body, answer))
    return parse_embeddings(answer, count, dimensions=options.dimensions)


# ---------------------------------------------------------------------------- usage


def _meter(clients: Clients, body: JSONDict) -> usage.Meter | None:
    """The request's hold under track_usage: its estimated input tokens (held larger by
    ``usage.ESTIMATE_MARGIN``); raises ``BudgetExceededError`` when a budget refuses it."""
    if not usage.watching():
        return None
    model = body["model"]
    if not usage.budgeted():
        return usage.open_meter(model, None)
    held = math.ceil(_input_tokens(clients, body) * usage.ESTIMATE_MARGIN)
    return usage.open_meter(model, usage.UsageRecord(model, 0, prompt_tokens=held))


def _input_tokens(clients: Clients, body: JSONDict) -> int:
    texts = body["input"]
    counter = counter_for(clients.settings.base_url, body["model"])
    return sum(counter.count_text(t) for t in ([texts] if isinstance(texts, str) else texts))


def _usage(clients: Clients, body: JSONDict, answer: JSONDict) -> usage.UsageRecord:
    """What an answer used: its ``usage``, else an estimate of the input (flagged)."""
    model, raw = body["model"], answer.get("usage")
    if not isinstance(raw, Mapping):
        prompt = _input_tokens(clients, body)
        return usage.UsageRecord(model, 1, prompt, 0, prompt, estimated=True)
    prompt = int(raw.get("prompt_tokens") or 0)
    cost = raw.get("cost")
    return usage.UsageRecord(
        model,
        1,
        prompt,
        0,
        int(raw.get("total_tokens") or prompt),
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


class _Stopped(Exception):
    """An item not started because another one failed first."""


def map_in_threads(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    done: Callable[[int], object] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, up to ``workers`` at once in threads, in input order.

    Each item runs in a copy of the caller's context (tracing, instrumentation, deadlines);
    ``done(i)`` is called in the caller's thread as item ``i`` finishes. The first failure
    stops every item not yet started and is raised: there is no partial result.
    """
    results: list[R | None] = [None] * len(items)
    failed = threading.Event()

    def run(item: T) -> R:
        if failed.is_set():  # another item failed: this one is not started
            raise _Stopped
        try:
            return fn(item)
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runcrate-embeddings")
    futures: dict[Future[R], int] = {}
    try:
        for i, item in enumerate(items):
            futures[pool.submit(contextvars.copy_context().run, run, item)] = i
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()  # a failed item raises here, in this thread
            except _Stopped:
                continue  # the failure that stopped it comes too
            if done is not None:
                done(i)
    except BaseException:
        failed.set()
        # Items not started are dropped; the (at most workers - 1) running ones end on their
        # own, without holding up the error.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return cast("list[R]", results)


async def aembed_texts(
    clients: Clients,
    options: EmbeddingOptions,
    texts: Sequence[str],
    progress: Progress | None = None,
) -> list[list[float]]:
    """Async twin of :func:`embed_texts`: up to ``options.max_concurrency`` batches in flight
    (a semaphore over one task per batch); the first failure cancels the rest and is raised."""
    plan = _plan(options, texts)
    deadline = transport.deadline_in(options.deadline)
    workers = min(options.max_concurrency, len(plan))
    if workers <= 1:
        vectors: list[list[float]] = []
        for body, count in plan:
            vectors += await _asend(clients, options, body, count, deadline)
            if progress is not None:
                progress(count)
        return vectors
    results: list[list[list[float]] | None] = [None] * len(plan)
    gate = asyncio.Semaphore(workers)
    failed = False

    async def run(i: int, body: JSONDict, count: int) -> None:
        nonlocal failed
        async with gate:
            if failed:  # another batch failed: this one is not sent
                return
            try:
                results[i] = await _asend(clients, options, body, count, deadline)
            except BaseException:
                failed = True  # before the semaphore lets the next batch in
                raise
        if progress is not None:
            progress(count)

    tasks = [asyncio.ensure_future(run(i, body, count)) for i, (body, count) in enumerate(plan)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [vector for batch in results if batch is not None for vector in batch]


async def _asend(
    clients: Clients,
    options: EmbeddingOptions,
    body: JSONDict,
    count: int,
    deadline: float | None,
) -> list[list[float]]:
    meter = _meter(clients, body)
    if meter is None:
        answer = await transport.asend_json(clients, _request(body, deadline))
    else:
        with meter:
            answer = await transport.asend_json(clients, _request(body, deadline))
            meter.settle(_usage(clients, body, answer))
    return parse_embeddings(answer, count, dimensions=options.dimensions)


def embed_text(clients: Clients, options: EmbeddingOptions, text: str) -> list[float]:
    """Embed one text (sent as ``input: "<text>"``)."""
    body = options.body(check_text(text))
    return _send(clients, options, body, 1, transport.deadline_in(options.deadline))[0]


async def aembed_text(clients: Clients, options: EmbeddingOptions, text: str) -> list[float]:
    """Async twin of :func:`embed_text`."""
    body = options.body(check_text(text))
    return (await _asend(clients, options, body, 1, transport.deadline_in(options.deadline)))[0]


@contextmanager
def progress_bar(show: bool, total: int) -> Iterator[Progress | None]:
    """A tqdm bar over ``total`` texts, as the ``progress`` of :meth:`Embedder.embed_texts`
    (``None`` when not shown). tqdm is optional: asking for a bar without it says so."""
    if not show:
        yield None
        return
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # optional, no stubs
    except ImportError as exc:
        raise ImportError("show_progress_bar=True needs tqdm: pip install tqdm") from exc
    with tqdm(total=total, desc="Embedding", unit="text") as bar:
        yield bar.update


# ---------------------------------------------------------------------------- per instance


class Embedder:
    """Options plus the clients that carry them; what an adapter instance holds.

    Example::

        emb = Embedder(Clients(ClientSettings.resolve()), EmbeddingOptions("BAAI/bge-m3"))
        emb.embed_texts(["a", "b"])  # [[...], [...]]
        await emb.aembed_text("a")  # [...]
    """

    __slots__ = ("clients", "errors", "options")

    def __init__(
        self, clients: Clients, options: EmbeddingOptions, *, errors: ErrorHook | None = None
    ) -> None:
        self.clients = clients
        self.options = options
        self.errors = errors

    def embed_texts(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> list[list[float]]:
        """Vectors for ``texts`` in order (see :func:`embed_texts`); ``progress`` is told the
        size of each batch as it finishes."""
        with translating(self.errors):
            return embed_texts(self.clients, self.options, texts, progress)

    async def aembed_texts(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> list[list[float]]:
        """Async twin of :meth:`embed_texts`."""
        with translating(self.errors):
            return await aembed_texts(self.clients, self.options, texts, progress)

    def embed_text(self, text: str) -> list[float]:
        with translating(self.errors):
            return embed_text(self.clients, self.options, text)

    async def aembed_text(self, text: str) -> list[float]:
        with translating(self.errors):
            return await aembed_text(self.clients, self.options, text)


class EmbeddingSettings(Connection):
    """The embeddings part of the spec: connection settings plus what every embeddings request
    shares. The model, batch-size and concurrency fields keep each framework's own names
    (``model``/``chunk_size``/``max_concurrency`` in LangChain, ``model_name``/
    ``embed_batch_size``/``num_workers`` in LlamaIndex), named by the class variables below."""

    model_field: ClassVar[str] = "model"
    batch_size_field: ClassVar[str] = "chunk_size"
    concurrency_field: ClassVar[str] = "max_concurrency"

    dimensions: int | None = Field(
        default=None, ge=1, description="Ask for shorter vectors (models that support it)."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="Wire format of the vectors; both come back as lists of floats.",
    )
    extra_body: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("extra_body", "model_kwargs", "additional_kwargs"),
        description="Extra top-level JSON fields for the request body.",
    )

    def _error_hook(self) -> ErrorHook | None:
        """Turns the core's errors into the adapter's own classes (LangChain's dual ones)."""
        return None

    def _derive(self) -> Embedder:
        options = EmbeddingOptions(
            getattr(self, self.model_field),
            dimensions=self.dimensions,
            encoding_format=self.encoding_format,
            chunk_size=getattr(self, self.batch_size_field),
            extra_body=self.extra_body,
            max_concurrency=getattr(self, self.concurrency_field) or 1,
            deadline=self.deadline,
        )
        clients = Clients(
            self.client_settings(),
            http_client=self.http_client,
            http_async_client=self.http_async_client,
        )
        return Embedder(clients, options, errors=self._error_hook())

    @property
    def embedder(self) -> Embedder:
        """The core embedder every request of this instance goes through."""
        embedder: Embedder = self._state
        return embedder
