"""Chat answers: a JSON completion parsed, or a stream's chunks folded, into one
:class:`Completion` both adapters read (they never see raw chunks). Nothing here does I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..net.headers import RateLimitState
from .params import is_int

# errors imports openai: it is imported only when one is raised, to keep imports light.

JSONDict = dict[str, Any]
_HEAD = ("id", "model", "created", "system_fingerprint")  # a completion's (and chunk's) header


@dataclass(slots=True)
class Usage:
    """Token counts; the details and ``cost`` (the server's, in USD) are ``None`` if not sent."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    cost: float | None = None


def parse_usage(data: object) -> Usage | None:
    """Usage from an OpenAI ``usage`` object (tolerant of missing fields)."""
    if not isinstance(data, Mapping):
        return None
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    total = int(data.get("total_tokens") or prompt + completion)
    cached = _detail(data.get("prompt_tokens_details"), "cached_tokens")
    reasoning = _detail(data.get("completion_tokens_details"), "reasoning_tokens")
    cost = data.get("cost")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        cost = None
    return Usage(prompt, completion, total, cached, reasoning, cost)


def _detail(details: object, name: str) -> Any:
    return details.get(name) if isinstance(details, Mapping) else None


@dataclass(slots=True)
class ToolCall:
    """One tool call; ``args`` is ``None`` and ``error`` says why when the JSON is broken."""

    id: str
    name: str
    arguments: str
    args: JSONDict | None
    error: str | None = None


def parse_arguments(text: str | None) -> tuple[JSONDict | None, str | None]:
    """Parse tool-call argument JSON: ``(args, None)`` or ``(None, reason)``. Empty means ``{}``."""
    if text is None or not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _function(raw: Mapping[str, Any]) -> tuple[Any, str]:
    """A tool call's (or a piece's) function name and argument text."""
    fn = raw.get("function") or {}
    arguments = fn.get("arguments")
    if isinstance(arguments, Mapping):  # some servers send an object, not a string
        arguments = json.dumps(arguments)
    return fn.get("name"), arguments or ""


def _tool_call(raw: Mapping[str, Any]) -> ToolCall:
    name, arguments = _function(raw)
    args, error = parse_arguments(arguments)
    return ToolCall(str(raw.get("id") or ""), str(name or ""), arguments, args, error)


def _text(content: object) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # a few servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return str(content)


@dataclass(slots=True)
class Choice:
    """One parsed choice of a chat completion."""

    index: int = 0
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    logprobs: Any = None
    parsed: Any = None  # the answer as the per-call response_format class, when one was given


@dataclass(slots=True)
class Completion:
    """A parsed chat completion (from one JSON answer, or folded from a stream)."""

    id: str | None
    model: str | None
    created: int | None
    system_fingerprint: str | None
    choices: list[Choice]
    usage: Usage | None
    raw: JSONDict | None = None
    rate_limit: RateLimitState | None = None  #: the key's latest X-RateLimit-* state, if any

    @property
    def choice(self) -> Choice:
        return self.choices[0]

    def parse_as(self, schema: type[BaseModel]) -> None:
        """Fill each choice's ``parsed`` from its JSON text (a refusal leaves it ``None``)."""
        for choice in self.choices:
            if not choice.refusal and choice.content is not None:
                choice.parsed = parse_structured(choice.content, schema)


def parse_structured(text: str | None, schema: type[Any] | None = None) -> Any:
    """A structured answer's JSON text as ``schema``'s instance (a JSON object when no class);
    else :class:`~runcrate_integrations.errors.StructuredOutputError` quoting the answer."""
    raw = (text or "").strip()
    try:
        return validate_structured(json.loads(raw), schema)
    except ValueError as exc:  # bad JSON, or pydantic's ValidationError
        from ..errors import StructuredOutputError

        what = schema.__name__ if schema is not None else "JSON object"
        raise StructuredOutputError(
            f"The model's structured answer is not a valid {what}: {exc}\nAnswer: {raw[:500]!r}"
        ) from None


def validate_structured(value: Any, schema: type[Any] | None = None) -> Any:
    """``value`` (decoded JSON) as ``schema``'s instance (a pydantic class, ``pydantic.v1``
    included), or the object itself when no class; ``ValueError`` when it does not fit."""
    if schema is None:
        if not isinstance(value, dict):
            raise ValueError(f"a JSON {type(value).__name__}, not an object")
        return value
    validate = getattr(schema, "model_validate", None) or schema.parse_obj  # pydantic.v1
    return validate(value)


def parse_completion(data: Mapping[str, Any]) -> Completion:
    """Parse a ``chat.completion`` body (ResponseFormatError without choices or messages)."""
    try:
        choices = _choice_messages(data)
    except ValueError as exc:
        from ..errors import ResponseFormatError

        raise ResponseFormatError(f"Runcrate returned an unusable chat completion: {exc}") from None
    parsed = [
        Choice(
            index=int(raw.get("index") or 0),
            content=_text(message.get("content")),
            reasoning_content=message.get("reasoning_content") or message.get("reasoning") or None,
            refusal=message.get("refusal"),
            tool_calls=[_tool_call(call) for call in message.get("tool_calls") or ()],
            finish_reason=raw.get("finish_reason"),
            logprobs=raw.get("logprobs"),
        )
        for raw, message in choices
    ]
    head = {key: data.get(key) for key in _HEAD}
    return Completion(**head, choices=parsed, usage=parse_usage(data.get("usage")), raw=dict(data))


def _choice_messages(data: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Each choice of a whole answer with its message; ``ValueError`` saying what is missing."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"no choices (keys: {sorted(data)}); nothing to return")
    pairs = []
    for raw in choices:
        message = raw.get("message") if isinstance(raw, Mapping) else None
        if not isinstance(message, Mapping):
            raise ValueError("a choice without a 'message' object")
        pairs.append((raw, message))
    return pairs


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call (``id``/``name`` once). ``index``: the call's place in the
    answer, not the wire's (some servers omit it), because LangChain merges chunks by it."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class ChunkDelta:
    """What one stream chunk added to one choice."""

    index: int
    content: str | None
    reasoning_content: str | None
    tool_calls: list[ToolCallDelta]
    finish_reason: str | None
    logprobs: Any
    refusal: str | None = None

    @property
    def empty(self) -> bool:
        """True for a delta that adds nothing to show (the opening role-only delta)."""
        shown = self.content or self.reasoning_content or self.tool_calls or self.refusal
        return not (shown or self.finish_reason or self.logprobs)


@dataclass(slots=True)
class _ToolCallState:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceState:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: list[_ToolCallState] = field(default_factory=list)
    places: dict[int | str, int] = field(default_factory=dict)  # wire index or id -> place
    last_call: int | None = None
    finish_reason: str | None = None
    logprobs: list[Any] = field(default_factory=list)
    blocks: dict[str, None] = field(default_factory=dict)  # kinds seen, in order (a set)

    def add_tool_call(self, raw: Mapping[str, Any]) -> ToolCallDelta:
        """Add a piece to its call: by ``index`` (OpenAI), else by ``id`` (servers sending calls
        whole; a new id is a new call), else the call before it (a delta with neither)."""
        index, call_id = raw.get("index"), str(raw["id"]) if raw.get("id") else None
        name, fragment = _function(raw)
        keys: list[int | str] = []  # the wire index first, then the id
        if is_int(index):
            keys.append(index)
        if call_id:
            keys.append(call_id)
        place = next((self.places[key] for key in keys if key in self.places), None)
        if place is None and not keys:
            place = self.last_call
        if place is None:
            place = len(self.tool_calls)
            self.tool_calls.append(_ToolCallState())
        for key in keys:
            self.places.setdefault(key, place)
        self.last_call = place
        call = self.tool_calls[place]
        # A server repeating the id or name on every delta must not have it counted twice:
        # the delta reports them only when they are new (LangChain concatenates names).
        new_id = call_id if call_id and not call.id else None
        new_name = name if name and not call.name else None
        if new_id:
            call.id = new_id
        if new_name:
            call.name = new_name
        if fragment:
            call.arguments.append(fragment)
        return ToolCallDelta(place, new_id, new_name, fragment)


@dataclass(slots=True)
class StreamFold:
    """Folds ``chat.completion.chunk`` dicts: :meth:`add` returns each chunk's deltas,
    :meth:`snapshot` the answer so far, :meth:`completion` the whole :class:`Completion`."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    system_fingerprint: str | None = None
    usage: Usage | None = None
    last_chunk: JSONDict | None = None
    _choices: dict[int, _ChoiceState] = field(default_factory=dict)

    def add(self, chunk: JSONDict) -> list[ChunkDelta]:
        """Record one chunk; return what it adds per choice (empty for a usage-only chunk)."""
        self.last_chunk = chunk
        if self.id is None:
            self.id = chunk.get("id")
            self.model = chunk.get("model")
            self.created = chunk.get("created")
        if fingerprint := chunk.get("system_fingerprint"):
            self.system_fingerprint = fingerprint
        if usage := chunk.get("usage"):
            self.usage = parse_usage(usage)
        return [self._add_choice(raw) for raw in chunk.get("choices") or ()]

    def _add_choice(self, raw: Mapping[str, Any]) -> ChunkDelta:
        index = raw.get("index") or 0
        state = self._choices.get(index) or self._choices.setdefault(index, _ChoiceState())
        delta = raw.get("delta") or {}
        if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
            state.reasoning.append(reasoning)
            state.blocks["reasoning"] = None
        if content := delta.get("content"):
            state.content.append(content)
            state.blocks["text"] = None
        if refusal := delta.get("refusal"):
            state.refusal.append(refusal)
        tool_deltas = [state.add_tool_call(call) for call in delta.get("tool_calls") or ()]
        if tool_deltas:
            state.blocks["tool_call"] = None
        if finish := raw.get("finish_reason"):
            state.finish_reason = finish
        if logprobs := raw.get("logprobs"):
            state.logprobs.append(logprobs)
        return ChunkDelta(index, content, reasoning, tool_deltas, finish, logprobs, refusal)

    @property
    def finished(self) -> bool:
        """True once every choice seen has a finish_reason."""
        return bool(self._choices) and all(c.finish_reason for c in self._choices.values())

    def received_text(self) -> str:
        """All the stream said so far, joined (what an estimate of its output tokens reads)."""
        parts: list[str] = []
        for state in self._choices.values():
            parts += state.content + state.reasoning + state.refusal
            for call in state.tool_calls:
                parts += [call.name, *call.arguments]
        return "".join(parts)

    def blocks(self, index: int = 0) -> list[str]:
        """A choice's kinds of content (reasoning, text, tool_call) in order of first arrival."""
        return list(self._choices[index].blocks) if index in self._choices else []

    def snapshot(self, index: int = 0) -> Choice:
        """One choice's answer so far (its tool calls' ``args`` are parsed only at the end)."""
        return self._choice(index, self._choices.get(index) or _ChoiceState(), final=False)

    def completion(self) -> Completion:
        """The folded answer; raises if the stream ended before a finish_reason arrived."""
        if not self.finished:
            from ..errors import StreamInterruptedError

            raise StreamInterruptedError(
                "The stream ended before the server finished the answer (no finish_reason); "
                "the partial answer was discarded."
            )
        choices = [self._choice(i, self._choices[i], final=True) for i in sorted(self._choices)]
        head = (self.id, self.model, self.created, self.system_fingerprint)
        return Completion(*head, choices, self.usage, raw=self.last_chunk)

    @staticmethod
    def _choice(index: int, st: _ChoiceState, *, final: bool) -> Choice:
        calls = [ToolCall(tc.id, tc.name, "".join(tc.arguments), None) for tc in st.tool_calls]
        if final:
            for call in calls:
                call.args, call.error = parse_arguments(call.arguments)
        logprobs = None
        if final and st.logprobs:
            parts = [p.get("content") or () for p in st.logprobs if isinstance(p, Mapping)]
            logprobs = {"content": [item for part in parts for item in part]}
        return Choice(
            index=index,
            content="".join(st.content),
            reasoning_content="".join(st.reasoning) or None,
            refusal="".join(st.refusal) or None,
            tool_calls=calls,
            finish_reason=st.finish_reason,
            logprobs=logprobs,
        )


def completion_as_chunk(data: Mapping[str, Any]) -> JSONDict:
    """A whole ``chat.completion`` (from a server that ignored ``stream: true``) as the one
    chunk of a stream; ``ValueError`` for a body that is not a chat completion."""
    out = []
    for raw, message in _choice_messages(data):
        delta = dict(message)
        if calls := message.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls)]
        entry = {"index": raw.get("index") or 0, "delta": delta}
        out.append(entry | {k: raw.get(k) for k in ("finish_reason", "logprobs")})
    chunk = {k: data.get(k) for k in _HEAD}
    return {**chunk, "choices": out, "usage": data.get("usage")}
