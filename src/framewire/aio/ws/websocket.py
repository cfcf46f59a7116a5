"""WebSocket: one open connection, as an asyncio protocol, with the user-facing API.

The object is itself the transport's (buffered) protocol, so bytes go from the socket into the
loop's shared receive buffer, straight into the sans-I/O Connection, and events straight into the
Inbox: no task per connection or per frame. Timers (keepalive pings, the close timeout) are loop
callbacks, not tasks. After the first read, on asyncio's selector loop with the C accelerator,
the loop's Poller reads the socket instead of the transport (aio/ws/socket_poller.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

from framewire.aio.receive_buffer import receive_buffer
from framewire.aio.timers import Scheduler, Timer, loop_of
from framewire.aio.ws.inbox import Inbox, PyInbox
from framewire.aio.ws.keepalive import PingTracker
from framewire.aio.ws.socket_poller import SENT, PolledSocket, closes_at_once, take_over_socket
from framewire.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from framewire.sansio.connection import Connection, Role, State
from framewire.sansio.events import ConnectionFailed, MessageChunk, Pong
from framewire.sansio.headers import Headers
from framewire.sansio.payload_buffer import whole_payload
from framewire.sansio.speedups import c_twin

__all__ = ["Request", "WebSocket"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_SERVER = Role.SERVER

logger = logging.getLogger("framewire")

Message = str | bytes
BytesLike = bytes | bytearray | memoryview
_OK_CODES = frozenset({1000, 1001, 1005})
_NO_JOIN_SIZE = 256 * 1024
_JOIN_BELOW = 4096  # received pieces smaller than this are joined within a read
_FAILURE_GRACE = 1.0  # seconds the application gets to read messages before a protocol error
# Scratch list for buffer_updated's fast path; emptied before anything else can run.
_messages: list[tuple[str | bytes, bool, bool]] = []


def _joined(pieces: list[Any], is_text: bool) -> Any:
    """Return the pieces of one message as one (the only piece itself when there is one)."""
    if len(pieces) == 1:
        return pieces[0]
    if is_text:
        return "".join(pieces)
    return b"".join(pieces)


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


class PyWebSocketMethods:
    """WebSocket.send() and ``__anext__``: the two calls of every message in a handler.

    WebSocket derives from this class, or from its C twin ``framewire._speedups.WebSocketMethods``
    when the accelerator was built (Linux): as Python methods their frames cost about a third of
    the server's own instructions per message (benchmarks/run.py, 64-byte round trips). Both
    declare the state they read as slots (the C one reads them from its struct) and what they
    call back as methods that WebSocket overrides (_send, _anext_general).
    """

    __slots__ = ("_inbox", "_loop", "_polled", "connection")

    _polled: PolledSocket | None  # the loop's Poller reads the socket, if set
    connection: Connection
    _inbox: PyInbox  # or the C Inbox, its twin
    _loop: asyncio.AbstractEventLoop

    def send(
        self,
        message: Message | BytesLike | Iterable[Message] | AsyncIterable[Message],
        *,
        compress: bool = True,
    ) -> Coroutine[Any, Any, None]:
        """Send a message; waits while the write buffer is above its high-water mark.

        Use it as a coroutine: ``await ws.send(message)``, or hand it to asyncio.create_task().
        A small message may be written to the socket during the call itself; the returned
        coroutine then has nothing left to do.

        Args:
            message: ``str`` (text), bytes-like (binary), or an iterable / async iterable of
                ``str`` or bytes, sent as one fragmented message of that type.
            compress: False to send this message uncompressed even when deflate was negotiated.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: the message is of an unsupported type.
        """
        # Not a coroutine function: the commonest send (benchmarks/run.py, round trips) costs
        # one C call and no coroutine (_speedups_c/direct_writer.c).
        polled = self._polled
        if polled is not None and polled.send_message(self.connection, message):
            return cast(Coroutine[Any, Any, None], SENT)
        return self._send(message, compress)

    def _send(
        self,
        message: Message | BytesLike | Iterable[Message] | AsyncIterable[Message],
        compress: bool,
    ) -> Coroutine[Any, Any, None]:
        """send()'s general path, as a coroutine: WebSocket overrides it."""
        raise NotImplementedError(f"{type(self).__name__} must override _send()")

    def _anext_general(self) -> Coroutine[Any, Any, Message]:
        """__anext__'s general path, as a coroutine (the Inbox's anext() calls it): WebSocket
        overrides it."""
        raise NotImplementedError(f"{type(self).__name__} must override _anext_general()")

    def __anext__(self) -> Awaitable[Message]:
        """Return the next message; stop iterating on a normal close (1000, 1001, 1005)."""
        # Not a coroutine function: the Inbox returns the awaitable, which takes a queued
        # message or waits for one without a coroutine of its own (benchmarks/run.py, round
        # trips), and leaves everything else to _anext_general().
        return self._inbox.anext(self, self._loop)


