"""``POST /embeddings`` for both adapters: :class:`EmbeddingOptions` (checked once per
instance), bodies, answer parsing, and :class:`Embedder`, which sends the batches through the
one request loop, ``max_concurrency`` at once, keeping input order."""

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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import AliasChoices, Field

from . import usage
from .config import Connection, check_deadline
from .net import transport
from .net.clients import Clients
from .net.transport import ErrorHook, JSONDict, translating
from .tokens import counter_for

T = TypeVar("T")
R = TypeVar("R", bound=Sized)
# Inputs per request. With ~1k-token chunks (LangChain's and LlamaIndex's default splitters)
# 256 inputs stay under OpenAI's 300k-token per-request cap, which compatible servers copy.
DEFAULT_BATCH_SIZE = 256
# Batches in flight at once for one call; 1 sends them one after another.
DEFAULT_MAX_CONCURRENCY = 4
#: Told the number of texts in each batch as it finishes (e.g. ``tqdm(...).update``).
Progress = Callable[[int], object]
# One request: its body, how many inputs it holds, the call's deadline.
_Batch = tuple[JSONDict, int, float | None]
_UNMETERED = nullcontext()  # stateless, so one serves every call
# Fields the options own; setting them through extra_body would bypass their checks.
_RESERVED = ("model", "input", "dimensions", "encoding_format")


def _format_error(message: str) -> Exception:
    """A ResponseFormatError; errors (which imports openai) is loaded only when one is raised."""
    from .errors import ResponseFormatError

    return ResponseFormatError(message)


