"""Chat requests: a call's options checked and turned into the body of
``POST /chat/completions`` before anything is sent, the same for both frameworks.

* :class:`ChatOptions`: an instance's defaults (checked against Runcrate's ranges once);
* :func:`split_call`: a call's ``**kwargs`` into request parameters, tools, ``tool_choice``,
  ``extra_body``, ``extra_headers`` and the rest (a near miss of a known option is an error);
* :func:`build_chat_body`: the body, checked; :func:`response_format_for`: the one JSON-schema
  ``response_format`` builder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from pydantic import BaseModel

from ..config import check_deadline, check_timeout
from ..net.transport import Request, deadline_in
from .params import check_call_names, check_not_secret, check_params

JSONDict = dict[str, Any]
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
TOOL_CHOICE_STRINGS = frozenset({"auto", "none", "required"})


def tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """Function names of OpenAI-format tools."""
    return [str(t.get("function", {}).get("name")) for t in tools]


def normalize_tool_choice(choice: Any, names: Sequence[str]) -> str | JSONDict | None:
    """Map every tool_choice spelling users write to what the wire accepts.

    ``"any"`` and ``True`` mean "some tool must be called" (``"required"``); a tool's name means
    that tool. An unknown name raises ``ValueError`` listing the tools that are bound.
    """
    if choice is None or choice is False:
        return None
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str):
        if choice in TOOL_CHOICE_STRINGS:
            return choice
        if choice in names:
            return {"type": "function", "function": {"name": choice}}
        raise ValueError(
            f"tool_choice {choice!r} is neither 'auto', 'none', 'required', 'any' nor the name "
            f"of a bound tool (bound: {', '.join(names) or 'none'})"
        )
    if isinstance(choice, Mapping):
        name = choice.get("function", {}).get("name") if choice.get("type") == "function" else None
        if name is not None and name not in names:
            raise ValueError(f"tool_choice names {name!r}, which is not a bound tool")
        return dict(choice)
    raise ValueError(f"Unsupported tool_choice: {choice!r}")


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc


def strict_schema(schema: Mapping[str, Any]) -> JSONDict:
    """``schema`` in OpenAI's strict subset: every object closed (``additionalProperties:
    false``) with every property required (optional ones stay nullable), as strict tools and
    strict structured output need. A copy; nested schemas and ``$defs`` included."""
    out = dict(schema)
    properties = out.get("properties")
    if out.get("type") == "object" or isinstance(properties, Mapping):
        props = properties if isinstance(properties, Mapping) else {}
        out["properties"] = {k: _strict_part(v) for k, v in props.items()}
        out["required"] = list(props)
        out["additionalProperties"] = False
    if isinstance(out.get("items"), Mapping):
        out["items"] = strict_schema(out["items"])
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_strict_part(part) for part in out[key]]
    for key in ("$defs", "definitions"):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: _strict_part(v) for k, v in out[key].items()}
    return out


def _strict_part(part: Any) -> Any:
    return strict_schema(part) if isinstance(part, Mapping) else part


def response_format_for(schema: Any, *, strict: bool | None = None) -> JSONDict:
    """The ``json_schema`` ``response_format`` asking for JSON that matches ``schema``: the one
    builder both frameworks use.

    ``schema``: a pydantic class; a spec already in OpenAI's shape (``{"name", "schema",
    "strict"?}`` or the whole ``{"type": "json_schema", "json_schema": {...}}``), sent as
    given; an OpenAI function (``{"name", "parameters", "description"?}``, what the frameworks'
    own converters make of a TypedDict or a function); or a plain JSON schema (named by its
    ``title``). ``strict=True`` rewrites a schema built here into OpenAI's strict subset and
    marks the spec strict; ``False`` marks it not strict; ``None`` leaves a given spec alone.
    """
    spec: JSONDict
    given = False  # a spec the caller wrote: its schema is sent untouched
    if is_schema_class(schema):
        spec = {"name": schema.__name__, "schema": schema.model_json_schema()}
        if schema.__doc__ and schema.__doc__.strip():
            spec["description"] = " ".join(schema.__doc__.split())
    elif not isinstance(schema, Mapping):
        raise ValueError(
            f"cannot build a JSON schema from {type(schema).__name__}: give a pydantic class, a "
            "JSON schema or a json_schema spec"
        )
    elif schema.get("type") == "json_schema" and isinstance(schema.get("json_schema"), Mapping):
        spec, given = dict(schema["json_schema"]), True
    elif "name" in schema and isinstance(schema.get("schema"), Mapping):
        spec, given = dict(schema), True
    elif "name" in schema and isinstance(schema.get("parameters"), Mapping):
        spec = {"name": schema["name"], "schema": dict(schema["parameters"])}
        if schema.get("description"):
            spec["description"] = schema["description"]
    else:
        spec = {"name": str(schema.get("title") or "output"), "schema": dict(schema)}
    spec["name"] = re.sub(r"[^a-zA-Z0-9_-]", "_", str(spec["name"]))[:64] or "output"
    if strict and not given:
        spec["schema"] = strict_schema(spec["schema"])
    if strict is not None:
        spec["strict"] = strict
    _check_json(spec, "the JSON schema")
    return {"type": "json_schema", "json_schema": spec}


def is_schema_class(value: object) -> TypeGuard[type[BaseModel]]:
    """True for a pydantic model class (what a per-call ``response_format`` may be)."""
    return isinstance(value, type) and issubclass(value, BaseModel)


def _normalize(body: JSONDict, stream: bool) -> None:
    """The one reading of options that could mean two things on the wire."""
    if "stop" in body and not body["stop"]:
        del body["stop"]  # [] or "": no stop sequences, not an empty list on the wire
    if body.get("top_logprobs") is not None:
        if body.get("logprobs") is False:
            raise ValueError("top_logprobs needs logprobs; drop logprobs=False or top_logprobs")
        body["logprobs"] = True  # the API rejects top_logprobs without it
    n = body.get("n")
    if stream and isinstance(n, int) and n > 1:
        raise ValueError("n > 1 cannot be streamed; use a non-streaming call for several choices")


def build_chat_body(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
    stream_usage: bool = True,
    extra_body: Mapping[str, Any] | None = None,
) -> JSONDict:
    """The JSON body of ``POST /chat/completions``, checked before anything is sent.

    ``params`` holds sampling and other top-level fields; ``None`` values are dropped and known
    ones are range-checked. ``extra_body`` is merged last, unchecked, for server-specific fields.
    """
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
    if not messages:
        raise ValueError("messages must not be empty: send at least one message")
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in ROLES:
            raise ValueError(
                f"message {i} has unknown role {role!r}; expected one of {sorted(ROLES)}"
            )
    body: JSONDict = {"model": model, "messages": list(messages)}
    if params:
        for key, value in params.items():
            if value is not None:
                body[key] = value
        _normalize(body, stream)
        check_params(body)
    if tools:
        tool_list = [dict(t) for t in tools]
        _check_json(tool_list, "a tool schema")
        body["tools"] = tool_list
        choice = normalize_tool_choice(tool_choice, tool_names(tool_list))
        if choice is not None:
            body["tool_choice"] = choice
    elif tool_choice not in (None, False, "none", "auto"):
        raise ValueError(f"tool_choice={tool_choice!r} was given but no tools are bound")
    if not tools:
        body.pop("parallel_tool_calls", None)
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    if extra_body:
        body.update(extra_body)
    return body


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What every request of one model instance shares; checked when built."""

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    extra_body: Mapping[str, Any] | None = None
    stream_usage: bool = True
    deadline: float | None = None

    @classmethod
    def build(
        cls,
        model: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_params: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream_usage: bool = True,
        deadline: float | None = None,
    ) -> ChatOptions:
        """Defaults from an adapter's fields: ``params`` (its named fields) then
        ``extra_params`` (``model_kwargs`` / ``additional_kwargs``); ``None`` means unset."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
        check_not_secret(extra_params or (), "a parameter given as an extra request field")
        merged = {**(params or {}), **(extra_params or {})}
        merged = {k: v for k, v in merged.items() if v is not None}
        check_params(merged)
        check_deadline(deadline)
        extra = dict(extra_body) if extra_body else None
        return cls(model, merged, extra, stream_usage, deadline)


@dataclass(slots=True)
class CallArgs:
    """One call's ``**kwargs``, sorted: what goes in the body and what changes how it is sent."""

    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    tools: list[JSONDict] | None = None
    tool_choice: Any = None
    extra_body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    stream_usage: bool | None = None
    timeout: Any = None
    max_retries: int | None = None
    deadline: float | None = None


