"""How uploads are served (chat/upload_types.py): from their first bytes, never from what the
uploader declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from framewire.chat.upload_types import ServedType, classify_upload, sniff

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
GIF87 = b"GIF87a\x01\x00\x01\x00"
GIF89 = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
PDF = b"%PDF-1.7\n%\xe2\xe3"
OCTET = ServedType("application/octet-stream", False)


@pytest.mark.parametrize(
    ("head", "name", "served"),
    [
        (PNG, "0123.png", ServedType("image/png", True)),
        (PNG, "0123", ServedType("image/png", True)),  # the bytes decide, not the name
        (PNG, "0123.txt", ServedType("image/png", True)),
        (JPEG, "0123.jpg", ServedType("image/jpeg", True)),
        (GIF87, "0123.gif", ServedType("image/gif", True)),
        (GIF89, "0123.gif", ServedType("image/gif", True)),
        (WEBP, "0123.webp", ServedType("image/webp", True)),
        (PDF, "0123.pdf", ServedType("application/pdf", False)),
        (PDF, "0123", ServedType("application/pdf", False)),
        (b"hello, world\n", "0123.txt", ServedType("text/plain; charset=utf-8", False)),
        (b"hello, world\n", "0123.TXT", ServedType("text/plain; charset=utf-8", False)),
        (
            b"<html><script>alert(1)</script>",
            "0123.txt",
            ServedType("text/plain; charset=utf-8", False),
        ),
        (b"<!doctype html><html>", "0123", OCTET),
        (b"<!doctype html><html>", "0123.png", OCTET),  # claims to be an image: it is not
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", "0123", OCTET),
        (b"<?xml version='1.0'?>", "0123", OCTET),
        (b"alert(document.cookie)", "0123", OCTET),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "0123.wav", OCTET),  # RIFF but not WebP
        (b"\x89PNG", "0123.png", OCTET),  # a cut signature is not an image
        (b"", "0123", OCTET),
        (b"", "0123.txt", ServedType("text/plain; charset=utf-8", False)),
        (b"\x00\x01\x02\x03", "0123.bin", OCTET),
    ],
)
def test_sniff(head: bytes, name: str, served: ServedType) -> None:
    assert sniff(head, name) == served


@pytest.mark.parametrize("served_type", ["image/png", "image/jpeg", "image/gif", "image/webp"])
def test_only_raster_images_are_inline(served_type: str) -> None:
    heads = {"image/png": PNG, "image/jpeg": JPEG, "image/gif": GIF89, "image/webp": WEBP}
    assert sniff(heads[served_type], "x").inline


def test_classify_upload_reads_the_stored_file(tmp_path: Path) -> None:
    image = tmp_path / "0123.bin"
    image.write_bytes(GIF89 + b"\x00" * 100_000)
    assert classify_upload(image) == ServedType("image/gif", True)
    short = tmp_path / "0124.txt"
    short.write_bytes(b"hi")
    assert classify_upload(short) == ServedType("text/plain; charset=utf-8", False)
