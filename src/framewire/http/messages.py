"""Request, Response and FileBody: what an HTTP handler receives and returns, and the helpers
that build responses (json, text, html, redirect, error, file).

The HTTP application layer owns these types; the asyncio server connection (aio/http1/) makes
the Requests and sends the Responses, and imports them from here, the one module of
framewire.http it may import: this one imports nothing from framewire.aio (tests/test_layers.py
checks both). A Request reads its body from a BodySource; the server connection supplies one
that pulls from the socket with backpressure, and Request.build() makes a request over an
in-memory body (for tests and for code that is not tied to a connection).
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote

from framewire.exceptions import HTTPError
from framewire.sansio.headers import Headers
from framewire.sansio.http11_events import RequestHead

__all__ = [
    "BodySource",
    "BytesBodySource",
    "FileBody",
    "HTTPHandler",
    "Request",
    "Response",
    "error_response",
    "file_response",
    "html_response",
    "json_response",
    "redirect",
    "text_response",
]

DEFAULT_MAX_BODY_SIZE = 1 << 20


class BodySource(Protocol):
    """Where a Request's body comes from."""

    async def read_chunk(self, max_body_size: int) -> bytes:
        """Return the next piece of the body, or b"" at its end.

        Raises:
            HTTPError: 413 past ``max_body_size`` (bytes), 408 when the body stalls, or the
                status of a malformed body.
            ConnectionResetError: the client disconnected before the end of the body.
        """
        ...


class BytesBodySource:
    """A body held in memory, handed out in one piece."""

    def __init__(self, body: bytes = b"") -> None:
        self._body = body
        self._done = False

    async def read_chunk(self, max_body_size: int) -> bytes:
        """Return the whole body on the first call, then b""."""
        if self._done:
            return b""
        self._done = True
        if len(self._body) > max_body_size:
            raise HTTPError(
                413, f"body of {len(self._body)} bytes exceeds max_body_size={max_body_size}"
            )
        return self._body


