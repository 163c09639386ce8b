"""The fault server's media routes (echo mode), in Runcrate's shapes, with fake bytes.

* ``POST /v1/images/generations``: a tiny valid PNG (its size from ``width``/``height`` or
  ``aspect_ratio``, scaled down 16 times); ``response_format`` ``b64_json`` inlines it, else
  ``url`` points at ``GET /v1/files/<id>`` on :attr:`MediaState.file_host` (this server unless
  a test moves it to another one).
* ``POST /v1/audio/speech``: :func:`fake_audio` of the text (``audio/mpeg`` or ``audio/pcm``).
* ``POST /v1/audio/transcriptions`` (multipart): the text inside a :func:`fake_audio` upload
  (else ``"<n> bytes of audio"``) as json, text, srt or vtt.
* ``POST /v1/videos``, ``GET /v1/videos/<id>`` (``queued``, then ``processing``, then
  ``completed`` after :attr:`MediaState.polls_to_complete` looks; a prompt with ``[fail]`` ends
  ``failed``), ``GET /v1/videos/<id>/download`` (a fake MP4; 409 before completion).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_openai_server import JSONResponse, RecordedRequest

AUDIO_MAGIC = b"ID3\x04\x00\x00FAKE:"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32


def tiny_png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` in one colour derived from ``seed``."""
    pixel = bytes(((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def fake_audio(text: str) -> bytes:
    """Bytes that sniff as MP3 (an ID3 header) and carry ``text`` for the fake transcriber."""
    return AUDIO_MAGIC + text.encode()


def multipart_fields(request: RecordedRequest) -> dict[str, Any]:
    """A multipart request's fields: strings, and ``(filename, bytes, content type)`` for
    files."""
    ctype = request.headers.get("content-type", "")
    raw = request.body if isinstance(request.body, bytes) else b""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            fields[str(name)] = (part.get_filename(), payload, part.get_content_type())
        else:
            fields[str(name)] = payload.decode()
    return fields


@dataclass
class MediaState:
    """What the media routes remember between requests."""

    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls_to_complete: int = 2
    file_host: str | None = None  # "http://127.0.0.1:<port>" to serve image URLs elsewhere


def _size(body: dict[str, Any]) -> tuple[int, int]:
    width, height = body.get("width"), body.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return max(1, width // 16), max(1, height // 16)
    a, _, b = str(body.get("aspect_ratio") or "1:1").partition(":")
    ratio = int(a) / int(b)
    return (64, max(1, round(64 / ratio))) if ratio >= 1 else (max(1, round(64 * ratio)), 64)


def _heard(data: bytes) -> str:
    if data.startswith(AUDIO_MAGIC):
        return data[len(AUDIO_MAGIC) :].decode("utf-8", "replace")
    return f"{len(data)} bytes of audio"


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def echo(state: MediaState, request: RecordedRequest, base: str) -> JSONResponse | None:
    """The answer of a media route, or ``None`` when ``request`` is not one."""
    from .fake_openai_server import JSONResponse, error

    method, path = request.method, request.path.split("?")[0].rstrip("/")
    body = request.body if isinstance(request.body, dict) else {}
    if method == "POST" and path.endswith("/images/generations"):
        width, height = _size(body)
        png = tiny_png(width, height, int(body.get("seed") or 0))
        if body.get("response_format") == "b64_json":
            item = {"url": None, "b64_json": base64.b64encode(png).decode()}
        else:
            name = uuid.uuid4().hex + ".png"
            state.files[name] = png
            item = {"url": f"{state.file_host or base}/v1/files/{name}", "b64_json": None}
        return JSONResponse({"created": 1764000000, "data": [item]})
    if method == "GET" and "/files/" in path:
        found = state.files.get(path.rsplit("/", 1)[1])
        if found is None:
            return error(404, "not_found", "no such file")
        return JSONResponse(found, headers={"content-type": "image/png"})
    if method == "POST" and path.endswith("/audio/speech"):
        pcm = body.get("response_format") == "pcm"
        return JSONResponse(
            fake_audio(str(body.get("input", ""))),
            headers={"content-type": "audio/pcm" if pcm else "audio/mpeg"},
        )
    if method == "POST" and path.endswith("/audio/transcriptions"):
        return _transcription(request)
    if path.endswith("/videos") and method == "POST":
        job = {
            "id": "vid_" + uuid.uuid4().hex[:12],
            "object": "video",
            "status": "queued",
            "model": body.get("model"),
            "prompt": body.get("prompt"),
            "duration": body.get("duration", 4),
        }
        state.jobs[job["id"]] = {**job, "looks": 0}
        return JSONResponse(job)
    if "/videos/" in path and method == "GET":
        return _video(state, path)
    return None


def _transcription(request: RecordedRequest) -> JSONResponse:
    from .fake_openai_server import JSONResponse, error

    fields = multipart_fields(request)
    upload = fields.get("file")
    if not isinstance(upload, tuple) or not fields.get("model"):
        return error(400, "validation_error", "file and model are required")
    text = _heard(upload[1])
    fmt = fields.get("response_format") or "json"
    if fmt == "json":
        duration = round(len(text.split()) * 0.4, 3)
        return JSONResponse({"text": text, "duration": duration, "language": "en"})
    if fmt == "text":
        return JSONResponse(text, headers={"content-type": "text/plain; charset=utf-8"})
    words = text.split()
    halves = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])]
    sep = "." if fmt == "vtt" else ","
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    for i, half in enumerate(halves):
        if fmt == "srt":
            lines.append(str(i + 1))
        lines += [f"{_stamp(i * 1.5, sep)} --> {_stamp(i * 1.5 + 1.5, sep)}", half, ""]
    return JSONResponse("\n".join(lines), headers={"content-type": "text/plain; charset=utf-8"})


def _video(state: MediaState, path: str) -> JSONResponse:
    from .fake_openai_server import JSONResponse, error

    parts = path.split("/")
    at = parts.index("videos")
    job = state.jobs.get(parts[at + 1])
    if job is None:
        return error(404, "not_found", f"no video job {parts[at + 1]!r}")
    if parts[-1] == "download":
        if job["status"] != "completed":
            return error(409, "not_ready", f"video job is {job['status']}")
        return JSONResponse(MP4, headers={"content-type": "video/mp4"})
    job["looks"] += 1
    if job["status"] not in ("completed", "failed"):
        if job["looks"] >= state.polls_to_complete:
            failed = "[fail]" in str(job.get("prompt"))
            job["status"] = "failed" if failed else "completed"
            if failed:
                job["error"] = {"code": "generation_failed", "message": "could not render"}
        else:
            job["status"] = "processing"
    return JSONResponse(json.loads(json.dumps({k: v for k, v in job.items() if k != "looks"})))
