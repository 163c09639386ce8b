"""The one rule for media in agent loops, applied to every chat request of both frameworks.

A tool message carries text. Media a tool returned (an image, audio, a video: content parts
of a ``tool`` message) is replaced there by a line saying what it was (type, size or URL), and
the pixels reach the model only as image parts of a ``user`` message placed right after the
tool messages of that turn, and only when the model accepts images (the catalog's
``input_modalities``); otherwise the line says they were not shown. Audio and video are
described, never forwarded: chat models read text and, some, images.

Why: OpenAI-compatible servers accept image parts in user messages only (a ``tool`` message
with an image is a 400 on most), and a text-only model answers 400 to any image part, which
would end an agent's loop after its tool had worked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

JSONDict = dict[str, Any]
_INTRO = "The tool results above returned these images:"


def _size(count: int) -> str:
    from ..media.common import human_size  # only once a tool message holds media

    return human_size(count)


def _data_size(url: str) -> tuple[str, str]:
    """``(mime type, size)`` of a ``data:`` URI."""
    head, _, payload = url.partition(",")
    mime = head[5:].split(";")[0] or "application/octet-stream"
    try:
        size = len(base64.b64decode(payload, validate=False))
    except (binascii.Error, ValueError):
        size = len(payload)
    return mime, _size(size)


def describe_part(part: Mapping[str, Any], shown: bool) -> str:
    """One line naming a non-text part of a tool message."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
        what = "image " + (
            "({}, {})".format(*_data_size(url)) if url.startswith("data:") else f"at {url}"
        )
        tail = "shown in the next message" if shown else "not shown: this model reads no images"
        return f"[{what}; {tail}]"
    if kind == "input_audio":
        audio = part.get("input_audio")
        audio = audio if isinstance(audio, Mapping) else {}
        size = _size(len(str(audio.get("data", ""))) * 3 // 4)
        return f"[{audio.get('format') or 'audio'} audio ({size}); not played to the model]"
    if kind == "video_url":
        video = part.get("video_url")
        url = str(video.get("url", "") if isinstance(video, Mapping) else video or "")
        what = "({}, {})".format(*_data_size(url)) if url.startswith("data:") else f"at {url}"
        return f"[video {what}; not shown to the model]"
    if kind == "file":
        file = part.get("file")
        name = file.get("filename") if isinstance(file, Mapping) else None
        return f"[file {name}; not shown to the model]" if name else "[a file; not shown]"
    return f"[{kind or 'unknown'} content; not shown to the model]"


def _has_media(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return (
        message.get("role") == "tool"
        and isinstance(content, list)
        and any(isinstance(p, Mapping) and p.get("type") != "text" for p in content)
    )


def tool_media_to_user(
    messages: list[JSONDict], accepts_images: Callable[[], bool]
) -> list[JSONDict]:
    """``messages`` with the rule applied (the same list when no tool message holds media).

    ``accepts_images`` is asked at most once, and only when a tool message holds an image.
    """
    if not any(_has_media(m) for m in messages):
        return messages
    shown: bool | None = None
    out: list[JSONDict] = []
    images: list[JSONDict] = []
    for message in messages:
        if images and message.get("role") != "tool":
            out.append({"role": "user", "content": [{"type": "text", "text": _INTRO}, *images]})
            images = []
        if not _has_media(message):
            out.append(message)
            continue
        lines: list[str] = []
        for part in message["content"]:
            if isinstance(part, Mapping) and part.get("type") == "text":
                lines.append(str(part.get("text", "")))
                continue
            is_image = isinstance(part, Mapping) and part.get("type") == "image_url"
            if is_image and shown is None:
                shown = bool(accepts_images())
            lines.append(describe_part(part, bool(is_image and shown)))
            if is_image and shown:
                images.append(dict(part))
        out.append({**message, "content": "\n".join(line for line in lines if line)})
    if images:
        out.append({"role": "user", "content": [{"type": "text", "text": _INTRO}, *images]})
    return out


def artifact_parts(artifact: object) -> list[JSONDict]:
    """The content parts of a media tool's artifact (``{"type": "image" | "audio" |
    "video", "data": bytes, "mime_type", "url", ...}``, what this package's LangChain tools
    return), so that a LangChain tool message holds what a LlamaIndex one does and the rule
    above treats both alike. Anything else: no parts."""
    if not isinstance(artifact, Mapping):
        return []
    kind, data, url = artifact.get("type"), artifact.get("data"), artifact.get("url")
    mime = artifact.get("mime_type")
    raw = bytes(data) if isinstance(data, (bytes, bytearray)) else b""
    if kind == "audio" and raw:
        encoded = base64.b64encode(raw).decode("ascii")
        return [
            {
                "type": "input_audio",
                "input_audio": {"data": encoded, "format": artifact.get("format") or "mp3"},
            }
        ]
    if kind not in ("image", "video"):
        return []
    key = "image_url" if kind == "image" else "video_url"
    if raw:
        encoded = base64.b64encode(raw).decode("ascii")
        fallback = "image/png" if kind == "image" else "video/mp4"
        return [{"type": key, key: {"url": f"data:{mime or fallback};base64,{encoded}"}}]
    if isinstance(url, str) and url:
        return [{"type": key, key: {"url": url}}]
    return []