# What WebSocket derives from: the C twin when there is one, else the Python one.
if TYPE_CHECKING:
    _WebSocketMethods = PyWebSocketMethods
else:
    _WebSocketMethods = c_twin("WebSocketMethods") or PyWebSocketMethods


class WebSocket(_WebSocketMethods, asyncio.BufferedProtocol):
    """An open WebSocket connection.

    Iterate over it to receive messages (``str`` for text, ``bytes`` for binary) until a normal
    close; use send(), recv(), recv_stream(), ping() and close(). Built by serve() and connect().

    Args:
        connection: the sans-I/O state machine, after the handshake.
        request: the handshake request (server side), or the request that was sent (client).
        subprotocol: the negotiated subprotocol, or None.
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

    # Defaults that are immutable live on the class: each connection stores only what changes
    # (benchmarks/run.py: handshakes per second, memory per idle connection).
    _transport: asyncio.Transport | None = None
    _may_poll = True  # until the first read: then hand the socket to the Poller, if it can
    _reading_paused = False
    _writing_paused = False
    _drain_waiters: tuple[asyncio.Future[None], ...] = ()
    _closed = False
    _close_waiters: tuple[asyncio.Future[None], ...] = ()
    _close_exc: ConnectionClosed | None = None
    _close_timeout_handle: Timer | None = None
    _abort_detail = ""
    _closing_transport = False
    _failure_handle: Timer | None = None
    _pings: PingTracker | None = None  # made by the first ping: see _ping_tracker()
    _first_keepalive: Timer | None = None

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
        self.connection = connection
        self._polled = None  # until the first read hands the socket to the Poller
        self.request = request
        self.response_headers = response_headers
        self.subprotocol = subprotocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.write_limit = write_limit
        max_size = connection.limits.max_message_size
        if max_queue_bytes is None:
            max_queue_bytes = max(1 << 20, 4 * (max_size or (1 << 20)))
        self._loop = loop_of(timers)
        self._timers: Scheduler = timers or self._loop
        self._buffer = receive_buffer(self._loop)
        self._inbox = Inbox(max_queue, max_queue_bytes, self._pause_reading, self._resume_reading)

    # ------------------------------------------------------------- protocol side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Attach the transport (called directly after a protocol switch)."""
        # Not an isinstance() check: uvloop's transports do not derive from asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        high = self.write_limit
        try:
            limits = transport.get_write_buffer_limits()
        except NotImplementedError:  # optional for transports (asyncio.WriteTransport)
            limits = None
        if limits != (high // 4, high):  # asyncio's default: 64 KiB, so nothing to set
            transport.set_write_buffer_limits(high=high)
        if self.ping_interval is not None:
            # Only the first keepalive timer is ours; the PingTracker it makes arms the next.
            # Most connections never live that long, nor ping (benchmarks/run.py, handshakes).
            self._first_keepalive = self._timers.call_later(self.ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        self._first_keepalive = None
        self._ping_tracker().keepalive()

    def _ping_tracker(self) -> PingTracker:
        pings = self._pings
        if pings is None:
            pings = self._pings = PingTracker(
                self._send_ping_now,
                self._keepalive_timed_out,
                self.ping_interval,
                self.ping_timeout,
                self._loop,
                self._timers,
            )
        return pings

    def get_buffer(self, sizehint: int) -> memoryview:
        """The transport reads into the loop's shared receive buffer."""
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` arrived in the receive buffer: consume them before returning."""
        data = self._buffer[:nbytes]
        messages = _messages
        try:
            used = self.connection.receive_messages(data, messages)
            if used < nbytes:
                if messages:
                    self._inbox.take_messages(messages, False)
                self.data_received(data[used:])  # wakes the reader once it is all processed
            elif messages:
                self._inbox.take_messages(messages, True)
        except BaseException:
            messages.clear()  # shared by every connection: never leave one's messages behind
            raise
        if self._may_poll and not self._closing_transport:
            self._start_polling()

    def _start_polling(self) -> None:
        """Hand the socket to the loop's Poller (aio/ws/socket_poller.py) when it can take it.

        Done after the first read rather than at the handshake: a connection that closes
        straight away (a probe, a client that gives up) then costs no extra system calls
        (benchmarks/run.py, handshakes: about 5 % of the server's time per handshake).
        """
        self._may_poll = False
        transport = self._transport
        if transport is not None:
            connection = self.connection
            receiver = (
                connection,
                self._inbox,
                connection.role is _SERVER,  # a server's frames arrive masked
                connection.limits.max_message_size,
            )
            self._polled = take_over_socket(self._loop, transport, self, receiver)
            if self._polled is not None and self._reading_paused:
                self._polled.pause()

    def data_received(self, data: bytes | memoryview) -> None:
        """Feed received bytes to the state machine, act on the events, wake the reader.

        ``data`` may be a view of the shared receive buffer: the Connection copies what it keeps.
        """
        connection = self.connection
        connection.receive_data(data)
        inbox = self._inbox
        # Small consecutive pieces of one message in a read are queued as one: a message sent
        # as thousands of tiny fragments then costs a few queued objects per read, not one per
        # fragment (ws CVE-2026-48779). Large pieces stream as they come (recv_stream()).
        pending: list[Any] = []
        pending_size = 0
        pending_is_text = False
        for event in connection.events_received():
            if type(event) is MessageChunk:
                size = len(event.data)
                if size >= _JOIN_BELOW or (event.last and not pending):
                    if pending:
                        inbox.put(_joined(pending, pending_is_text), pending_is_text, False)
                        pending, pending_size = [], 0
                    inbox.put(event.data, event.is_text, event.last)
                    continue
                pending.append(event.data)
                pending_size += size
                pending_is_text = event.is_text
                if event.last or pending_size >= _JOIN_BELOW:
                    inbox.put(_joined(pending, pending_is_text), pending_is_text, event.last)
                    pending, pending_size = [], 0
                continue
            if pending:
                inbox.put(_joined(pending, pending_is_text), pending_is_text, False)
                pending, pending_size = [], 0
            if type(event) is Pong:
                if self._pings is not None:  # else unsolicited: nothing was pinged
                    self._pings.pong_received(event.payload)
            elif type(event) is ConnectionFailed:
                logger.debug("failing connection: %s %s", event.code, event.reason)
                self._inbox.close()
        if pending:
            inbox.put(_joined(pending, pending_is_text), pending_is_text, False)
        if connection.pending_failure is not None:
            self._defer_failure()
        self._flush()
        inbox.wake_reader()

    def _defer_failure(self) -> None:
        """The peer broke the protocol after sending messages the application has not read.

        Reading stops now; the close frame goes out once the application has taken the queued
        messages (and so could answer them, in order), or after a short grace period.
        """
        self._inbox.close()
        if not self._inbox.has_pieces:
            self._apply_failure()
        elif self._failure_handle is None:
            self._failure_handle = self._timers.call_later(
                min(self.close_timeout, _FAILURE_GRACE), self._apply_failure
            )

    def _apply_failure(self) -> None:
        if self.connection.pending_failure is not None:
            self.connection.apply_pending_failure()
            self._flush()

    def eof_received(self) -> bool | None:
        """The peer closed its side: the state machine learns it; the transport closes."""
        self.connection.receive_eof()
        return None

    def poller_eof(self) -> None:
        """The loop's Poller read the end of the stream: as the transport does at EOF."""
        self._stop_polling()
        if not self.eof_received() and self._transport is not None:
            self._transport.close()

    def poller_error(self, exc: BaseException) -> None:
        """Reading failed or buffer_updated() raised: as the transport does on a fatal error."""
        self._stop_polling()
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": "Fatal error: protocol.buffer_updated() call failed.",
                    "exception": exc,
                    "transport": self._transport,
                    "protocol": self,
                }
            )
        if self._transport is not None:
            self._transport.abort()

    def _stop_polling(self) -> None:
        if self._polled is not None:
            self._polled.stop()
            self._polled = None

    def _write(self, data: bytes) -> None:
        """Write ``data`` after everything written before, unless the transport is closing."""
        polled = self._polled
        if polled is not None:
            # Stopped before the transport closes: a send() here cannot follow the close.
            polled.write(data)
        elif self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone: wake everyone who waits and cancel the timers."""
        self._stop_polling()
        if self.connection.state is not _CLOSED:
            self.connection.receive_eof()
        for handle in (self._close_timeout_handle, self._failure_handle):
            if handle is not None:
                handle.cancel()
        # Not closed when the peer's close frame arrived: a reader would then only wait for
        # this moment (_finish_closing), and is woken once instead of twice
        # (benchmarks/run.py, handshakes per second).
        self._inbox.close()
        if self._first_keepalive is not None:
            self._first_keepalive.cancel()
        if self._pings is not None or self._drain_waiters:
            # Only made when someone gets it (benchmarks/run.py, handshakes per second).
            closed = self._closed_exception()
            if self._pings is not None:
                self._pings.close(closed)
            self._wake_drain_waiters(closed)
        self._closed = True
        waiters, self._close_waiters = self._close_waiters, ()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        """The transport's write buffer passed its high-water mark."""
        self._writing_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""
        self._writing_paused = False
        self._wake_drain_waiters(None)

    def _wake_drain_waiters(self, exc: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, ()
        for waiter in waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
                    waiter.exception()

    def _pause_reading(self) -> None:
        if self._transport is not None and not self._reading_paused:
            self._reading_paused = True
            if self._polled is not None:
                self._polled.pause()
            else:
                self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._transport is not None and self._reading_paused:
            self._reading_paused = False
            if self._polled is not None:
                self._polled.resume()
            elif not self._transport.is_closing():
                self._transport.resume_reading()

    def _flush(self) -> None:
        """Write what the state machine queued; close the transport when it is time."""
        transport = self._transport
        if transport is None:
            return
        connection = self.connection
        chunks = connection.data_to_send()
        if chunks and not transport.is_closing():
            write = transport.write if self._polled is None else self._polled.write
            if len(chunks) == 1:
                write(chunks[0])
            elif len(chunks[-1]) >= _NO_JOIN_SIZE:
                # Joining copies everything first; for a large payload one more send() for the
                # small header is cheaper (benchmarks/run.py, 1 MiB echo).
                for chunk in chunks:
                    write(chunk)
            else:
                # Not transport.writelines(): from Python 3.12 asyncio's selector transport
                # queues what it cannot send there without calling pause_writing(), so send()
                # would never wait for a peer that stops reading. On 3.11 writelines() was this
                # same join.
                write(b"".join(chunks))
        if connection.close_sent is not None and connection.close_expected():
            self._start_closing_transport()

    def _start_closing_transport(self) -> None:
        """Close the TCP connection per RFC 6455 7.1.1, with a timeout before aborting."""
        transport = self._transport
        if transport is None or self._closing_transport:
            return
        self._closing_transport = True
        if self.connection.failure is not None and transport.can_write_eof():
            # Closing a socket with unread input makes the kernel send RST, which can destroy
            # the close frame before the peer reads it. Send FIN instead and drain (and drop)
            # the peer's remaining bytes until it closes or close_timeout passes.
            transport.write_eof()
            self._resume_reading()
        elif self.connection.role is _SERVER or self.connection.failure is not None:
            self._stop_polling()  # as the transport stops reading when it closes
            transport.close()
            if closes_at_once(transport):
                return  # no timer to arm and cancel (benchmarks/run.py, handshakes per second)
        # The client waits for the server to close first (RFC 6455 7.1.1); either way, a peer
        # that does not finish within close_timeout is dropped.
        self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self._close_timeout_handle is None:
            self._close_timeout_handle = self._timers.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        self._stop_polling()
        if self._transport is not None:
            self._transport.abort()

    # ---------------------------------------------------------------- keepalive

    def _send_ping_now(self, payload: bytes) -> bool:
        connection = self.connection
        if connection.state is not _OPEN or connection.close_sent is not None:
            return False
        connection.send_ping(payload)
        self._flush()
        return True

    def _keepalive_timed_out(self) -> None:
        detail = (
            f"keepalive ping timeout: no pong within {self.ping_timeout} s; the peer's event loop "
            "may be blocked, or the network link is lost"
        )
        logger.info("%s (%s)", detail, self.remote_address)
        self._abort_detail = detail
        if self.connection.close_sent is None and self.connection.state is _OPEN:
            self.connection.fail(1011, "keepalive ping timeout")
            self._flush()
        self._abort()

    # ---------------------------------------------------------------- user API

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket gives it: ``(host, port)`` for TCP; None before
        the connection is made."""
        transport = self._transport
        return None if transport is None else transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket gives it; None before the connection is made."""
        transport = self._transport
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
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    def _closed_ok(self) -> bool:
        """Whether the close so far is a normal one: ConnectionClosedOK, not ...Error."""
        if self._close_exc is not None:
            return isinstance(self._close_exc, ConnectionClosedOK)
        connection = self.connection
        received, sent = connection.close_received, connection.close_sent
        return (
            received is not None
            and received[0] in _OK_CODES
            and (sent is None or sent[0] in _OK_CODES)
            and connection.failure is None
        )

    def _closed_exception(self) -> ConnectionClosed:
        if self._close_exc is not None:
            return self._close_exc
        connection = self.connection
        received = connection.close_received
        code, reason = received if received is not None else (1006, "")
        detail = self._abort_detail
        if connection.failure is not None:
            detail = detail or f"sent {connection.failure.code}: {connection.failure.reason}"
        cls = ConnectionClosedOK if self._closed_ok() else ConnectionClosedError
        exc = cls(code, reason, detail)
        if self.connection.state is _CLOSED:
            self._close_exc = exc
        return exc

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

    async def _send(
        self,
        message: Message | BytesLike | Iterable[Message] | AsyncIterable[Message],
        compress: bool,
    ) -> None:
        connection = self.connection
        if not self._writing_paused:
            frame = connection.frame_now(message)  # type: ignore[arg-type]
            if frame is not None:
                self._write(frame)
                return
        if connection.state is not _OPEN or connection.close_sent is not None:
            raise self._closed_exception()
        if isinstance(message, str):
            connection.send_text(message, compress=compress)
        elif isinstance(message, bytes | bytearray | memoryview):
            connection.send_binary(message, compress=compress)
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), compress)
            return
        elif isinstance(message, Iterable):
            await self._send_fragments(_async_iter(message), compress)
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}: use str, bytes or iterables")
        self._flush()
        if self._writing_paused:
            await self.wait_drained()

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
        self._flush()

    async def wait_drained(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        if not self._writing_paused:
            return
        if self._transport is None or self._transport.is_closing():
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
        self._flush()
        return await future

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake and wait until the connection is closed.

        Waits at most close_timeout for the peer, then drops the connection.
        """
        connection = self.connection
        if connection.close_sent is None and connection.state is _OPEN:
            connection.send_close(code, reason)
            self._flush()
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
