"""VCR set-up shared by every cassette-backed test: matching, scrubbing, where cassettes live.

Cassettes are recordings of real exchanges made by ``scripts/record``; only
:func:`scrub_request` and :func:`scrub_response` may change what is written, and only to
remove secrets, with one more rule for requests: a multipart body (an audio upload) is kept
as its fields, the file as its name, type, size and SHA-256 (:func:`multipart_summary`), since
matching needs no more and the bytes would only bloat the cassette. Replay matches on method,
path and the parsed JSON body (never scheme, host or port), so cassettes recorded against any
server replay against the default Runcrate URL.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
RECORDING_INFO = CASSETTES / "recording.json"

# What a scrubbed key becomes; deliberately not shaped like a real key.
PLACEHOLDER = "rc_live_<redacted>"
BEARER_PLACEHOLDER = "Bearer <redacted>"
SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "set-cookie",
)
KEY_PATTERN = re.compile(r"rc_live_[A-Za-z0-9_\-]+")
# A token is 8+ token characters not followed by "<", so "Bearer rc_live_<redacted>" is not one.
BEARER_PATTERN = re.compile(r"[Bb]earer\s+[A-Za-z0-9_.~+/=\-]{8,}(?![A-Za-z0-9_.~+/=\-<])")

# The model id the local llama.cpp server reports; the default when nothing says otherwise.
LOCAL_MODEL = "qwen2.5-coder-0.5b-instruct"


# ---------------------------------------------------------------------- scrubbing


def scrub_text(text: str) -> str:
    """``text`` with every ``rc_live_`` key and bearer token replaced by a placeholder."""
    text = BEARER_PATTERN.sub(BEARER_PLACEHOLDER, text)
    return KEY_PATTERN.sub(PLACEHOLDER, text)


def _scrub_headers(headers: Any) -> None:
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            del headers[name]
            continue
        value = headers[name]
        if isinstance(value, list):
            headers[name] = [scrub_text(str(v)) for v in value]
        elif isinstance(value, str):
            headers[name] = scrub_text(value)


def _scrub_body(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body  # binary (an image, a compressed body): no text key can hide in it
        scrubbed = scrub_text(text)
        return body if scrubbed == text else scrubbed.encode("utf-8")
    if isinstance(body, str):
        return scrub_text(body)
    return body


def multipart_summary(body: bytes, content_type: str) -> str | None:
    """A multipart body as canonical JSON: ``{"multipart": {field: value}}`` with each file as
    ``{"filename", "content_type", "bytes", "sha256"}``. The random boundary and the file's
    bytes are left out, so two uploads of the same fields and file compare equal. ``None``
    for a body that does not parse."""
    import email.parser
    import email.policy
    import hashlib

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return None
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            fields[str(name)] = {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "bytes": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        else:
            fields[str(name)] = payload.decode("utf-8", "replace")
    return json.dumps({"multipart": fields}, sort_keys=True)


def _content_type(headers: Any) -> str:
    for name in list(headers):
        if name.lower() == "content-type":
            value = headers[name]
            return str(value[0] if isinstance(value, list) else value)
    return ""


def scrub_request(request: Any) -> Any:
    """Remove keys from a request before it is written or matched (headers, URI, body), and
    keep a multipart body as its :func:`multipart_summary`.

    vcr runs this on a copy of every request, both when recording and when looking for a
    recorded answer, so both sides are compared scrubbed.
    """
    _scrub_headers(request.headers)
    request.uri = scrub_text(request.uri)
    body = request.body
    content_type = _content_type(request.headers)
    if isinstance(body, bytes) and content_type.startswith("multipart/form-data"):
        summary = multipart_summary(body, content_type)
        if summary is not None:
            body = summary
    if isinstance(body, (bytes, str)):
        request.body = _scrub_body(body)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Remove keys and cookies from a response before it is written."""
    _scrub_headers(response.get("headers") or {})
    body = response.get("body")
    if isinstance(body, dict) and "string" in body:
        body["string"] = _scrub_body(body["string"])
    return response


def find_secrets(text: str) -> list[str]:
    """Every bearer token or ``rc_live_`` key in ``text`` other than the placeholders."""
    # Neither pattern matches a placeholder: "<" cannot appear in a key or a token.
    found = [m.group(0) for m in KEY_PATTERN.finditer(text)]
    return found + [m.group(0) for m in BEARER_PATTERN.finditer(text)]