def _check_count(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class EmbeddingOptions:
    """What every embeddings request of one adapter instance shares; checked on creation.
    ``EmbeddingOptions("BAAI/bge-m3", encoding_format="base64").body(["a"])`` is
    ``{"model": "BAAI/bge-m3", "input": ["a"], "encoding_format": "base64"}``."""

    model: str
    dimensions: int | None = None
    encoding_format: str = "float"
    chunk_size: int = DEFAULT_BATCH_SIZE
    extra_body: Mapping[str, Any] | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    deadline: float | None = None
    _tail: JSONDict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty embedding model id, e.g. 'BAAI/bge-m3'")
        if self.dimensions is not None:
            _check_count(self.dimensions, "dimensions")
        if self.encoding_format not in ("float", "base64"):
            raise ValueError(
                f"encoding_format must be 'float' or 'base64', got {self.encoding_format!r} "
                "(it only changes the wire format; vectors are always returned as floats)"
            )
        _check_count(self.chunk_size, "chunk_size")
        _check_count(self.max_concurrency, "max_concurrency")
        extra = self.extra_body or {}
        for key in _RESERVED:
            if key in extra:
                owner = "the texts you embed" if key == "input" else f"the {key} option"
                raise ValueError(f"extra_body must not set {key!r}; it is set by {owner}")
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extra_body is not JSON-serialisable: {exc}") from exc
        check_deadline(self.deadline)
        # The constant part of every body, computed once ("float" is the server's default).
        tail: JSONDict = {} if self.dimensions is None else {"dimensions": self.dimensions}
        if self.encoding_format != "float":
            tail["encoding_format"] = self.encoding_format
        object.__setattr__(self, "_tail", {**tail, **extra})

    def body(self, input: str | list[str]) -> JSONDict:
        """The body for already-checked ``input`` (see :func:`check_texts`)."""
        return {"model": self.model, "input": input, **self._tail}


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
    """``texts`` as a list after checking each item; the error names the first bad index. A
    bare string is refused: iterating it would embed one character at a time."""
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
    _check_count(size, "batch size")
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


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


def parse_embeddings(
    data: Mapping[str, Any], expected: int, *, dimensions: int | None = None
) -> list[list[float]]:
    """The vectors of an ``/embeddings`` answer to ``expected`` inputs, ordered by ``index``.
    A missing ``data`` list, a wrong count, a bad or repeated index, or (when ``dimensions``
    was asked for) a vector of another length raises :class:`ResponseFormatError` saying which."""
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
        vector = item.get("embedding")
        if isinstance(vector, str):
            vector = decode_base64_vector(vector)
        elif not isinstance(vector, list):
            raise _format_error(
                f"embedding {index} is neither a list of floats nor a base64 string: "
                f"{repr(vector)[:100]}"
            )
        if dimensions is not None and len(vector) != dimensions:
            raise _format_error(
                f"asked for dimensions={dimensions} but embedding {index} has {len(vector)} "
                "values; this model may not support the dimensions option"
            )
        out[index] = vector
    # Count matched and no index repeated, so every slot is filled.
    return cast("list[list[float]]", out)


def map_in_threads(
    fn: Callable[[T], R], items: Sequence[T], workers: int, progress: Progress | None
) -> list[R]:
    """``[fn(item) for item in items]`` in input order, up to ``workers`` at once in threads
    (each in a copy of the caller's context); ``progress(len(result))`` runs in the caller's
    thread as each finishes. The first failure stops every item not yet started and is raised."""
    results: list[Any] = [None] * len(items)
    if min(workers, len(items)) <= 1:
        for i, item in enumerate(items):
            results[i] = fn(item)
            if progress is not None:
                progress(len(results[i]))
        return results
    failed = threading.Event()

    def run(item: T) -> R | None:
        if failed.is_set():  # another item failed: this one is not started
            return None
        try:
            return fn(item)
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runcrate-embeddings")
    futures: dict[Future[R | None], int] = {}
    try:
        for i, item in enumerate(items):
            futures[pool.submit(contextvars.copy_context().run, run, item)] = i
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()  # a failed item raises here, in this thread
            if progress is not None and not failed.is_set():  # else the failure is coming
                progress(len(results[i]))
    except BaseException:
        failed.set()
        # Items not started are dropped; the (at most workers - 1) running ones end on their
        # own, without holding up the error.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


async def map_in_tasks(
    fn: Callable[[T], Awaitable[R]], items: Sequence[T], workers: int, progress: Progress | None
) -> list[R]:
    """Async twin of :func:`map_in_threads`: ``workers`` tasks take the items in order; the
    first failure cancels the others and is raised. One worker runs in the caller's task."""
    results: list[Any] = [None] * len(items)
    pending = list(enumerate(items))[::-1]  # popped from the end: in input order

    async def work() -> None:
        while pending:
            i, item = pending.pop()
            try:
                results[i] = await fn(item)
            except BaseException:
                pending.clear()  # no further item is started
                raise
            if progress is not None:
                progress(len(results[i]))

    if min(workers, len(items)) <= 1:
        await work()
    else:
        tasks = [asyncio.ensure_future(work()) for _ in range(min(workers, len(items)))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    return results


@contextmanager
def progress_bar(show: bool, total: int) -> Iterator[Progress | None]:
    """A tqdm bar over ``total`` texts as a ``progress`` callback (``None`` when not shown).
    tqdm is optional: asking for a bar without it says so."""
    if not show:
        yield None
        return
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # optional, no stubs
    except ImportError as exc:
        raise ImportError("show_progress_bar=True needs tqdm: pip install tqdm") from exc
    with tqdm(total=total, desc="Embedding", unit="text") as bar:
        yield bar.update


@dataclass(slots=True, eq=False)
class Embedder:
    """All an adapter instance holds: options, the clients that carry them, its error hook.
    ``Embedder(clients, EmbeddingOptions("BAAI/bge-m3")).embed_texts(["a"])``."""

    clients: Clients
    options: EmbeddingOptions
    errors: ErrorHook | None = None

    def embed_texts(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> list[list[float]]:
        """Vectors of ``texts`` in order (every text checked first), ``options.max_concurrency``
        batches at once within ``options.deadline``; ``progress`` is told each batch's size as it
        finishes. If a batch fails, no further one is sent and its error is raised."""
        with translating(self.errors):
            plan = self._plan(texts)
            nested = map_in_threads(self._send, plan, self.options.max_concurrency, progress)
        return [vector for batch in nested for vector in batch]

    async def aembed_texts(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> list[list[float]]:
        """Async twin of :meth:`embed_texts` (tasks; the first failure cancels the rest)."""
        with translating(self.errors):
            plan = self._plan(texts)
            nested = await map_in_tasks(self._asend, plan, self.options.max_concurrency, progress)
        return [vector for batch in nested for vector in batch]

    def embed_text(self, text: str) -> list[float]:
        """Embed one text (sent as ``input: "<text>"``)."""
        with translating(self.errors):
            deadline = transport.deadline_in(self.options.deadline)
            return self._send((self.options.body(check_text(text)), 1, deadline))[0]

    async def aembed_text(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_text`."""
        with translating(self.errors):
            deadline = transport.deadline_in(self.options.deadline)
            return (await self._asend((self.options.body(check_text(text)), 1, deadline)))[0]

    def _plan(self, texts: object) -> list[_Batch]:
        """Every text checked, then one request per batch."""
        chunks = batches(check_texts(texts), self.options.chunk_size)
        deadline = transport.deadline_in(self.options.deadline)
        return [(self.options.body(chunk), len(chunk), deadline) for chunk in chunks]

    def _send(self, batch: _Batch) -> list[list[float]]:
        body, count, deadline = batch
        request = transport.Request("POST", "/embeddings", body=body, deadline=deadline)
        meter = self._meter(body)  # None unless track_usage is on
        with meter or _UNMETERED:
            answer = transport.send_json(self.clients, request)
            if meter is not None:
                meter.settle(self._usage(body, answer))
        return parse_embeddings(answer, count, dimensions=self.options.dimensions)

    async def _asend(self, batch: _Batch) -> list[list[float]]:
        body, count, deadline = batch
        request = transport.Request("POST", "/embeddings", body=body, deadline=deadline)
        meter = self._meter(body)
        with meter or _UNMETERED:
            answer = await transport.asend_json(self.clients, request)
            if meter is not None:
                meter.settle(self._usage(body, answer))
        return parse_embeddings(answer, count, dimensions=self.options.dimensions)

    def _meter(self, body: JSONDict) -> usage.Meter | None:
        """The request's hold under track_usage: its input tokens, estimated and held larger by
        ``usage.ESTIMATE_MARGIN``; raises ``BudgetExceededError`` when a budget refuses it."""
        if not usage.watching():
            return None
        model = body["model"]
        if not usage.budgeted():
            return usage.open_meter(model, None)
        held = math.ceil(self._input_tokens(body) * usage.ESTIMATE_MARGIN)
        return usage.open_meter(model, usage.UsageRecord(model, 0, prompt_tokens=held))

    def _input_tokens(self, body: JSONDict) -> int:
        texts = body["input"]
        counter = counter_for(self.clients.settings.base_url, body["model"])
        return sum(counter.count_text(t) for t in ([texts] if isinstance(texts, str) else texts))

    def _usage(self, body: JSONDict, answer: JSONDict) -> usage.UsageRecord:
        """What an answer used: its ``usage``, else an estimate of the input (flagged)."""
        model, raw = body["model"], answer.get("usage")
        if not isinstance(raw, Mapping):
            prompt = self._input_tokens(body)
            return usage.UsageRecord(model, 1, prompt, 0, prompt, estimated=True)
        prompt = int(raw.get("prompt_tokens") or 0)
        total = int(raw.get("total_tokens") or prompt)
        cost = raw.get("cost")
        if not isinstance(cost, (int, float)) or isinstance(cost, bool):
            return usage.UsageRecord(model, 1, prompt, 0, total)
        return usage.UsageRecord(model, 1, prompt, 0, total, cost=float(cost))


def embed_texts(
    clients: Clients,
    options: EmbeddingOptions,
    texts: Sequence[str],
    progress: Progress | None = None,
) -> list[list[float]]:
    """:meth:`Embedder.embed_texts` without an adapter: the vectors of ``texts``, in order."""
    return Embedder(clients, options).embed_texts(texts, progress)


class EmbeddingSettings(Connection):
    """The spec's embeddings part: connection settings plus what every request shares. The
    model, batch-size and concurrency fields keep each framework's names, given by the class
    variables below (LlamaIndex: ``model_name``/``embed_batch_size``/``num_workers``)."""

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
        clients = Clients.of(self)
        return Embedder(clients, options, errors=self._error_hook())

    @property
    def embedder(self) -> Embedder:
        """The core embedder every request of this instance goes through."""
        return cast("Embedder", self._state)
