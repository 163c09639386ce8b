"""Cassettes hold no secrets, and the scrub hooks are what guarantees it.

``test_no_cassette_holds_a_secret`` reads every file under ``cassettes/``; the other tests
prove each kind of secret is removed by :mod:`tests.vcr_support` before anything is written,
the last one through a real vcr recording of a mock exchange.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
import vcr
import yaml
from vcr.request import Request

from tests import vcr_support
from tests.vcr_support import PLACEHOLDER, scrub_request, scrub_response

KEY = "rc_live_Ab3_real-looking_key_9876"
TOKEN = "sk-proj-AbCdEf0123456789"


def _cassette_files() -> list[Path]:
    return sorted(p for p in vcr_support.CASSETTES.rglob("*") if p.is_file())


def test_cassettes_exist() -> None:
    cassettes = [p for p in _cassette_files() if p.suffix == ".yaml"]
    assert cassettes, "no cassettes under cassettes/; record them with scripts/record"


@pytest.mark.parametrize(
    "path", _cassette_files(), ids=lambda p: str(p.relative_to(vcr_support.CASSETTES))
)
def test_no_cassette_holds_a_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert vcr_support.find_secrets(text) == [], f"{path} holds a key or bearer token"
    if path.suffix != ".yaml":
        return
    data = yaml.safe_load(text)
    for interaction in data["interactions"]:
        for part in ("request", "response"):
            names = {h.lower() for h in interaction[part].get("headers", {})}
            leaked = names & set(vcr_support.SECRET_HEADERS)
            assert not leaked, f"{path}: {part} header(s) {sorted(leaked)} were recorded"


def test_find_secrets_accepts_only_the_placeholders() -> None:
    clean = f"key {PLACEHOLDER}, header {vcr_support.BEARER_PLACEHOLDER}"
    assert vcr_support.find_secrets(clean) == []
    assert vcr_support.find_secrets(f"x {KEY} y") == [KEY]
    assert vcr_support.find_secrets(f"Authorization: Bearer {TOKEN}") == [f"Bearer {TOKEN}"]


def _request(**headers: Any) -> Request:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"my key {KEY}"}]})
    return Request("POST", f"https://api.example.test/v1/chat?api_key={KEY}", body, headers)


@pytest.mark.parametrize(
    "header",
    ["Authorization", "authorization", "Proxy-Authorization", "api-key", "X-Api-Key", "Cookie"],
)
def test_scrub_request_drops_secret_headers(header: str) -> None:
    request = scrub_request(_request(**{header: f"Bearer {KEY}", "User-Agent": "ua"}))
    assert header not in request.headers
    assert dict(request.headers) == {"User-Agent": "ua"}


def test_scrub_request_redacts_keys_and_tokens_in_other_headers() -> None:
    request = scrub_request(_request(**{"X-Forwarded": KEY, "X-Auth-Echo": f"Bearer {TOKEN}"}))
    assert request.headers["X-Forwarded"] == PLACEHOLDER
    assert request.headers["X-Auth-Echo"] == vcr_support.BEARER_PLACEHOLDER


def test_scrub_request_redacts_keys_in_uri_and_body() -> None:
    request = scrub_request(_request())
    assert request.uri == f"https://api.example.test/v1/chat?api_key={PLACEHOLDER}"
    assert json.loads(request.body)["messages"][0]["content"] == f"my key {PLACEHOLDER}"


def test_scrub_request_leaves_binary_bodies_alone() -> None:
    request = Request("POST", "https://h/v1/x", b"\xff\xfe\x00binary", {})
    assert scrub_request(request).body == b"\xff\xfe\x00binary"


def test_scrub_response_drops_cookies_and_redacts_bodies() -> None:
    response = {
        "status": {"code": 401, "message": "Unauthorized"},
        "headers": {
            "Set-Cookie": ["session=abc"],
            "Content-Type": ["application/json"],
            "X-Echo": [f"Bearer {TOKEN}"],
        },
        "body": {"string": json.dumps({"error": {"message": f"Invalid key {KEY}"}}).encode()},
    }
    out = scrub_response(response)
    assert out["headers"] == {
        "Content-Type": ["application/json"],
        "X-Echo": [vcr_support.BEARER_PLACEHOLDER],
    }
    message = json.loads(out["body"]["string"])["error"]["message"]
    assert message == f"Invalid key {PLACEHOLDER}"


def test_json_body_matcher_ignores_order_and_client_made_tool_call_ids() -> None:
    def req(call_id: str, **extra: Any) -> Request:
        messages = [
            {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "f"}]},
            {"role": "tool", "tool_call_id": call_id, "content": "3"},
        ]
        return Request("POST", "https://h/v1/chat", json.dumps({**extra, "messages": messages}), {})

    vcr_support.json_body_matcher(req("uuid-1", model="m"), req("uuid-2", model="m"))
    with pytest.raises(AssertionError):
        vcr_support.json_body_matcher(req("a", model="m"), req("a", model="other"))
    # The link between a call and its answer still counts.
    broken = req("x", model="m")
    body = json.loads(broken.body)
    body["messages"][1]["tool_call_id"] = "y"
    broken.body = json.dumps(body)
    with pytest.raises(AssertionError):
        vcr_support.json_body_matcher(req("x", model="m"), broken)


def test_a_recorded_cassette_is_scrubbed_end_to_end(tmp_path: Path) -> None:
    """Record a mock exchange through vcr with the project's configuration; read the file."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers={"Set-Cookie": f"session={KEY}", "X-Key-Echo": KEY},
            json={"echo": request.headers["authorization"], "key": KEY},
        )

    config = vcr_support.vcr_config()
    config["record_mode"] = "all"
    recorder = vcr.VCR(cassette_library_dir=str(tmp_path))
    recorder.register_matcher("json_body", vcr_support.json_body_matcher)
    recorder.register_serializer("yaml", vcr_support.ReadableYamlSerializer())
    with recorder.use_cassette("scrubbed.yaml", **config):
        client = httpx2.Client(transport=httpx2.MockTransport(answer))
        client.post(
            f"https://api.example.test/v1/chat/completions?key={KEY}",
            json={"model": "m", "messages": [{"role": "user", "content": KEY}]},
            headers={
                "Authorization": f"Bearer {KEY}",
                "api-key": KEY,
                "x-api-key": KEY,
                "Cookie": f"c={KEY}",
            },
        )
    text = (tmp_path / "scrubbed.yaml").read_text()
    assert KEY not in text
    assert vcr_support.find_secrets(text) == []
    assert PLACEHOLDER in text
    interaction = yaml.safe_load(text)["interactions"][0]
    request_headers = {h.lower() for h in interaction["request"]["headers"]}
    assert not request_headers & {"authorization", "api-key", "x-api-key", "cookie"}
    assert "set-cookie" not in {h.lower() for h in interaction["response"]["headers"]}