# ---------------------------------------------------------------------- matching


def _canonical_ids(body: Any) -> Any:
    """``body`` with tool-call ids replaced by their order of first appearance.

    Tool-call ids in a request are either the server's (recorded, so stable in replay) or
    made by the caller, and those may be random: langchain-core's ``tool_example_to_messages``
    gives few-shot tool calls uuid4 ids. Comparing them by position keeps the check that an
    assistant's tool call and the tool message answering it are linked, without the value.
    """
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    names: dict[str, str] = {}

    def alias(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return names.setdefault(value, f"<tool-call-id-{len(names)}>")

    messages = []
    for message in body["messages"]:
        if isinstance(message, dict):
            message = dict(message)
            if isinstance(message.get("tool_calls"), list):
                message["tool_calls"] = [
                    {**call, "id": alias(call.get("id"))} if isinstance(call, dict) else call
                    for call in message["tool_calls"]
                ]
            if "tool_call_id" in message:
                message["tool_call_id"] = alias(message["tool_call_id"])
        messages.append(message)
    return {**body, "messages": messages}


def _json_body(request: Any) -> Any:
    raw = request.body
    if raw is None or raw == b"":
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return _canonical_ids(json.loads(raw))
    except (TypeError, ValueError):
        return raw


def json_body_matcher(r1: Any, r2: Any) -> None:
    """Match on the parsed JSON body: key order, whitespace and client-made ids don't count."""
    a, b = _json_body(r1), _json_body(r2)
    if a != b:
        raise AssertionError(f"JSON bodies differ: {a!r} != {b!r}")


# ---------------------------------------------------------------------- serializing


# Our own safe loader and dumper rather than vcr's: vcrpy 7 loads cassettes with PyYAML's full
# (unsafe) loader and has no safe dumper to build on, vcrpy 8 has both under private names.
# Cassettes hold only plain YAML (mappings, lists, strings, numbers, and !!binary for bytes),
# so the safe pair reads and writes every one of them, on every vcrpy version we allow.
try:  # libyaml's, when PyYAML was built with it (as vcr does)
    from yaml import CSafeDumper as _SafeDumper
    from yaml import CSafeLoader as _SafeLoader
except ImportError:
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]  # same interface
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]  # same interface


class _ReadableDumper(_SafeDumper):
    """A safe cassette dumper writing multi-line strings (SSE streams) as blocks."""


def _represent_str(dumper: Any, data: str) -> Any:
    # The emitter falls back to a quoted scalar whenever a block cannot hold the text
    # exactly (trailing spaces, control characters), so this never changes what loads.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_tuple(dumper: Any, data: tuple[Any, ...]) -> Any:
    # The safe dumper has no tuple; vcr's request/response dicts may hold one. A list reads
    # back the same way to vcr (it only iterates).
    return dumper.represent_list(list(data))


_ReadableDumper.add_representer(str, _represent_str)
_ReadableDumper.add_representer(tuple, _represent_tuple)


class ReadableYamlSerializer:
    """vcr's ``yaml`` serializer made safe both ways, with streams readable line by line."""

    @staticmethod
    def deserialize(cassette_string: str) -> Any:
        return yaml.load(cassette_string, Loader=_SafeLoader)

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        return str(yaml.dump(cassette_dict, Dumper=_ReadableDumper, allow_unicode=True, width=100))


# ---------------------------------------------------------------------- configuration


def vcr_config() -> dict[str, Any]:
    """pytest-recording's configuration: match method+path+JSON body, scrub before writing.

    Outside ``scripts/record`` the record mode is pinned to ``none``, whatever
    ``--record-mode`` says: a replay can never reach a server or rewrite a cassette, and
    recording needs the settings the script exports. While recording, ``--record-mode``
    (set by the script) decides.
    """
    config: dict[str, Any] = {
        "match_on": ("method", "path", "json_body"),
        "filter_headers": list(SECRET_HEADERS),
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "serializer": "yaml",
    }
    if not recording():
        config["record_mode"] = "none"
    return config


def recording() -> bool:
    """True while ``scripts/record`` runs."""
    return os.environ.get("RUNCRATE_RECORDING") == "1"


