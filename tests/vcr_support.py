"""VCR set-up shared by every cassette-backed test: matching, scrubbing, where cassettes live.

Cassettes are recordings of real exchanges; only :func:`scrub_request` and
:func:`scrub_response` may change what is written, and only to remove secrets.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
RECORDING_INFO = CASSETTES / "recording.json"

# What a scrubbed secret becomes; deliberately not shaped like a real key.
PLACEHOLDER = "rc_live_<redacted>"
SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "cookie", "set-cookie",
                  "proxy-authorization")
KEY_PATTERN = re.compile(r"rc_live_[A-Za-z0-9_\-]+")
BEARER_PATTERN = re.compile(r"[Bb]earer\s+[A-Za-z0-9_.\-]{8,}")


def _scrub_text(text: str) -> str:
    return KEY_PATTERN.sub(lambda m: PLACEHOLDER if m.group(0) != PLACEHOLDER else m.group(0),
                           text)


def _scrub_headers(headers: dict[str, Any]) -> dict[str, Any]:
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            del headers[name]
        else:
            value = headers[name]
            if isinstance(value, list):
                headers[name] = [_scrub_text(str(v)) for v in value]
            elif isinstance(value, str):
                headers[name] = _scrub_text(value)
    return headers


def _scrub_body(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            return _scrub_text(body.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        return _scrub_text(body)
    return body


def scrub_request(request: Any) -> Any:
    """Remove keys from a request before it is written (headers, URI, body)."""
    _scrub_headers(request.headers)
    request.uri = _scrub_text(request.uri)
    request.body = _scrub_body(request.body)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Remove keys and cookies from a response before it is written."""
    _scrub_headers(response.get("headers", {}))
    body = response.get("body", {})
    if isinstance(body, dict) and "string" in body:
        body["string"] = _scrub_body(body["string"])
    return response


def _json_body(request: Any) -> Any:
    raw = request.body
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def json_body_matcher(r1: Any, r2: Any) -> None:
    """Match on the parsed JSON body, so key order and whitespace do not matter."""
    a, b = _json_body(r1), _json_body(r2)
    if a != b:
        raise AssertionError(f"JSON bodies differ: {a!r} != {b!r}")


def vcr_config() -> dict[str, Any]:
    """pytest-recording's configuration: replay by default, match method+path+JSON body."""
    return {
        "record_mode": "none",
        "match_on": ("method", "path", "json_body"),
        "filter_headers": list(SECRET_HEADERS),
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "serializer": "yaml",
    }


def recording() -> bool:
    """True while ``scripts/record`` runs (record mode other than none)."""
    return os.environ.get("RUNCRATE_RECORDING") == "1"


def recorded_info() -> dict[str, Any]:
    """What ``scripts/record`` wrote about the last recording (models, server)."""
    if RECORDING_INFO.exists():
        data: dict[str, Any] = json.loads(RECORDING_INFO.read_text())
        return data
    return {}


def setting(name: str, default: str) -> str:
    """A recording setting: from the environment while recording, else what was recorded."""
    if recording():
        return os.environ.get(name) or default
    return str(recorded_info().get(name) or default)
