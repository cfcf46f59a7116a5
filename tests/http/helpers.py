"""Helpers shared by the HTTP application-layer tests."""

from __future__ import annotations

import asyncio

from framewire.http.messages import Response
from framewire.sansio.headers import Headers


async def exchange(port: int, raw: bytes) -> tuple[int, Headers, bytes]:
    """Send one raw request (with Connection: close); return status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        response = await asyncio.wait_for(reader.read(-1), timeout=10)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = Headers(tuple(line.split(": ", 1)) for line in lines)  # type: ignore[misc]
    return int(status_line.split()[1]), headers, body


def header(response: Response, name: str) -> str | None:
    """Return the first value of header ``name`` in ``response`` (any case), or None."""
    for key, value in response.headers:
        if key.lower() == name.lower():
            return value
    return None