def recorded_info() -> dict[str, Any]:
    """What ``scripts/record`` wrote about the recording (models, server, dates)."""
    if RECORDING_INFO.exists():
        data: dict[str, Any] = json.loads(RECORDING_INFO.read_text())
        return data
    return {}


def setting(name: str, default: str) -> str:
    """A recording setting: from the environment while recording, else what was recorded."""
    if recording():
        return os.environ.get(name) or default
    return str(recorded_info().get(name) or default)


def optional_setting(name: str) -> str | None:
    """Like :func:`setting` for settings that may be absent (``RUNCRATE_TEST_VISION_MODEL``)."""
    value = setting(name, "")
    return value or None


def base_url(kind: str = "chat") -> str | None:
    """Where to send ``kind`` ("chat", "reasoning", "embeddings", "media") requests.

    While recording: the server given to ``scripts/record``. In replay: ``None``, so the
    adapters use their default (``RUNCRATE_BASE_URL`` unset: https://api.runcrate.ai/v1) and
    the cassette answers.
    """
    if not recording():
        return None
    env = {
        "chat": "RUNCRATE_BASE_URL",
        "reasoning": "RUNCRATE_REASONING_BASE_URL",
        "embeddings": "RUNCRATE_EMBEDDINGS_BASE_URL",
        "media": "RUNCRATE_MEDIA_BASE_URL",
    }[kind]
    return os.environ.get(env) or os.environ.get("RUNCRATE_BASE_URL") or None


def billing_url() -> str | None:
    """Where billing requests go: while recording, ``RUNCRATE_BILLING_URL`` (``scripts/record
    --local`` points it at the stand-in ledger of ``../shared/local-media``); in replay,
    ``None``, so :class:`RuncrateBilling` uses Runcrate's billing URL and the cassette answers."""
    if not recording():
        return None
    return os.environ.get("RUNCRATE_BILLING_URL") or None


def chat_model() -> str:
    return setting("RUNCRATE_TEST_MODEL", LOCAL_MODEL)


def reasoning_model() -> str:
    return setting("RUNCRATE_TEST_REASONING_MODEL", chat_model())


def embedding_model() -> str:
    return setting("RUNCRATE_TEST_EMBEDDING_MODEL", chat_model())


def override_model() -> str:
    return setting("RUNCRATE_TEST_OVERRIDE_MODEL", reasoning_model())


def vision_model() -> str | None:
    return optional_setting("RUNCRATE_TEST_VISION_MODEL")


LOCAL_SERVER_PREFIX = "local llama.cpp"
#: The folder of the media cassettes (tests/recorded/media -> cassettes/media).
MEDIA_FOLDER = "media"


def recorded_on_local_server() -> bool:
    """True when the cassettes come (or are coming) from ``scripts/record --local``."""
    return setting("RUNCRATE_RECORDED_SERVER", "").startswith(LOCAL_SERVER_PREFIX)


def note_recorded_folders(folders: set[str]) -> None:
    """Stamp ``recording.json`` with the date and settings each cassette folder was recorded
    with (called at the end of a recording session)."""
    if not folders:
        return
    info = recorded_info()
    stamp = {
        "recorded_on": datetime.date.today().isoformat(),
        "server": os.environ.get("RUNCRATE_RECORDED_SERVER", ""),
        **{k: v for k, v in info.items() if k.startswith("RUNCRATE_TEST_")},
    }
    per_folder = info.setdefault("folders", {})
    for folder in sorted(folders):
        if folder == "billing":  # the billing API has its own server and no models
            per_folder[folder] = {
                "recorded_on": stamp["recorded_on"],
                "server": os.environ.get("RUNCRATE_RECORDED_BILLING_SERVER")
                or os.environ.get("RUNCRATE_BILLING_URL", "https://runcrate.ai/api/v1"),
            }
            continue
        if folder == MEDIA_FOLDER:
            # The media endpoints' own server, and their default (catalog) model ids.
            per_folder[folder] = {
                "recorded_on": stamp["recorded_on"],
                "server": os.environ.get("RUNCRATE_RECORDED_MEDIA_SERVER")
                or os.environ.get("RUNCRATE_MEDIA_BASE_URL")
                or stamp["server"],
            }
            continue
        per_folder[folder] = stamp
    RECORDING_INFO.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