class Request:
    """An HTTP request as a handler sees it; the body is read on demand.

    Attributes:
        method: the request method ("GET").
        target: the request target as sent ("/a%20b?x=1").
        path: the percent-decoded path ("/a b").
        raw_path: the path as sent, still percent-encoded ("/a%20b").
        query: the query string after '?', '' when there is none.
        query_params: the query parsed with ``urllib.parse.parse_qs`` (blank values kept).
        http_version: "1.1" or "1.0".
        headers: the request header fields.
        remote_address: the client's (host, port), when known.
        path_params: parameters captured by the router; starts empty.
        max_body_size: largest body in bytes that stream()/body() accept (413 past it); an
            application may change it before reading the body.
    """

    def __init__(
        self,
        head: RequestHead,
        body_source: BodySource | None = None,
        *,
        remote_address: tuple[str, int] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.head = head
        self.method = head.method
        self.target = head.target
        self.raw_path = head.path
        self.path = unquote(self.raw_path)
        self.query = head.query
        self.query_params: dict[str, list[str]] = (
            parse_qs(self.query, keep_blank_values=True) if self.query else {}
        )
        self.http_version = head.http_version
        self.headers = head.headers
        self.remote_address = remote_address
        self.path_params: dict[str, str] = {}
        self.max_body_size = max_body_size
        self._body_source: BodySource = body_source or BytesBodySource(b"")
        self._streamed = False
        self._body: bytes | None = None

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        http_version: str = "1.1",
        remote_address: tuple[str, int] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> Request:
        """Return a request over an in-memory body, not tied to any connection (for tests)."""
        head = RequestHead(method, target, http_version, Headers(headers))
        return cls(
            head,
            BytesBodySource(body),
            remote_address=remote_address,
            max_body_size=max_body_size,
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body in pieces as they arrive, holding little in memory.

        Reading from the socket pauses while the caller does not consume. Sends
        "100 Continue" first when the client expects it. The body can be streamed once; after
        body() the cached body is yielded.

        Raises:
            HTTPError: 413 past max_body_size, 408 when the body stalls past body_timeout, or
                400 for a malformed body.
            ConnectionResetError: the client disconnected mid-body.
            RuntimeError: the body was already streamed.
        """
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._streamed:
            raise RuntimeError("the request body was already streamed")
        self._streamed = True
        while True:
            chunk = await self._body_source.read_chunk(self.max_body_size)
            if not chunk:
                return
            yield chunk

    async def body(self) -> bytes:
        """Return the whole body (cached after the first call); raises as stream() does."""
        if self._body is None:
            parts = [chunk async for chunk in self.stream()]
            self._body = b"".join(parts)
        return self._body

    async def text(self, encoding: str = "utf-8") -> str:
        """Return the body decoded (UTF-8 unless told otherwise; invalid bytes -> 400)."""
        try:
            return (await self.body()).decode(encoding)
        except UnicodeDecodeError as exc:
            raise HTTPError(400, f"request body is not valid {encoding}") from exc

    async def json(self) -> Any:
        """Return the body parsed as JSON (invalid JSON -> HTTPError 400)."""
        text = await self.text()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise HTTPError(400, "request body is not valid JSON") from exc
        except RecursionError as exc:
            raise HTTPError(400, "request body is JSON nested too deeply") from exc


@dataclass(frozen=True, slots=True)
class FileBody:
    """A response body read from a file and sent with ``loop.sendfile``.

    Attributes:
        path: the file to send.
        offset: first byte to send.
        length: how many bytes to send; None sends to the end of the file.
    """

    path: str
    offset: int = 0
    length: int | None = None


@dataclass(slots=True)
class Response:
    """What an HTTP handler returns.

    A bytes body is sent with Content-Length; an async iterable of bytes is sent chunked
    (HTTP/1.1) or delimited by closing the connection (HTTP/1.0); a FileBody is sent with
    Content-Length and sendfile. Content-Length and Transfer-Encoding are always computed by the
    server: values set in ``headers`` are replaced. For a HEAD request only the head is sent.

    Attributes:
        status: the status code.
        headers: extra header fields, as (name, value) pairs or a Headers.
        body: the body.
        reason: the reason phrase; None uses the standard phrase of ``status``.
    """

    status: int = 200
    headers: list[tuple[str, str]] | Headers = field(default_factory=list)
    body: bytes | AsyncIterable[bytes] | FileBody = b""
    reason: str | None = None


HTTPHandler = Callable[[Request], Awaitable[Response]]


def json_response(obj: Any, status: int = 200) -> Response:
    """Return ``obj`` serialized as compact JSON (UTF-8, ``application/json``)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status=status, headers=[("Content-Type", "application/json")], body=body)


def text_response(text: str, status: int = 200) -> Response:
    """Return ``text`` as ``text/plain; charset=utf-8``."""
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    return Response(status=status, headers=headers, body=text.encode("utf-8"))


def html_response(html: str, status: int = 200) -> Response:
    """Return ``html`` as ``text/html; charset=utf-8``."""
    headers = [("Content-Type", "text/html; charset=utf-8")]
    return Response(status=status, headers=headers, body=html.encode("utf-8"))


def redirect(location: str, status: int = 302) -> Response:
    """Return a redirect to ``location`` (301, 302, 303, 307 or 308).

    Raises:
        ValueError: if ``status`` is not a redirect status or ``location`` contains CR, LF or NUL
            (which would split the response head).
    """
    if status not in (301, 302, 303, 307, 308):
        raise ValueError(f"{status} is not a redirect status")
    if any(char in location for char in "\r\n\x00"):
        raise ValueError("redirect location contains CR, LF or NUL")
    return Response(status=status, headers=[("Location", location)])


def error_response(status: int, reason: str | None = None) -> Response:
    """Return a short plain-text error page: ``"404 Not Found"``.

    ``reason`` is sent to the client: pass only text that is safe to show (HTTPError.reason is).
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    text = f"{status} {reason or phrase}".rstrip() + "\n"
    return text_response(text, status)


def file_response(
    path: str | os.PathLike[str],
    *,
    content_type: str | None = None,
    download_name: str | None = None,
    status: int = 200,
) -> Response:
    """Return the file at ``path``, sent with sendfile.

    Args:
        path: the file; the caller is responsible for it being a file it means to serve (see
            :class:`framewire.http.static.StaticFiles` for serving user-chosen paths).
        content_type: defaults to a guess from the file name, else application/octet-stream.
        download_name: when given, asks the browser to save the file under this name
            (Content-Disposition: attachment, RFC 6266 with a UTF-8 ``filename*``).
        status: the status code.
    """
    file_path = os.fspath(path)
    if content_type is None:
        content_type = mimetypes.guess_type(file_path)[0] or "application/octet-stream"
    headers = [("Content-Type", content_type), ("X-Content-Type-Options", "nosniff")]
    if download_name is not None:
        headers.append(("Content-Disposition", _attachment(download_name)))
    return Response(status=status, headers=headers, body=FileBody(file_path))


def _attachment(name: str) -> str:
    """Return a Content-Disposition value with an ASCII fallback and a UTF-8 filename*."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
