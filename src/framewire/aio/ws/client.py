"""connect(): open a ws:// or wss:// connection and return a WebSocket after the handshake."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl as ssl_module
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from framewire.aio.ws.options import WebSocketOptions, deflate_config_for
from framewire.aio.ws.websocket import Request, WebSocket
from framewire.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from framewire.sansio.connection import Role
from framewire.sansio.handshake import build_request, verify_response
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import ResponseParser
from framewire.sansio.http11_events import BadResponse, BodyData, EndOfMessage, ResponseHead

__all__ = ["WebSocketURI", "connect", "parse_uri"]

_MAX_ERROR_BODY = 4096
_UNSAFE_URI_RE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed ws:// or wss:// URI."""

    secure: bool
    host: str
    port: int
    resource: str
    user_info: tuple[str, str] | None = None

    @property
    def host_header(self) -> str:
        """The Host header value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a ws:// or wss:// URI.

    Raises:
        InvalidURI: naming what is wrong with it (a control character or space included).
    """
    # urlsplit() silently drops tabs, CR and LF and keeps NUL; RFC 3986 allows none of them,
    # nor spaces, so a URI holding one (often an attempt at header injection) is refused whole.
    unsafe = _UNSAFE_URI_RE.search(uri)
    if unsafe is not None:
        raise InvalidURI(f"{uri!r} holds {unsafe.group()!r}, which a URI may not hold")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"{uri!r} is not a valid URI: {exc}") from exc
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(f"{uri!r} is not a WebSocket URI: scheme must be ws or wss")
    if not parts.hostname:
        raise InvalidURI(f"{uri!r} has no host")
    if parts.fragment:
        raise InvalidURI(f"{uri!r} has a fragment, which WebSocket URIs may not have")
    secure = parts.scheme == "wss"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    user_info = None
    if parts.username is not None:
        user_info = (unquote(parts.username), unquote(parts.password or ""))
    return WebSocketURI(
        secure, parts.hostname, port or (443 if secure else 80), resource, user_info
    )


class _HandshakeProtocol(asyncio.Protocol):
    """Sends the upgrade request and reads the response; then hands over to a WebSocket."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[tuple[ResponseHead, bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._status_head: ResponseHead | None = None
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance() check: uvloop's transports do not derive from asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.parser.receive_eof()
        self._process()
        return None

    def _process(self) -> None:
        while self.parser.has_more_to_parse:  # a response head is small: no need to yield
            self.parser.parse_more()
        for event in self.parser.events_received():
            if self.head.done():
                return
            if isinstance(event, ResponseHead):
                if event.status == 101:
                    assert self.transport is not None
                    self.transport.pause_reading()
                    self.head.set_result((event, self.parser.take_unparsed()))
                    return
                self._status_head = event
            elif isinstance(event, BodyData):
                room = _MAX_ERROR_BODY - len(self._body)
                self._body += event.data[: max(room, 0)]
            elif isinstance(event, EndOfMessage):
                self._fail_with_status()
            elif isinstance(event, BadResponse):
                self.head.set_exception(
                    InvalidHandshake(f"invalid HTTP response to the upgrade: {event.reason}")
                )

    def _fail_with_status(self) -> None:
        head = self._status_head
        if head is not None:
            self.head.set_exception(InvalidStatus(head.status, head.reason, bytes(self._body)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            if self._status_head is not None:
                self._fail_with_status()
            else:
                detail = f": {exc}" if exc else ""
                self.head.set_exception(
                    InvalidHandshake(f"connection closed during the opening handshake{detail}")
                )


class connect:
    """Open a WebSocket connection to ``uri``; use with ``async with`` or ``await``.

    Keyword arguments (sizes in bytes, durations in seconds):
        ssl: an ssl.SSLContext for wss:// (default: the system's trusted CAs).
        server_hostname: the name to check the certificate against.
        origin: an Origin header value.
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more header fields for the request.
        compression: "deflate" (default) or None; or a DeflateConfig.
        sock: an already connected socket to use instead of connecting to the URI's host.
        max_message_size, max_fragments, max_queue, max_queue_bytes, write_limit,
        ping_interval, ping_timeout, open_timeout, close_timeout: as for serve().

    Raises:
        InvalidURI, InvalidHandshake (InvalidStatus for a non-101 answer), OSError,
        TimeoutError (the handshake took longer than open_timeout).
    """

    def __init__(
        self,
        uri: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: Iterable[tuple[str, str]] | dict[str, str] = (),
        sock: Any = None,
        **options: Any,
    ) -> None:
        self.uri = parse_uri(uri)
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.origin = origin
        self.subprotocols = subprotocols
        if isinstance(extra_headers, dict):
            extra_headers = extra_headers.items()
        self.extra_headers = list(extra_headers)
        self.sock = sock
        self.options = WebSocketOptions.from_kwargs(options)
        self.websocket: WebSocket | None = None

    async def _open(self) -> WebSocket:
        async with asyncio.timeout(self.options.open_timeout):  # no extra task, unlike wait_for
            return await self._handshake()

    async def _handshake(self) -> WebSocket:
        uri, options = self.uri, self.options
        deflate_config = deflate_config_for(options.compression)
        extra = list(self.extra_headers)
        if uri.user_info is not None:
            credentials = base64.b64encode(":".join(uri.user_info).encode("utf-8")).decode()
            extra.append(("Authorization", f"Basic {credentials}"))
        request, key = build_request(
            uri.host_header,
            uri.resource,
            origin=self.origin,
            subprotocols=self.subprotocols,
            deflate_config=deflate_config,
            extra_headers=extra,
        )
        ssl_context = self.ssl
        if uri.secure and ssl_context is None:
            ssl_context = ssl_module.create_default_context()
        if not uri.secure and ssl_context is not None:
            raise InvalidURI("an ssl context was given for a ws:// URI; use wss://")
        loop = asyncio.get_running_loop()
        connect_kwargs: dict[str, Any] = {"ssl": ssl_context}
        if ssl_context is not None:
            connect_kwargs["server_hostname"] = self.server_hostname or uri.host
        if self.sock is not None:
            connect_kwargs["sock"] = self.sock
        else:
            connect_kwargs["host"], connect_kwargs["port"] = uri.host, uri.port
        transport, protocol = await loop.create_connection(
            lambda: _HandshakeProtocol(request), **connect_kwargs
        )
        try:
            head, leftover = await protocol.head
            result = verify_response(
                head.status,
                head.headers,
                key=key,
                subprotocols=self.subprotocols,
                deflate_config=deflate_config,
            )
        except BaseException:
            transport.abort()
            raise
        connection = options.make_connection(Role.CLIENT, result.deflate)
        request_headers = Headers((name, value) for name, value in extra)
        websocket = options.make_websocket(
            connection, Request(uri.resource, request_headers), result.subprotocol, head.headers
        )
        transport.set_protocol(websocket)
        websocket.connection_made(transport)
        if leftover:
            websocket.data_received(leftover)
        transport.resume_reading()
        self.websocket = websocket
        return websocket

    def __await__(self) -> Generator[Any, None, WebSocket]:
        return self._open().__await__()

    async def __aenter__(self) -> WebSocket:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        if self.websocket is not None:
            await self.websocket.close()
