"""serve() and Server: accept connections, upgrade them to WebSocket, or pass them to HTTP.

Every connection starts as HTTP/1.1 (aio/http1/protocol.py). A request that asks for a WebSocket
upgrade is handed here, to the server's ServerHandshake (aio/ws/server_handshake.py), which
validates it with the sans-I/O handshake and answers 101; the transport's protocol is then
switched to the WebSocket. One task per WebSocket connection runs the user's handler (after
process_request, when there is one); plain HTTP requests go to the optional http_handler. This
module is the one joint between aio/http1/ and aio/ws/.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any

from framewire.aio.acceptor import accept_connections
from framewire.aio.http1.protocol import HTTP1ServerProtocol
from framewire.aio.timers import FixedDelayTimers
from framewire.aio.ws.options import WebSocketOptions
from framewire.aio.ws.server_handshake import INTERNAL_ERROR, ServerHandshake
from framewire.aio.ws.websocket import WebSocket
from framewire.exceptions import ConnectionClosed
from framewire.http.messages import HTTPHandler
from framewire.http.messages import Request as HTTPRequest
from framewire.http.messages import Response as HTTPResponse
from framewire.sansio.connection import State
from framewire.sansio.handshake import SubprotocolSelector
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import encode_response_head, simple_response
from framewire.sansio.http11_events import RequestHead
from framewire.sansio.limits import ConnectionLimits, HTTPLimits

__all__ = ["Server", "serve"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN, _CLOSED = State.OPEN, State.CLOSED

_CONNECTION_LIMITS = ConnectionLimits()

logger = logging.getLogger("framewire.server")

Handler = Callable[[WebSocket], Awaitable[Any]]
ProcessRequest = Callable[[HTTPRequest], Awaitable[HTTPResponse | None]]


class Server:
    """A WebSocket (and optionally HTTP) server; made by serve().

    Attributes:
        connections: the open WebSocket connections.
        sockets: the listening sockets.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        http_handler: HTTPHandler | None = None,
        process_request: ProcessRequest | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        origins: Sequence[str | None] | None = None,
        options: WebSocketOptions,
        http_limits: HTTPLimits | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        server_header: str | None = "framewire",
        max_connections: int = _CONNECTION_LIMITS.max_connections,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.handler = handler
        self.max_connections = max_connections
        self._server_full = simple_response(
            503, f"server full: max_connections={max_connections}", [("Connection", "close")]
        )
        self.http_handler = http_handler
        self.process_request = process_request
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.origins = origins
        self.options = options
        self.http_limits = http_limits or HTTPLimits()
        self.extra_headers = tuple(extra_headers)
        if server_header:
            self.extra_headers += (("Server", server_header),)
        self.server_header = server_header
        self._handshake = ServerHandshake(
            options,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            origins=origins,
            extra_headers=self.extra_headers,
        )
        self.connections: set[WebSocket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http_protocols: set[HTTP1ServerProtocol] = set()  # connected, not handed off
        self._server: asyncio.Server | None = None
        self._timers: FixedDelayTimers | None = None  # made in the loop, by the first connection
        self._closing = False
        self._closed = asyncio.Event()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self._server.sockets) if self._server is not None else ()

    def _make_protocol(self) -> HTTP1ServerProtocol:
        timers = self._timers
        if timers is None:
            timers = self._timers = FixedDelayTimers(asyncio.get_running_loop())
        protocol = HTTP1ServerProtocol(
            self.http_handler,
            self._upgrade,
            self.http_limits,
            server_header=self.server_header,
            fast_upgrade=self._upgrade_plain if self.process_request is None else None,
            timers=timers,
            registry=self._http_protocols,
            refusal=self._refusal,
        )
        return protocol

    def _refusal(self) -> bytes | None:
        """The 503 for a connection past max_connections (it is already counted), else None."""
        if len(self._http_protocols) + len(self.connections) > self.max_connections:
            return self._server_full
        return None

    async def start(self, host: str | None, port: int | None, **kwargs: Any) -> Server:
        """Start listening; keyword arguments go to loop.create_server()."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            self._make_protocol, host, port, **kwargs, start_serving=False
        )
        self._server = server
        backlog = kwargs.get("backlog", 100)
        if not accept_connections(loop, server, self._make_protocol, backlog):
            await server.start_serving()
        return self

    def _upgrade(self, head: RequestHead, transport: asyncio.Transport, leftover: bytes) -> None:
        """Take over a connection whose request asks for a WebSocket upgrade."""
        if self._closing:
            transport.write(simple_response(503, "server shutting down"))
            transport.close()
            return
        if self.process_request is None:
            # Shaped for speed (benchmarks/run.py, handshakes per second): without a
            # process_request hook the handshake needs no await, so it runs here and the only
            # task is the handler's.
            websocket = self._handshake.accept(head, transport, self._timers)
            if websocket is None:
                return
            self._switch(websocket, transport, leftover)
            coroutine = self._run_handler(websocket)
        else:
            transport.pause_reading()
            coroutine = self._process_then_run(head, transport, leftover)
        self._start_task(coroutine)

    def _start_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a connection's coroutine in a task of its own, kept until it ends.

        The coroutine calls _forget_task() as its last step.
        """
        assert self._server is not None  # connections come from the server it accepted them on
        loop = self._server.get_loop()  # not get_running_loop(): a getpid() call each on 3.11
        self._tasks.add(loop.create_task(coroutine))

    def _forget_task(self) -> None:
        """Drop the running connection task from those close() waits for, as it ends.

        Not a done callback, which costs a loop callback per connection (benchmarks/run.py,
        handshakes per second).
        """
        assert self._server is not None
        self._tasks.discard(asyncio.current_task(self._server.get_loop()))

    def _upgrade_plain(
        self,
        target: str,
        headers: Headers,
        accept: bytes,
        transport: asyncio.Transport,
        leftover: bytes,
    ) -> None:
        """_upgrade() for a plain request that sansio/upgrade_request.py parsed and checked.

        Shaped for speed (benchmarks/run.py, handshakes per second): without subprotocols,
        origins or an extension offer to negotiate, the 101 is the same but for its
        Sec-WebSocket-Accept value (ServerHandshake.accept_plain()).
        """
        handshake = self._handshake
        websocket = None
        if not self._closing:
            websocket = handshake.accept_plain(target, headers, accept, transport, self._timers)
        if websocket is None:
            self._upgrade(RequestHead("GET", target, "1.1", headers), transport, leftover)
            return
        self._switch(websocket, transport, leftover)
        self._start_task(self._run_handler(websocket))

    def _reject(self, transport: asyncio.Transport, response: HTTPResponse) -> None:
        body = response.body if isinstance(response.body, bytes) else b""
        fields = response.headers
        headers = (fields.items() if isinstance(fields, Headers) else list(fields)) + [
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        try:
            head = encode_response_head(response.status, headers, response.reason)
        except ValueError:
            # A status, reason or field that would split the response (CR, LF ...): as an HTTP
            # handler's invalid response, a 500 rather than a connection left waiting.
            logger.exception("process_request returned an invalid response")
            head, body = INTERNAL_ERROR, b""
        transport.write(head + body)
        transport.close()

    def _switch(self, websocket: WebSocket, transport: asyncio.Transport, leftover: bytes) -> None:
        """Make ``websocket`` the transport's protocol and feed it what already arrived."""
        transport.set_protocol(websocket)
        websocket.connection_made(transport)
        if leftover:
            websocket.data_received(leftover)
        self.connections.add(websocket)

    async def _process_then_run(
        self, head: RequestHead, transport: asyncio.Transport, leftover: bytes
    ) -> None:
        """Run process_request (with open_timeout), then the handshake and the handler."""
        try:
            websocket = await self._process_then_switch(head, transport, leftover)
            if websocket is not None:
                await self._run_handler(websocket)
        finally:
            self._forget_task()

    async def _process_then_switch(
        self, head: RequestHead, transport: asyncio.Transport, leftover: bytes
    ) -> WebSocket | None:
        """Run process_request, then the handshake; return the switched WebSocket, or None."""
        assert self.process_request is not None
        try:
            async with asyncio.timeout(self.options.open_timeout):
                rejection = await self.process_request(
                    HTTPRequest(head, remote_address=_peer(transport))
                )
        except Exception:
            logger.exception("process_request failed")
            transport.write(simple_response(500, "internal server error"))
            transport.close()
            return None
        if rejection is not None:
            self._reject(transport, rejection)
            return None
        if transport.is_closing():
            return None
        websocket = self._handshake.accept(head, transport, self._timers)
        if websocket is None:
            return None
        self._switch(websocket, transport, leftover)
        transport.resume_reading()
        return websocket

    async def _run_handler(self, websocket: WebSocket) -> None:
        """Run the user's handler; close the connection when it returns or fails."""
        try:
            await self.handler(websocket)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("connection handler failed")
            if websocket.state is _OPEN:
                await websocket.close(1011, "internal server error")
        finally:
            try:
                if websocket.state is not _CLOSED:
                    await websocket.close()
            finally:
                self.connections.discard(websocket)
                self._forget_task()

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting connections and start closing open ones with 1001 (going away)."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        asyncio.get_running_loop().create_task(self._close_all(close_connections))

    async def _close_all(self, close_connections: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.close_timeout
        try:
            if close_connections:
                closers = [
                    ws.close(1001, "server shutting down")
                    for ws in list(self.connections)
                    if ws.state is _OPEN
                ]
                if closers:
                    await asyncio.gather(*closers, return_exceptions=True)
                for protocol in list(self._http_protocols):
                    protocol.close()
            if self._tasks:
                _, pending = await asyncio.wait(
                    list(self._tasks), timeout=self.options.close_timeout
                )
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1)
            if close_connections:
                await self._end_http_requests(deadline)
            if self._server is not None:
                await self._server.wait_closed()
        finally:
            self._closed.set()

    async def _end_http_requests(self, deadline: float) -> None:
        """Let HTTP requests in progress finish until ``deadline``, then drop them.

        From Python 3.12 asyncio.Server.wait_closed() waits for every connection, so an upload
        that stalls would otherwise hold the shutdown until its body_timeout.
        """
        loop = asyncio.get_running_loop()
        while self._http_protocols and loop.time() < deadline:
            await asyncio.sleep(0.05)  # a shutdown-only wait; connections leave the set
        for protocol in list(self._http_protocols):
            protocol.abort()

    async def wait_closed(self) -> None:
        """Wait until the server and every connection are closed."""
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Serve until close() is called (or the task is cancelled, which closes the server)."""
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            self.close()
            await asyncio.shield(self._closed.wait())
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _peer(transport: asyncio.BaseTransport) -> Any:
    return transport.get_extra_info("peername")


class serve:
    """Start a WebSocket server on host:port; use with ``async with`` or ``await``.

    ``handler(ws)`` runs once per connection; when it returns the connection is closed. An
    object with ``handle_http`` (such as framewire.http.App) also serves plain HTTP requests on
    the same port, and its ``process_request`` may reject upgrade requests.

    Keyword arguments (sizes in bytes, durations in seconds):
        ssl: an ssl.SSLContext for wss://.
        subprotocols, select_subprotocol: subprotocol negotiation.
        origins: allowed Origin header values (None in the list allows a missing Origin).
        compression: "deflate" (default) or None; or a DeflateConfig.
        max_message_size: largest message accepted (default 1 MiB; None: no limit).
        max_fragments: most frames per message (default derived from max_message_size).
        max_queue: messages buffered before reading pauses (16).
        max_queue_bytes: bytes buffered before reading pauses (4 x max_message_size, at
            least 1 MiB).
        write_limit: write-buffer high-water mark (64 KiB); send() waits above it.
        ping_interval, ping_timeout: keepalive (20, 20); None disables.
        open_timeout: handshake deadline (10); close_timeout: closing handshake deadline (10).
        http_handler: an async callable(Request) -> Response for non-upgrade requests.
        process_request: an async callable(Request) -> Response | None run on upgrade requests.
        http_limits: HTTPLimits for request parsing.
        extra_headers: more header fields for the 101 response.
        server_header: the Server field of responses ("framewire"); None leaves it out.
        sock: an already bound socket to listen on, instead of host and port.
        backlog: the listening socket's queue of connections not yet accepted (1024).
        max_connections: most open connections, HTTP and WebSocket together (10,000); past it
            a new connection gets 503 and is closed, and the others are served as before.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        http_handler: HTTPHandler | None = None,
        process_request: ProcessRequest | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        origins: Sequence[str | None] | None = None,
        http_limits: HTTPLimits | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        server_header: str | None = "framewire",
        backlog: int = 1024,
        max_connections: int = _CONNECTION_LIMITS.max_connections,
        **options: Any,
    ) -> None:
        if http_handler is None:
            http_handler = getattr(handler, "handle_http", None)
        if process_request is None:
            process_request = getattr(handler, "process_request", None)
        self.server = Server(
            handler,
            http_handler=http_handler,
            process_request=process_request,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            origins=origins,
            options=WebSocketOptions.from_kwargs(options),
            http_limits=http_limits,
            extra_headers=extra_headers,
            server_header=server_header,
            max_connections=max_connections,
        )
        self._host, self._port = host, port
        self._create_kwargs: dict[str, Any] = {"ssl": ssl, "backlog": backlog}
        if sock is not None:
            self._create_kwargs["sock"] = sock

    async def _start(self) -> Server:
        return await self.server.start(self._host, self._port, **self._create_kwargs)

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        await self.server.wait_closed()
