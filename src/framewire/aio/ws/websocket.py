"""WebSocket: one open connection, as the application uses it.

WebSocket adds the user API (recv, recv_stream, async iteration, send, ping, close ...) to its
protocol side, WebSocketProtocol (aio/ws/protocol.py), which the event loop drives. send() and
``__anext__``, the two calls of every message, come from WebSocketMethods
(aio/ws/websocket_methods.py, or its C twin), and fall back on _send() and _anext_general() here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable
from typing import Any

from framewire.aio.timers import Scheduler
from framewire.aio.ws.protocol import WebSocketProtocol
from framewire.aio.ws.socket_poller import SENT
from framewire.aio.ws.websocket_methods import Message, WebSocketMethods
from framewire.exceptions import ConnectionClosedOK
from framewire.sansio.connection import Connection, State
from framewire.sansio.headers import Headers
from framewire.sansio.payload_buffer import whole_payload

__all__ = ["Request", "WebSocket"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN, _CLOSED = State.OPEN, State.CLOSED

BytesLike = bytes | bytearray | memoryview


class Request:
    """The opening handshake's request, as the handler sees it on ``ws.request``.

    Attributes:
        path: the request target's path, still percent-encoded ("/chat").
        query: the part after "?", or "".
        headers: the request's header fields.
    """

    __slots__ = ("headers", "path", "query", "target")

    def __init__(self, target: str, headers: Headers) -> None:
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers

    def __repr__(self) -> str:
        return f"Request({self.target!r})"


class WebSocket(WebSocketMethods, WebSocketProtocol):
    """An open WebSocket connection.

    Iterate over it to receive messages (``str`` for text, ``bytes`` for binary) until a normal
    close; use send(), recv(), recv_stream(), ping() and close(). Built by serve() and connect().

    Args:
        connection: the sans-I/O state machine, after the handshake.
        request: the handshake request (server side), or the request that was sent (client).
        subprotocol: the negotiated subprotocol, or None.
        response_headers: the handshake response's header fields (client side), or None.
        max_queue: complete messages buffered before reading pauses.
        max_queue_bytes: bytes buffered before reading pauses (default: 4 x max_message_size,
            at least 1 MiB).
        write_limit: the transport's write-buffer high-water mark in bytes; send() waits above it.
        ping_interval: seconds between keepalive pings; None disables them.
        ping_timeout: seconds to wait for a keepalive pong before closing with 1011.
        close_timeout: seconds to wait for the closing handshake before dropping the connection.
        timers: what arms the connection's timers (default: the event loop; a server shares
            one FixedDelayTimers between its connections).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        request: Request | None = None,
        subprotocol: str | None = None,
        response_headers: Headers | None = None,
        max_queue: int = 16,
        max_queue_bytes: int | None = None,
        write_limit: int = 64 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        timers: Scheduler | None = None,
    ) -> None:
        WebSocketProtocol.__init__(
            self,
            connection,
            max_queue,
            max_queue_bytes,
            write_limit,
            ping_interval,
            ping_timeout,
            close_timeout,
            timers,
        )
        self.request = request
        self.response_headers = response_headers
        self.subprotocol = subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket gives it: ``(host, port)`` for TCP; None before
        the connection is made."""
        transport = self.transport
        return None if transport is None else transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket gives it; None before the connection is made."""
        transport = self.transport
        return None if transport is None else transport.get_extra_info("sockname")

    @property
    def state(self) -> State:
        """The connection's state: OPEN, CLOSING or CLOSED."""
        return self.connection.state

    @property
    def close_code(self) -> int | None:
        """The close code received from the peer; 1006 if it closed without one; None if open."""
        received = self.connection.close_received
        if received is not None:
            return received[0]
        return 1006 if self.connection.state is _CLOSED else None

    @property
    def close_reason(self) -> str | None:
        """The close reason received from the peer; None while open."""
        received = self.connection.close_received
        if received is not None:
            return received[1]
        return "" if self.connection.state is _CLOSED else None

    @property
    def buffered_amount(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    async def recv(self) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Raises:
            ConnectionClosedOK / ConnectionClosedError: the connection is closed.
            RuntimeError: another coroutine is already receiving.
        """
        piece = None if self._inbox.receiving else self._inbox.get_nowait()
        if piece is None:
            piece = await self._get_piece()
        data, is_text, last = piece
        if last:
            return _whole(data)
        return await self._recv_rest(data, is_text)

    async def _recv_rest(self, first: str | bytes | memoryview, is_text: bool) -> Message:
        parts: list[Any] = [first]
        while True:
            data, _, last = await self._get_piece()
            parts.append(data)
            if last:
                if is_text:
                    return "".join(parts)
                return whole_payload(parts) or b"".join(parts)

    async def _get_piece(self) -> tuple[str | bytes | memoryview, bool, bool]:
        """Wait for the next piece of a message; raise ConnectionClosed once none will come."""
        inbox = self._inbox
        if inbox.receiving:
            raise RuntimeError("another coroutine is already receiving from this WebSocket")
        inbox.receiving = True
        try:
            while True:
                piece = inbox.get_nowait()
                if piece is not None:
                    return piece
                if inbox.closed:
                    break
                await inbox.wait(self._loop)
        finally:
            inbox.receiving = False
        await self._finish_closing()
        raise self._closed_exception()

    async def _finish_closing(self) -> None:
        """Once the inbox is closed: send a close frame held back by a protocol failure, then
        let the TCP close finish so that close_code is final."""
        if self.connection.pending_failure is not None:
            self._apply_failure()
        # Bounded: whenever the inbox is closed, the closing handshake's timer is running, and
        # it drops the connection after close_timeout.
        if not self._closed:
            await self.wait_closed()

    async def recv_stream(self) -> AsyncIterator[Message]:
        """Yield the next message piece by piece as it arrives, with bounded memory.

        Text pieces are ``str`` (whole code points), binary pieces ``bytes``. Iteration ends
        with the message's last piece.
        """
        while True:
            data, _, last = await self._get_piece()
            yield _whole(data)
            if last:
                return

    def __aiter__(self) -> WebSocket:
        return self

    async def _anext_general(self) -> Message:
        """__anext__()'s general path: any message, any state, ConnectionClosedOK ends it."""
        inbox = self._inbox
        if inbox.closed and not inbox.has_pieces and not inbox.receiving:
            # The usual end, without raising ConnectionClosedOK only to catch it
            # (benchmarks/run.py, handshakes per second).
            if not self._closed or self.connection.pending_failure is not None:
                await self._finish_closing()  # a coroutine less when there is nothing to do
            if self._closed_ok():
                raise StopAsyncIteration
            raise self._closed_exception()
        try:
            piece = await self._get_piece()
            data, is_text, last = piece
            if last:
                return _whole(data)
            return await self._recv_rest(data, is_text)
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    def _send(
        self,
        message: Message | BytesLike | Iterable[Message] | AsyncIterable[Message],
        compress: bool,
    ) -> Coroutine[Any, Any, None]:
        """send() when send_message() declined: a whole ``str`` or ``bytes`` message of an
        open connection that need not wait (a compressed one, most often) is written now,
        without a coroutine of its own (benchmarks/run.py, compressed rows); everything else is
        the coroutine of _send_general()."""
        connection = self.connection
        kind = type(message)
        if (
            (kind is str or kind is bytes)
            and not self._writing_paused
            and connection.state is _OPEN
            and connection.close_sent is None
        ):
            try:
                must_wait = self._write_whole(message, compress)  # type: ignore[arg-type]
            except Exception as error:  # raised when awaited, as from the coroutine
                return _raise(error)
            if must_wait:
                return self.wait_drained()
            return SENT if SENT is not None else _done()
        return self._send_general(message, compress)

    def _write_whole(self, message: Message | BytesLike, compress: bool) -> bool:
        """Frame and write a whole message of an open connection; return whether the sender
        should now wait for the write buffer to drain."""
        connection = self.connection
        if not self._writing_paused:
            frame = connection.frame_now(message)  # type: ignore[arg-type]
            if frame is not None:
                self.write_frame(frame)
                return False  # as send_message(): no wait for what it queued itself
        if isinstance(message, str):
            connection.send_text(message, compress=compress)
        else:
            connection.send_binary(message, compress=compress)
        self.flush()
        return self._writing_paused

    async def _send_general(
        self,
        message: Message | BytesLike | Iterable[Message] | AsyncIterable[Message],
        compress: bool,
    ) -> None:
        connection = self.connection
        if connection.state is not _OPEN or connection.close_sent is not None:
            raise self._closed_exception()
        if isinstance(message, str | bytes | bytearray | memoryview):
            if self._write_whole(message, compress):
                await self.wait_drained()
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), compress)
        elif isinstance(message, Iterable):
            await self._send_fragments(_async_iter(message), compress)
        else:
            raise TypeError(f"cannot send {type(message).__name__}: use str, bytes or iterables")

    async def _send_fragments(self, fragments: AsyncIterator[Any], compress: bool) -> None:
        try:
            previous = await fragments.__anext__()
        except StopAsyncIteration:
            return
        is_text = isinstance(previous, str)
        started = False
        async for fragment in fragments:
            if isinstance(fragment, str) != is_text:
                raise TypeError("fragments of one message must all be str or all be bytes")
            self._send_fragment(previous, is_text, started, False, compress)
            started = True
            previous = fragment
            if self._writing_paused:
                await self.wait_drained()
        self._send_fragment(previous, is_text, started, True, compress)

    def _send_fragment(
        self, data: Any, is_text: bool, started: bool, fin: bool, compress: bool
    ) -> None:
        connection = self.connection
        if connection.close_sent is not None or connection.state is not _OPEN:
            raise self._closed_exception()
        if started:
            connection.send_continuation(data, fin=fin)
        elif is_text:
            connection.send_text(data, fin=fin, compress=compress)
        else:
            connection.send_binary(data, fin=fin, compress=compress)
        self.flush()

    async def wait_drained(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        if not self._writing_paused:
            return
        if self.transport is None or self.transport.is_closing():
            raise self._closed_exception()
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters += (waiter,)
        await waiter

    drain = wait_drained

    async def ping(self, data: str | BytesLike | None = None) -> float:
        """Send a ping and wait for the matching pong; return the round-trip time in seconds.

        Args:
            data: the payload (at most 125 bytes; str is UTF-8 encoded); random when None.
        """
        if data is None:
            payload = self._ping_tracker().new_payload()
        elif isinstance(data, str):
            payload = data.encode("utf-8")
        elif isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
        else:
            raise TypeError(f"ping payload must be str or bytes, not {type(data).__name__}")
        if self.connection.state is not _OPEN or self.connection.close_sent is not None:
            raise self._closed_exception()
        if len(payload) > 125:
            raise ValueError(f"ping payload of {len(payload)} bytes exceeds 125 bytes")
        future = self._ping_tracker().register(payload)
        self.connection.send_ping(payload)
        self.flush()
        return await future

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake and wait until the connection is closed.

        Waits at most close_timeout for the peer, then drops the connection.
        """
        connection = self.connection
        if connection.close_sent is None and connection.state is _OPEN:
            connection.send_close(code, reason)
            self.flush()
            self._start_close_timer()
        elif connection.state is not _CLOSED:
            self._start_closing_transport()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        # A list of Futures rather than an asyncio.Event: an idle connection then costs no
        # deque (benchmarks/run.py, memory per idle connection).
        if not self._closed:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._close_waiters += (waiter,)
            await waiter

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake."""
        self._abort()


def _whole(data: str | bytes | memoryview) -> Message:
    """Return a message piece as str or bytes: a view becomes bytes, without a copy when it is
    a whole PayloadBuffer."""
    if isinstance(data, memoryview):
        return whole_payload((data,)) or bytes(data)
    return data


async def _async_iter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _raise(error: Exception) -> None:
    raise error


async def _done() -> None:
    return None
