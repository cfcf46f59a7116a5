"""Send a Response on an HTTP/1.1 connection: framing, HEAD, streaming and files.

Headers and a bytes body go out in one transport.write. Streamed bodies wait for the transport's
write buffer to drain between pieces, so a slow client holds back the producer instead of
filling memory. Files go through loop.sendfile (which falls back to reads when the transport
cannot sendfile, e.g. TLS), or are read piece by piece where the loop has no sendfile (uvloop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator
from email.utils import formatdate
from typing import IO, Protocol

from framewire.http.messages import FileBody, Response
from framewire.sansio.headers import Headers, split_tokens
from framewire.sansio.http11 import LAST_CHUNK, encode_chunk, encode_response_head
from framewire.sansio.http11_events import RequestHead

__all__ = ["ResponseSink", "send_response"]

logger = logging.getLogger("framewire.http")

_SMALL_BODY = 64 * 1024  # bodies up to this size are copied to go out with the head
_FILE_PIECE = 256 * 1024  # what a file is read in where the loop cannot sendfile (uvloop)
_COMPUTED = frozenset({"content-length", "transfer-encoding"})
_date_cache: tuple[int, str] = (0, "")


class ResponseSink(Protocol):
    """The connection a response is written to."""

    @property
    def transport(self) -> asyncio.Transport:
        """The transport, for loop.sendfile()."""
        ...

    def write(self, data: bytes) -> None:
        """Write bytes (no-op once the connection is closed)."""
        ...

    async def wait_drained(self) -> None:
        """Wait until the write buffer is below its high-water mark.

        Raises:
            ConnectionResetError: the connection is closed.
        """
        ...


def _http_date() -> str:
    """Return the current date for the Date header, computed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _base_fields(
    response: Response, keep_alive: bool, http_version: str, server_header: str | None
) -> tuple[list[tuple[str, str]], bool]:
    """Return the response's fields without framing ones, plus Date, Server and Connection."""
    given = response.headers
    items = given.items() if isinstance(given, Headers) else list(given)
    fields = [(name, value) for name, value in items if name.lower() not in _COMPUTED]
    names = {name.lower() for name, _ in fields}
    connection = [value.lower() for name, value in fields if name.lower() == "connection"]
    if "close" in split_tokens(connection):
        keep_alive = False
    elif connection and not keep_alive:
        # We close whatever the handler said: do not announce anything else.
        fields = [(name, value) for name, value in fields if name.lower() != "connection"]
        connection = []
    if "date" not in names:
        fields.append(("Date", _http_date()))
    if server_header and "server" not in names:
        fields.append(("Server", server_header))
    if not keep_alive and not connection:
        fields.append(("Connection", "close"))
    elif keep_alive and http_version == "1.0" and not connection:
        fields.append(("Connection", "keep-alive"))
    return fields, keep_alive


async def send_response(
    sink: ResponseSink,
    head: RequestHead,
    response: Response,
    *,
    keep_alive: bool,
    server_header: str | None = None,
) -> bool:
    """Write ``response`` to the request ``head``; return whether the connection stays open.

    Raises:
        ValueError: the response has an invalid status, reason or header (nothing written).
        ConnectionResetError: the client went away while the body was being sent.
    """
    body = response.body
    if isinstance(body, FileBody):
        return await _send_file(sink, head, response, body, keep_alive, server_header)
    if isinstance(body, bytes | bytearray | memoryview):
        return await _send_bytes(sink, head, response, bytes(body), keep_alive, server_header)
    return await _send_stream(sink, head, response, body, keep_alive, server_header)


def _has_no_body(head: RequestHead, status: int) -> bool:
    # RFC 9110 6.4.1: no content in responses to HEAD, nor in 1xx, 204 and 304 responses.
    return head.method == "HEAD" or status < 200 or status in (204, 304)


def _length_fields(status: int, length: int) -> list[tuple[str, str]]:
    # RFC 9110 8.6: no Content-Length in 1xx and 204 responses.
    if status < 200 or status == 204:
        return []
    return [("Content-Length", str(length))]