def split_call(kwargs: Mapping[str, Any]) -> CallArgs:
    """Sort a call's keyword arguments. A near miss of a known option (``temprature``) raises
    ``ValueError`` before anything is sent; other unknown names go to the body as they are."""
    check_call_names(kwargs)
    args = CallArgs()
    for name, value in kwargs.items():
        if name == "model":
            args.model = value
        elif name == "tools":
            args.tools = list(value) if value else None
        elif name == "tool_choice":
            args.tool_choice = value
        elif name == "extra_body":
            args.extra_body = value
        elif name == "extra_headers":
            args.headers = value
        elif name == "stream_usage":
            args.stream_usage = value
        elif name == "timeout":
            args.timeout = check_timeout(value)  # None: the instance's timeout
        elif name == "max_retries":
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"max_retries must be an integer >= 0, got {value!r}")
            args.max_retries = value  # None: the instance's
        elif name == "deadline":
            args.deadline = check_deadline(value)
        else:
            args.params[name] = value
    check_not_secret(args.params, "a call's keyword argument")
    if args.model is not None and (not isinstance(args.model, str) or not args.model.strip()):
        raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
    return args


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked request, ready to send (``parse_as``: the class the answer is parsed into;
    ``timeout`` / ``max_retries``: this call's, ``None`` for the instance's; ``deadline``:
    seconds the whole call, retries and stream included, may take)."""

    body: JSONDict
    headers: Mapping[str, str] | None = None
    timeout: Any = None
    parse_as: type[BaseModel] | None = None
    deadline: float | None = None
    max_retries: int | None = None

    def send(self, path: str) -> Request:
        """The transport's request; the deadline clock starts now."""
        return Request(
            "POST",
            path,
            body=self.body,
            headers=self.headers,
            stream=bool(self.body.get("stream")),
            timeout=self.timeout,
            retries=self.max_retries,
            deadline=deadline_in(self.deadline),
        )