# ---------------------------------------------------------------------- multipart uploads

AUDIO = b"ID3\x04\x00\x00" + bytes(range(256)) * 4  # binary: must not land in a cassette


def _upload(client: httpx2.Client, audio: bytes, language: str = "en") -> httpx2.Response:
    return client.post(
        "https://api.example.test/v1/audio/transcriptions",
        data={"model": "openai/whisper-large-v3", "language": language},
        files={"file": ("talk.mp3", audio, "audio/mpeg")},
        headers={"Authorization": f"Bearer {KEY}"},
    )


def test_multipart_summary_keeps_fields_and_the_files_hash() -> None:
    request = httpx2.Request(
        "POST",
        "https://h/v1/audio/transcriptions",
        data={"model": "m", "language": "en"},
        files={"file": ("talk.mp3", AUDIO, "audio/mpeg")},
    )
    request.read()
    summary = vcr_support.multipart_summary(request.content, request.headers["content-type"])
    assert summary is not None
    assert json.loads(summary) == {
        "multipart": {
            "model": "m",
            "language": "en",
            "file": {
                "filename": "talk.mp3",
                "content_type": "audio/mpeg",
                "bytes": len(AUDIO),
                "sha256": hashlib.sha256(AUDIO).hexdigest(),
            },
        }
    }


def test_a_multipart_upload_is_recorded_as_its_fields_and_replayed_by_them(
    tmp_path: Path,
) -> None:
    """Recorded: the fields and the file's hash, never its bytes; replayed: the same fields
    and file match whatever the boundary, another file or field does not."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"text": "hello", "duration": 1.0, "language": "en"})

    def tape(mode: str) -> Any:
        config = {**vcr_support.vcr_config(), "record_mode": mode}
        recorder = vcr.VCR(cassette_library_dir=str(tmp_path))
        recorder.register_matcher("json_body", vcr_support.json_body_matcher)
        recorder.register_serializer("yaml", vcr_support.ReadableYamlSerializer())
        return recorder.use_cassette("upload.yaml", **config)

    with tape("all"):
        _upload(httpx2.Client(transport=httpx2.MockTransport(answer)), AUDIO)
    text = (tmp_path / "upload.yaml").read_text()
    assert "!!binary" not in text and KEY not in text
    recorded = yaml.safe_load(text)["interactions"][0]["request"]["body"]
    assert json.loads(recorded)["multipart"]["file"]["bytes"] == len(AUDIO)

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("replay reached the transport")

    with tape("none"):
        replayed = _upload(httpx2.Client(transport=httpx2.MockTransport(refuse)), AUDIO)
        assert replayed.json()["text"] == "hello"
    for audio, language in ((AUDIO + b"x", "en"), (AUDIO, "de")):
        with tape("none"), pytest.raises(vcr.errors.CannotOverwriteExistingCassetteException):
            _upload(httpx2.Client(transport=httpx2.MockTransport(refuse)), audio, language)


def test_a_key_in_a_multipart_field_is_scrubbed() -> None:
    request = httpx2.Request(
        "POST",
        "https://h/v1/audio/transcriptions",
        data={"model": "m", "prompt": f"names: {KEY}"},
        files={"file": ("a.mp3", AUDIO, "audio/mpeg")},
    )
    request.read()
    recorded = scrub_request(
        Request("POST", str(request.url), request.content, dict(request.headers))
    )
    fields = json.loads(recorded.body)["multipart"]
    assert fields["prompt"] == f"names: {PLACEHOLDER}" and KEY.encode() not in recorded.body
