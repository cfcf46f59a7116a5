"""WebSocketProtocol: the protocol side of a WebSocket connection, under the user API.

The object is itself the transport's (buffered) protocol, so bytes go from the socket into the
loop's shared receive buffer, straight into the sans-I/O Connection, and events straight into the
Inbox: no task per connection or per frame. Timers (keepalive pings, the close timeout) are loop
callbacks, not tasks. After the first read, on asyncio's selector loop with the C accelerator,
the loop's Poller reads the socket instead of the transport (aio/ws/socket_poller.py).

This class holds what the event loop drives: the transport's callbacks, flow control both ways
and the closing handshake's TCP side; keepalive comes from its base Keepalive (aio/ws/keepalive.py).
WebSocket (aio/ws/websocket.py) derives from it and adds what the application calls; nothing here
calls up into it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from framewire.aio.receive_buffer import receive_buffer
from framewire.aio.timers import Scheduler, Timer, loop_of
from framewire.aio.ws.inbox import Inbox, InboxLike
from framewire.aio.ws.keepalive import Keepalive
from framewire.aio.ws.socket_poller import PolledSocket, closes_at_once, take_over_socket
from framewire.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from framewire.sansio.connection import Connection, Role, State
from framewire.sansio.events import ConnectionFailed, MessageChunk, Pong

__all__ = ["WebSocketProtocol"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_SERVER = Role.SERVER

logger = logging.getLogger("framewire")

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


class WebSocketProtocol(Keepalive, asyncio.BufferedProtocol):
    """The protocol side of a WebSocket: what the event loop, the transport and timers call.

    It reads into the sans-I/O Connection and queues messages in the Inbox, writes what the
    Connection queued, pauses and resumes both directions, closes the TCP connection when the
    closing handshake says so (RFC 6455 7.1.1) and sends keepalive pings. WebSocket derives from
    it; the arguments are WebSocket's, which documents them, passed by position (once per
    connection: benchmarks/harness/per_handshake.py counts 500 instructions less than keywords).
    """

    # WebSocketMethods' slots (the C type reads them from its struct): annotated, not assigned
    # here, so that no class attribute hides a slot of the class that derives from both.
    connection: Connection
    _polled: PolledSocket | None  # the loop's Poller reads the socket, if set
    _inbox: InboxLike
    _loop: asyncio.AbstractEventLoop

    # Defaults that are immutable live on the class: each connection stores only what changes
    # (benchmarks/run.py: handshakes per second, memory per idle connection).
    # The asyncio transport, once connected: read its state (is_closing(), its write buffer),
    # write through send(), flush() or write_frame(), which also serve the Poller's socket.
    transport: asyncio.Transport | None = None
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

    def __init__(
        self,
        connection: Connection,
        max_queue: int,
        max_queue_bytes: int | None,
        write_limit: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
        timers: Scheduler | None,
    ) -> None:
        self.connection = connection
        self._polled = None  # until the first read hands the socket to the Poller
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

    # ------------------------------------------------------------- the transport's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Attach the transport (called directly after a protocol switch)."""
        # Not an isinstance() check: uvloop's transports do not derive from asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
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
        transport = self.transport
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

    def try_send_now(self, message: str | bytes) -> bool:
        """Frame and send ``message`` at once if this connection can without queueing it (open,
        server side, uncompressed, nothing queued, under 64 KiB, its socket read by the C
        Poller); True when sent, else False having done nothing (use send() or write_frame()).

        A connection that has read nothing yet is handed to the Poller here: most receivers
        of a broadcast never send (benchmarks/run.py, broadcast rows).
        """
        if self._polled is None and self._may_poll and not self._closing_transport:
            self._start_polling()
        polled = self._polled
        return polled is not None and polled.send_message(self.connection, message)

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
        self.flush()
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
            self.flush()

    def eof_received(self) -> bool | None:
        """The peer closed its side: the state machine learns it; the transport closes."""
        self.connection.receive_eof()
        return None

    def poller_eof(self) -> None:
        """The loop's Poller read the end of the stream: as the transport does at EOF."""
        self._stop_polling()
        if not self.eof_received() and self.transport is not None:
            self.transport.close()

    def poller_error(self, exc: BaseException) -> None:
        """Reading failed or buffer_updated() raised: as the transport does on a fatal error."""
        self._stop_polling()
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": "Fatal error: protocol.buffer_updated() call failed.",
                    "exception": exc,
                    "transport": self.transport,
                    "protocol": self,
                }
            )
        if self.transport is not None:
            self.transport.abort()

    def _stop_polling(self) -> None:
        if self._polled is not None:
            self._polled.stop()
            self._polled = None

    def write_frame(self, frame: bytes) -> None:
        """Write ``frame``, a whole frame encoded for this connection, after everything written
        before; nothing once the transport is closing.

        For sending one frame to many connections, as broadcast() does. The caller vouches that
        it suits the connection: unmasked (server side), RSV1 only when permessage-deflate was
        negotiated with parameters that inflate it, and no fragmented message being sent
        (``connection.sending_opcode`` is None). Everything else goes through send().
        """
        polled = self._polled
        if polled is not None:
            # Stopped before the transport closes: a send() here cannot follow the close.
            polled.write(frame)
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

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
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            if self._polled is not None:
                self._polled.pause()
            else:
                self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and self._reading_paused:
            self._reading_paused = False
            if self._polled is not None:
                self._polled.resume()
            elif not self.transport.is_closing():
                self.transport.resume_reading()

    def flush(self) -> None:
        """Write what ``connection`` queued; close the transport when the closing handshake says.

        The methods of WebSocket call it themselves; call it after driving ``connection``
        directly (as broadcast() does with send_text() and fail()).
        """
        transport = self.transport
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
        transport = self.transport
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
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- closing

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