async def _send_bytes(
    sink: ResponseSink,
    head: RequestHead,
    response: Response,
    body: bytes,
    keep_alive: bool,
    server_header: str | None,
) -> bool:
    fields, keep_alive = _base_fields(response, keep_alive, head.http_version, server_header)
    fields += _length_fields(response.status, len(body))
    data = encode_response_head(response.status, fields, response.reason)
    if _has_no_body(head, response.status):
        sink.write(data)
    elif len(body) <= _SMALL_BODY:
        sink.write(data + body)
    else:
        sink.write(data)
        sink.write(body)
    await sink.wait_drained()
    return keep_alive


async def _close_iterable(body: AsyncIterable[bytes]) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


async def _send_stream(
    sink: ResponseSink,
    head: RequestHead,
    response: Response,
    body: AsyncIterable[bytes],
    keep_alive: bool,
    server_header: str | None,
) -> bool:
    chunked = head.http_version == "1.1"
    if not chunked:
        keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
    fields, keep_alive = _base_fields(response, keep_alive, head.http_version, server_header)
    no_body = _has_no_body(head, response.status)
    if chunked and response.status >= 200 and response.status != 204:
        fields.append(("Transfer-Encoding", "chunked"))
    try:
        sink.write(encode_response_head(response.status, fields, response.reason))
        if no_body:
            return keep_alive
        iterator: AsyncIterator[bytes] = aiter(body)
        async for piece in iterator:
            if piece:
                sink.write(encode_chunk(piece) if chunked else bytes(piece))
                await sink.wait_drained()
        if chunked:
            sink.write(LAST_CHUNK)
        await sink.wait_drained()
    finally:
        await _close_iterable(body)
    return keep_alive


def _open_file(body: FileBody) -> tuple[IO[bytes], int]:
    """Open the file and return it with the number of bytes to send."""
    file = open(body.path, "rb")  # noqa: SIM115 (closed by the caller)
    try:
        size = os.fstat(file.fileno()).st_size
        available = max(0, size - body.offset)
        length = available if body.length is None else min(body.length, available)
    except BaseException:
        file.close()
        raise
    return file, length


async def _send_file(
    sink: ResponseSink,
    head: RequestHead,
    response: Response,
    body: FileBody,
    keep_alive: bool,
    server_header: str | None,
) -> bool:
    try:
        file, length = _open_file(body)
    except OSError as error:
        status = 404 if isinstance(error, FileNotFoundError | IsADirectoryError) else 500
        if status == 500:
            logger.error("cannot open %s: %s", body.path, error)
        text = b"404 Not Found\n" if status == 404 else b"500 Internal Server Error\n"
        fallback = Response(status, [("Content-Type", "text/plain; charset=utf-8")], text)
        return await _send_bytes(sink, head, fallback, text, keep_alive, server_header)
    with file:
        fields, keep_alive = _base_fields(response, keep_alive, head.http_version, server_header)
        fields += _length_fields(response.status, length)
        sink.write(encode_response_head(response.status, fields, response.reason))
        if _has_no_body(head, response.status) or length == 0:
            await sink.wait_drained()
            return keep_alive
        await sink.wait_drained()
        loop = asyncio.get_running_loop()
        try:
            await loop.sendfile(sink.transport, file, body.offset, length, fallback=True)
        except NotImplementedError:  # uvloop has no loop.sendfile(): it raises before writing
            await _copy_file(sink, file, body.offset, length)
    return keep_alive


async def _copy_file(sink: ResponseSink, file: IO[bytes], offset: int, length: int) -> None:
    """Write ``length`` bytes of ``file`` from ``offset``, read in a thread piece by piece, each
    written once the previous one drained below the high-water mark."""
    loop = asyncio.get_running_loop()
    file.seek(offset)
    remaining = length
    while remaining:
        piece = await loop.run_in_executor(None, file.read, min(remaining, _FILE_PIECE))
        if not piece:
            raise OSError(f"{file.name!r} shrank while it was being sent")
        remaining -= len(piece)
        sink.write(piece)
        await sink.wait_drained()
