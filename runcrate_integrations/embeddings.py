"""``POST /embeddings``: request bodies, answer parsing and batching, shared by both adapters.

:class:`EmbeddingOptions` is built once per adapter instance; it checks everything a server
would reject (and a few things it would silently get wrong) before any request is sent, and
precomputes the constant part of the body. :func:`embed_texts` / :func:`aembed_texts` split
the inputs into batches, send them through :mod:`runcrate_integrations.transport` (so retries
and typed errors come from the openai client) and return the vectors in input order.
:class:`Embedder` bundles options and clients: it is all an adapter instance needs to hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from . import transport
from .clients import Clients, ClientSettings
from .settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from .transport import ErrorHook, translating

if TYPE_CHECKING:
    import openai

JSONDict = dict[str, Any]
EMBEDDINGS_PATH = "/embeddings"
ENCODING_FORMATS = ("float", "base64")
# Inputs per request. With ~1k-token chunks (LangChain's and LlamaIndex's default splitters)
# 256 inputs stay under OpenAI's 300k-token per-request cap, which compatible servers copy.
DEFAULT_BATCH_SIZE = 256
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
    _tail: JSONDict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_model(self.model)
        _check_dimensions(self.dimensions)
        _check_encoding(self.encoding_format)
        _check_batch_size(self.chunk_size, "chunk_size")
        _check_extra_body(self.extra_body)
        # Frozen dataclass: the precomputed constant part of every body is set once, here.
        object.__setattr__(
            self, "_tail", _tail(self.dimensions, self.encoding_format, self.extra_body)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__ on unpickling so _tail is recomputed (and re-checked).
        args = (self.model, self.dimensions, self.encoding_format, self.chunk_size, self.extra_body)
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
        raise _format_error(
            f"the /embeddings answer has no 'data' list (keys: {sorted(data)})"
        )
    if len(items) != expected:
        raise _format_error(
            f"sent {expected} input(s) to /embeddings but got {len(items)} vector(s) back"
        )
    out: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _format_error(
                f"data[{position}] of the /embeddings answer is not an object"
            )
        # Servers that omit the index answer in input order.
        index = item.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < expected:
            raise _format_error(
                f"data[{position}] has index {index!r}, outside 0..{expected - 1}"
            )
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
    client: openai.OpenAI, options: EmbeddingOptions, texts: Sequence[str]
) -> list[list[float]]:
    """Embed ``texts`` in batches of ``options.chunk_size``; vectors in input order.

    Every text is checked before the first request; an empty list sends nothing.
    """
    vectors: list[list[float]] = []
    for body, count in _plan(options, texts):
        answer = transport.post_json(client, EMBEDDINGS_PATH, body)
        vectors += parse_embeddings(answer, count, dimensions=options.dimensions)
    return vectors


async def aembed_texts(
    client: openai.AsyncOpenAI, options: EmbeddingOptions, texts: Sequence[str]
) -> list[list[float]]:
    """Async twin of :func:`embed_texts` (batches are sent one after another)."""
    vectors: list[list[float]] = []
    for body, count in _plan(options, texts):
        answer = await transport.apost_json(client, EMBEDDINGS_PATH, body)
        vectors += parse_embeddings(answer, count, dimensions=options.dimensions)
    return vectors


def embed_text(client: openai.OpenAI, options: EmbeddingOptions, text: str) -> list[float]:
    """Embed one text (sent as ``input: "<text>"``)."""
    answer = transport.post_json(client, EMBEDDINGS_PATH, options.body(check_text(text)))
    return parse_embeddings(answer, 1, dimensions=options.dimensions)[0]


async def aembed_text(
    client: openai.AsyncOpenAI, options: EmbeddingOptions, text: str
) -> list[float]:
    """Async twin of :func:`embed_text`."""
    answer = await transport.apost_json(client, EMBEDDINGS_PATH, options.body(check_text(text)))
    return parse_embeddings(answer, 1, dimensions=options.dimensions)[0]


# ---------------------------------------------------------------------------- per instance


class Embedder:
    """Options plus the clients that carry them; what an adapter instance holds.

    Example::

        emb = Embedder.configure("BAAI/bge-m3", api_key="rc_live_...")
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

    @classmethod
    def configure(
        cls,
        model: str,
        *,
        api_key: Any = None,
        base_url: str | None = None,
        timeout: Any = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        dimensions: int | None = None,
        encoding_format: str = "float",
        chunk_size: int = DEFAULT_BATCH_SIZE,
        extra_body: Mapping[str, Any] | None = None,
        http_client: Any = None,
        http_async_client: Any = None,
        errors: ErrorHook | None = None,
    ) -> Embedder:
        """Check options and resolve settings from an adapter's fields, in one step."""
        options = EmbeddingOptions(
            model,
            dimensions=dimensions,
            encoding_format=encoding_format,
            chunk_size=chunk_size,
            extra_body=extra_body,
        )
        settings = ClientSettings.resolve(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        clients = Clients(settings, http_client=http_client, http_async_client=http_async_client)
        return cls(clients, options, errors=errors)

    # Configuration plus shared pools: copies share it; pickling rebuilds it (see Clients).
    def __deepcopy__(self, memo: dict[int, Any]) -> Embedder:
        return self

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        with translating(self.errors):
            return embed_texts(self.clients.client(), self.options, texts)

    async def aembed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        with translating(self.errors):
            return await aembed_texts(self.clients.aclient(), self.options, texts)

    def embed_text(self, text: str) -> list[float]:
        with translating(self.errors):
            return embed_text(self.clients.client(), self.options, text)

    async def aembed_text(self, text: str) -> list[float]:
        with translating(self.errors):
            return await aembed_text(self.clients.aclient(), self.options, text)
