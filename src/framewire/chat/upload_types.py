"""How an uploaded file is served: its content type, and inline or as a download.

The type comes from the file's own first bytes for the formats a browser renders (raster
images, PDF), never from what the uploader declared: a file that claims image/png but holds
HTML must not be served as anything a browser would run. Raster images (PNG, JPEG, GIF, WebP)
are shown inline; everything else is an attachment. Passive types keep their type (plain text
by its .txt name, PDF by its signature); anything active or unknown (HTML, SVG, XML, scripts)
becomes application/octet-stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServedType", "classify_upload", "sniff"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
_INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_SNIFF_BYTES = 16


@dataclass(frozen=True, slots=True)
class ServedType:
    """How to serve one upload.

    Attributes:
        content_type: the Content-Type to send.
        inline: True to show it in the page; False to send it as an attachment.
    """

    content_type: str
    inline: bool


def sniff(head: bytes, stored_name: str) -> ServedType:
    """Return how to serve a file whose first bytes are ``head``, stored as ``stored_name``."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return ServedType(content_type, content_type in _INLINE)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ServedType("image/webp", True)
    if stored_name.lower().endswith(".txt"):
        return ServedType("text/plain; charset=utf-8", False)
    return ServedType("application/octet-stream", False)


def classify_upload(path: Path) -> ServedType:
    """Return how to serve the stored file at ``path`` (its name and first bytes decide)."""
    with open(path, "rb") as file:
        head = file.read(_SNIFF_BYTES)
    return sniff(head, path.name)
