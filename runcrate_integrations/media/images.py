"""``POST /images/generations``: the body (checked before anything is sent), the answer read
into :class:`GeneratedImage`s, and what an image's own bytes say (type, width, height).

Runcrate answers ``{"created", "data": [{"url", "b64_json"}]}``; a URL is temporary and may be
on another host (a CDN), so it is downloaded without the key when bytes are asked for
(:mod:`runcrate_integrations.net.transport` decides that by host).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import (
    Check,
    JSONDict,
    build_body,
    check_choice,
    check_int,
    check_number,
    check_prompt,
    check_ratio,
    check_seed,
    check_side,
    check_text,
    format_error,
    human_size,
)

IMAGES_PATH = "/images/generations"
IMAGE_FORMATS = ("url", "b64_json")
MIN_STEPS = 1
MAX_STEPS = 100

IMAGE_CHECKS: dict[str, Check] = {
    "width": check_side,
    "height": check_side,
    "aspect_ratio": check_ratio,
    "num_inference_steps": check_int(MIN_STEPS, MAX_STEPS),
    "guidance": check_number(0.0),
    "seed": check_seed,
    "negative_prompt": check_text,
    "response_format": check_choice(*IMAGE_FORMATS),
}


def image_body(
    model: str, prompt: str, params: Mapping[str, Any], extra_body: Mapping[str, Any] | None
) -> JSONDict:
    """The checked body; ``params`` are the named options (``None``: not sent)."""
    check_text("model", model)
    check_prompt("prompt", prompt)
    return build_body({"model": model, "prompt": prompt}, params, extra_body, IMAGE_CHECKS)


# ---------------------------------------------------------------------------- results


def sniff_image(data: bytes) -> tuple[str | None, int | None, int | None]:
    """``(mime type, width, height)`` read from an image's first bytes (PNG, JPEG, GIF, WebP);
    what cannot be told is ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8"):
        return ("image/jpeg", *_jpeg_size(data))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        if data[12:16] == b"VP8X" and len(data) >= 30:
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return "image/webp", width, height
        return "image/webp", None, None
    return None, None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None, None
        marker = data[i + 1]
        size = int.from_bytes(data[i + 2 : i + 4], "big")
        # Start-of-frame markers (not DHT C4, JPG C8, DAC CC) hold height then width.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + size
    return None, None


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


@dataclass(frozen=True)
class GeneratedImage:
    """One image: its bytes (``None`` for a URL answer not downloaded), its URL (``None`` for
    a ``b64_json`` answer; temporary on Runcrate), its type and size read from the bytes.

    Example::

        image = media.generate_image("a red fox").image
        image.save("fox.png"); image.data_uri  # 'data:image/png;base64,...'
    """

    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_bytes(
        cls, data: bytes, url: str | None = None, content_type: str | None = None
    ) -> GeneratedImage:
        mime, width, height = sniff_image(data)
        if mime is None and content_type and content_type.startswith("image/"):
            mime = content_type.split(";")[0].strip()
        return cls(data, url, mime, width, height)

    @property
    def data_uri(self) -> str | None:
        """``data:<type>;base64,...`` for the bytes (``None`` without them)."""
        if self.data is None:
            return None
        mime = self.mime_type or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.mime_type or "", "img")

    def describe(self) -> str:
        """``128x72 PNG, 1.2 kB`` (what the bytes say), or ``an image at <url>``."""
        if self.data is None:
            return f"an image at {self.url}"
        kind = self.extension.upper() if self.mime_type else "image"
        size = f"{self.width}x{self.height} " if self.width and self.height else ""
        return f"{size}{kind}, {human_size(len(self.data))}"

    def save(self, path: str | Path) -> Path:
        """Write the bytes to ``path``; the path written."""
        if self.data is None:
            raise ValueError("this image has no bytes (a URL answer not downloaded)")
        target = Path(path)
        target.write_bytes(self.data)
        return target


@dataclass(frozen=True)
class ImageResult:
    """What one ``generate_image`` call made: the images, in order, and the model's id."""

    images: tuple[GeneratedImage, ...]
    model: str
    created: int | None = None

    @property
    def image(self) -> GeneratedImage:
        """The first (usually only) image."""
        return self.images[0]


def parse_images(data: Mapping[str, Any]) -> list[tuple[bytes | None, str | None]]:
    """``(bytes, url)`` per image of an answer; a missing or malformed ``data`` list, an item
    with neither, or bad base64 raises :class:`ResponseFormatError`."""
    items = data.get("data")
    if not isinstance(items, list) or not items:
        raise format_error(f"the /images/generations answer has no images (keys: {sorted(data)})")
    out: list[tuple[bytes | None, str | None]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise format_error(f"data[{i}] of the /images/generations answer is not an object")
        b64, url = item.get("b64_json"), item.get("url")
        raw: bytes | None = None
        if isinstance(b64, str) and b64:
            try:
                raw = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise format_error(f"data[{i}].b64_json is not valid base64: {exc}") from None
        elif not (isinstance(url, str) and url):
            raise format_error(
                f"data[{i}] of the /images/generations answer has no url and no b64_json"
            )
        out.append((raw, url if isinstance(url, str) and url else None))
    return out
