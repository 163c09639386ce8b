"""Chat requests for both frameworks: an instance's defaults and a call's ``**kwargs`` checked
and turned into the body of ``POST /chat/completions`` before anything is sent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from pydantic import BaseModel

from .. import usage
from ..config import check_deadline, check_timeout
from ..net.transport import Request, deadline_in
from .media import tool_media_to_user
from .params import check_call_names, check_not_secret, check_params, is_int

JSONDict = dict[str, Any]
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """Function names of OpenAI-format tools."""
    return [str(t.get("function", {}).get("name")) for t in tools]


def normalize_tool_choice(choice: Any, names: Sequence[str]) -> str | JSONDict | None:
    """Every tool_choice spelling users write as what the wire accepts: ``"any"`` and ``True``
    mean ``"required"``, a tool's name that tool; an unknown name raises ``ValueError``."""
    if choice is None or choice is False:
        return None
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
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


def _check_model(model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model must be a non-empty model id, e.g. 'deepseek/deepseek-v3.2'")
    return model


def strict_schema(schema: Mapping[str, Any]) -> JSONDict:
    """A copy of ``schema`` in OpenAI's strict subset, nested schemas included: every object
    closed (``additionalProperties: false``), every property required (optional ones nullable)."""
    out = dict(schema)
    properties = out.get("properties")
    if out.get("type") == "object" or isinstance(properties, Mapping):
        out["properties"] = properties if isinstance(properties, Mapping) else {}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    if isinstance(out.get("items"), Mapping):
        out["items"] = strict_schema(out["items"])
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_strict_part(part) for part in out[key]]
    for key in ("properties", "$defs", "definitions"):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: _strict_part(v) for k, v in out[key].items()}
    return out


def _strict_part(part: Any) -> Any:
    return strict_schema(part) if isinstance(part, Mapping) else part


def response_format_for(schema: Any, *, strict: bool | None = None) -> JSONDict:
    """The ``json_schema`` ``response_format`` for ``schema``: a pydantic class; an OpenAI spec
    (``{"name", "schema"}`` or the whole ``{"type": "json_schema", ...}``, sent as given); an
    OpenAI function (``{"name", "parameters"}``); or a JSON schema (named by its ``title``).
    ``strict``: ``True`` also makes a schema built here strict; ``None`` leaves the flag out."""
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
    """The JSON body of ``POST /chat/completions``, checked: ``None`` ``params`` are dropped and
    known ones range-checked; ``extra_body`` is merged last, unchecked."""
    _check_model(model)
    if not messages:
        raise ValueError("messages must not be empty: send at least one message")
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in ROLES:
            raise ValueError(
                f"message {i} has unknown role {role!r}; expected one of {sorted(ROLES)}"
            )
    body: JSONDict = {"model": model, "messages": list(messages)}
    body.update((key, value) for key, value in (params or {}).items() if value is not None)
    if "stop" in body and not body["stop"]:
        del body["stop"]  # [] or "": no stop sequences, not an empty list on the wire
    if body.get("top_logprobs") is not None:
        if body.get("logprobs") is False:
            raise ValueError("top_logprobs needs logprobs; drop logprobs=False or top_logprobs")
        body["logprobs"] = True  # the API rejects top_logprobs without it
    n = body.get("n")
    if stream and isinstance(n, int) and n > 1:
        raise ValueError("n > 1 cannot be streamed; use a non-streaming call for several choices")
    check_params(body)
    tool_list = [dict(t) for t in tools or ()]
    if tool_list:
        _check_json(tool_list, "a tool schema")
        body["tools"] = tool_list
        choice = normalize_tool_choice(tool_choice, tool_names(tool_list))
        if choice is not None:
            body["tool_choice"] = choice
    else:
        if tool_choice not in (None, False, "none", "auto"):
            raise ValueError(f"tool_choice={tool_choice!r} was given but no tools are bound")
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
class ChatRequest:
    """A checked request (``parse_as``: the answer's class; ``timeout``/``max_retries``: this
    call's, ``None`` for the instance's; ``deadline``: seconds the whole call may take)."""

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


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What every request of one model instance shares (``params``: set values only); checked."""

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    extra_body: Mapping[str, Any] | None = None
    stream_usage: bool = True
    deadline: float | None = None

    def __post_init__(self) -> None:
        _check_model(self.model)
        check_params(self.params)

    def request(
        self,
        messages: list[JSONDict],
        kwargs: Mapping[str, Any],
        stream: bool,
        accepts_images: Callable[[str], bool],
    ) -> ChatRequest:
        """The checked request for ``messages`` and a call's ``**kwargs`` over these defaults
        (a near miss like ``temprature`` raises ``ValueError``; other unknown names are sent)."""
        check_call_names(kwargs)
        call = dict(kwargs)  # what is left once the engine's controls are taken out: params
        model = call.pop("model", None)
        model = self.model if model is None else _check_model(model)
        tools = call.pop("tools", None)
        tool_choice = call.pop("tool_choice", None)
        extra_body = {**(self.extra_body or {}), **(call.pop("extra_body", None) or {})}
        headers = dict(call.pop("extra_headers", None) or {}) or None
        stream_usage = call.pop("stream_usage", None)
        timeout = check_timeout(call.pop("timeout", None))  # None: the instance's
        max_retries = call.pop("max_retries", None)  # None: the instance's
        if max_retries is not None and not (is_int(max_retries) and max_retries >= 0):
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        deadline = check_deadline(call.pop("deadline", None)) or self.deadline
        check_not_secret(call, "a call's keyword argument")
        params = {**self.params, **call} if call else self.params
        response_format = params.get("response_format")
        parse_as = response_format if is_schema_class(response_format) else None
        if parse_as is not None:
            params = {**params, "response_format": response_format_for(parse_as, strict=True)}
        elif response_format is not None and not isinstance(response_format, Mapping):
            raise ValueError(
                "response_format must be a dict such as {'type': 'json_object'} or a pydantic "
                f"class, got {type(response_format).__name__}"
            )
        stream_usage = self.stream_usage if stream_usage is None else stream_usage
        body = build_chat_body(
            model,
            tool_media_to_user(messages, lambda: accepts_images(model)),
            params,
            tools=tools,
            tool_choice=tool_choice,
            stream=stream,
            # Counted usage comes from the server: under a tracker a stream always asks for it.
            stream_usage=stream_usage or (stream and usage.watching()),
            extra_body=extra_body,
        )
        return ChatRequest(body, headers, timeout, parse_as, deadline, max_retries)
