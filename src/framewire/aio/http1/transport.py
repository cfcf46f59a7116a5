"""TransportProtocol: the transport plumbing under HTTP1ServerProtocol.

It owns what is not HTTP: write-side flow control (pause_writing / resume_writing and an
awaitable drain), read-side pausing for several independent reasons (a full body buffer,
pipelined bytes), one timer at a time, and the lingering close.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import cast

from framewire.aio.receive_buffer import receive_buffer
from framewire.aio.timers import Scheduler, Timer, loop_of

__all__ = ["State", "TransportProtocol"]


class State(enum.Enum):
    """Where an HTTP/1.1 server connection is."""

    WAITING = "waiting for a request head"
    BUSY = "handling a request"
    HANDED_OFF = "handed to the upgrade handler"
    CLOSED = "closed"


# Read per connection: see _OPEN in sansio/connection.py.
_HANDED_OFF, _CLOSED = State.HANDED_OFF, State.CLOSED


class TransportProtocol(asyncio.BufferedProtocol):
    """Transport plumbing for a server connection; subclasses add the protocol.

    Reads go into the event loop's shared receive buffer (aio/receive_buffer.py) and reach
    data_received() as bytes of exactly what arrived: a plain Protocol would get them from
    ``recv(256 KiB)``, a 256 KiB allocation per read that glibc may serve with mmap, mremap and
    munmap (strace of benchmarks/run.py's handshake scenario: three system calls per request).
    """

    # Defaults that are immutable live on the class: a connection stores only what changes
    # (benchmarks/run.py, handshakes per second).
    _state = State.WAITING
    _transport: asyncio.Transport | None = None
    _eof = False
    _timer: Timer | None = None
    _timer_kind = ""
    _read_pause_reasons: frozenset[str] = frozenset()  # a new set at each change (rare)
    _write_paused = False
    _drain_waiter: asyncio.Future[None] | None = None
    _linger_timeout = 2.0  # HTTPLimits.linger_timeout; the subclass sets it

    def __init__(self, timers: Scheduler | None = None) -> None:
        self._loop = loop_of(timers)
        self._timers: Scheduler = timers or self._loop
        self._receive_buffer = receive_buffer(self._loop)

    def get_buffer(self, sizehint: int) -> memoryview:
        """The transport reads into the loop's shared receive buffer."""
        return self._receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """Hand what arrived to data_received(), copied out of the shared buffer."""
        self.data_received(bytes(self._receive_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Handle received bytes (the subclass's protocol)."""
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # Not an isinstance() check: uvloop's transports do not derive from asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport

    def pause_writing(self) -> None:
        """Stop streaming response bodies until the write buffer drains."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """Resume streaming response bodies."""
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def transport(self) -> asyncio.Transport:
        """The transport of this connection."""
        assert self._transport is not None
        return self._transport

    def write(self, data: bytes) -> None:
        """Write bytes unless the connection is closing."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def wait_drained(self) -> None:
        """Wait until the write buffer is below its high-water mark.

        Raises:
            ConnectionResetError: the connection is closed.
        """
        transport = self._transport
        if self._state is _CLOSED or transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._write_paused:
            waiter = self._loop.create_future()
            self._drain_waiter = waiter
            try:
                await waiter
            finally:
                self._drain_waiter = None

    def _fail_drain_waiter(self, error: Exception) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
            waiter.exception()  # nobody may be waiting any more: mark it retrieved

    def _set_reading_paused(self, reason: str, paused: bool) -> None:
        if not paused and not self._read_pause_reasons:
            return  # the commonest call, twice per request: nothing to resume
        transport = self._transport
        if transport is None or self._state in (_HANDED_OFF, _CLOSED):
            return
        reasons = self._read_pause_reasons
        was_paused = bool(reasons)
        reasons = reasons | {reason} if paused else reasons - {reason}
        self._read_pause_reasons = reasons
        now_paused = bool(reasons)
        if now_paused != was_paused and not transport.is_closing():
            if now_paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _start_timer(self, delay: float, callback: Callable[[], None], kind: str = "") -> None:
        self._cancel_timer()
        self._timer = self._timers.call_later(delay, callback)
        self._timer_kind = kind

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = ""

    def _close_idle(self) -> None:
        self._timer = None
        self._close_transport(linger=False)

    def _close_transport(self, *, linger: bool = True) -> None:
        """Close the connection; with ``linger``, half-close first and drain what still arrives.

        Closing a socket with unread bytes makes the kernel send RST, which can destroy the
        response (a 413 or 400) before the client reads it; so we shut down our side, discard
        input until the client closes, and close for good after HTTPLimits.linger_timeout.
        """
        self._cancel_timer()
        if self._state in (_HANDED_OFF, _CLOSED):
            return
        self._state = _CLOSED
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if linger and not self._eof and transport.can_write_eof():
            self._read_pause_reasons = frozenset()
            transport.resume_reading()
            transport.write_eof()
            self._timer = self._timers.call_later(self._linger_timeout, transport.close)
        else:
            transport.close()
