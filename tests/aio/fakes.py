"""In-memory fakes for the asyncio layer's tests: a manual clock and a transport.

Timers and flow control are tested without sockets and without waiting:

- ManualClock is the clock and the timer queue. It moves only when the test calls advance(),
  which runs every callback that falls due, each at its own deadline. Pass it as ``timers=``
  (WebSocket, HTTP1ServerProtocol, PingTracker all take a Scheduler), or as the loop of a
  FixedDelayTimers, whose asyncio timers it then holds. It is also a plain ``clock()`` callable
  (the chat Hub's rate and typing limits take one).
- FakeTransport stands in for asyncio's socket transport: it records what is written, holds it
  in a write buffer while the peer does not read (calling pause_writing() / resume_writing()
  at its water marks, as asyncio does), delivers bytes only while reading is not paused, and
  calls connection_lost() in the next loop turn after close() or abort().
- WebSocketPeer is the other end of a WebSocket on a FakeTransport: a sans-I/O client
  Connection that reads what the WebSocket wrote and answers pings on its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from framewire.aio.ws.options import WebSocketOptions
from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import Event, Ping

__all__ = ["FakeTransport", "ManualClock", "ManualTimer", "WebSocketPeer", "open_websocket"]


class ManualTimer:
    """One timer armed on a ManualClock; cancel() it as an asyncio.TimerHandle."""

    __slots__ = ("_cancelled", "args", "callback", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self._cancelled = False

    def cancel(self) -> None:
        """Do not call the callback (does nothing once it was called)."""
        self._cancelled = True

    def cancelled(self) -> bool:
        """True once cancelled."""
        return self._cancelled

    def __repr__(self) -> str:
        state = " cancelled" if self._cancelled else ""
        return f"<ManualTimer at {self.when} {self.callback!r}{state}>"


class ManualClock:
    """A monotonic clock, in seconds, with a timer queue; both move only in advance().

    Args:
        start: the time it shows at first.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._queue: list[tuple[float, int, ManualTimer]] = []
        self._order = itertools.count()  # timers of one deadline run in the order armed
        self.calls = 0  # callbacks run so far
        self.reports: list[dict[str, Any]] = []  # what call_exception_handler() was given

    # The clock.

    def time(self) -> float:
        """The current time (as loop.time())."""
        return self.now

    def __call__(self) -> float:
        """The current time (as time.monotonic())."""
        return self.now

    # The timers: a Scheduler, and the part of an event loop that FixedDelayTimers uses.

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> ManualTimer:
        """Call ``callback(*args)`` once the clock reaches ``when``."""
        timer = ManualTimer(when, callback, args)
        heapq.heappush(self._queue, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> ManualTimer:
        """Call ``callback(*args)`` ``delay`` seconds from now."""
        return self.call_at(self.now + delay, callback, *args)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Keep what would go to the loop's exception handler, in ``reports``."""
        self.reports.append(context)

    def pending(self) -> list[ManualTimer]:
        """The armed timers, earliest first (cancelled ones left out)."""
        return [timer for _, _, timer in sorted(self._queue) if not timer.cancelled()]

    def advance(self, seconds: float) -> int:
        """Move the clock ``seconds`` ahead, running every callback that falls due meanwhile.

        Each callback runs with the clock at its own deadline; timers armed by a callback run
        too when they fall due within the same advance. An exception from a callback
        propagates (a test would rather see it than have it logged).

        Returns:
            How many callbacks ran.
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back {-seconds} s")
        target = self.now + seconds
        ran = 0
        queue = self._queue
        while queue and queue[0][0] <= target:
            when, _, timer = heapq.heappop(queue)
            if timer.cancelled():
                continue
            self.now = max(self.now, when)
            timer.cancel()  # called: as a TimerHandle, it can no longer be cancelled usefully
            ran += 1
            self.calls += 1
            timer.callback(*timer.args)
        self.now = target
        return ran


class FakeTransport(asyncio.Transport):
    """An in-memory transport for one protocol; the test plays the network and the peer.

    Args:
        protocol: gets connection_made() now, then what a socket transport would call.
        peer_reads: False for a peer that does not read: writes stay in the write buffer
            until the test calls send_buffered().
        high_water: write-buffer size above which pause_writing() is called, in bytes;
            resume_writing() is called at a quarter of it or less (asyncio's default).
    """

    def __init__(
        self,
        protocol: asyncio.BaseProtocol,
        *,
        peer_reads: bool = True,
        high_water: int = 64 * 1024,
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self.protocol = protocol
        self.peer_reads = peer_reads
        self.high_water = high_water
        self.low_water = high_water // 4
        self.write_calls = 0
        self.sent = bytearray()  # written and "on the wire": take() hands it to the peer
        self.buffered = bytearray()  # written, held while the peer does not read
        self.unread = bytearray()  # from the peer, held while reading is paused
        self.reading = True
        self.reading_pauses = 0  # pause_reading() calls that paused
        self.writing_paused = False
        self.writing_pauses = 0  # pause_writing() calls made
        self.closing = False
        self.aborted = False
        self.eof_written = False
        self.lost = False
        self._lost_scheduled = False
        protocol.connection_made(self)

    # What the protocol calls.

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """A peer and a local address; no socket (so nothing takes the socket over)."""
        return {"peername": ("127.0.0.1", 50001), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Put ``data`` on the wire, or in the write buffer while the peer does not read."""
        if self.closing:
            raise AssertionError("write() after close() or abort()")
        self.write_calls += 1
        if self.peer_reads and not self.buffered:
            self.sent += data
            return
        self.buffered += data
        if not self.writing_paused and len(self.buffered) > self.high_water:
            self.writing_paused = True
            self.writing_pauses += 1
            self.protocol.pause_writing()  # type: ignore[attr-defined]

    def get_write_buffer_size(self) -> int:
        """Bytes written and not yet on the wire."""
        return len(self.buffered)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) water marks."""
        return self.low_water, self.high_water

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks as asyncio does (low defaults to a quarter of high)."""
        self.high_water = 64 * 1024 if high is None else high
        self.low_water = self.high_water // 4 if low is None else low

    def can_write_eof(self) -> bool:
        """True: the fake supports half-closing."""
        return True

    def write_eof(self) -> None:
        """Half-close: note it."""
        self.eof_written = True

    def pause_reading(self) -> None:
        """Deliver nothing more until resume_reading()."""
        if self.reading:
            self.reading = False
            self.reading_pauses += 1

    def resume_reading(self) -> None:
        """Deliver again, starting with what arrived meanwhile."""
        if not self.reading:
            self.reading = True
            if self.unread and not self.closing:
                data, self.unread = bytes(self.unread), bytearray()
                self.feed(data)

    def is_reading(self) -> bool:
        """Whether bytes from the peer are delivered."""
        return self.reading and not self.closing

    def is_closing(self) -> bool:
        """True once close() or abort() was called."""
        return self.closing

    def close(self) -> None:
        """Close once the write buffer is on the wire (at once if it is empty)."""
        self.closing = True
        if not self.buffered:
            self._schedule_connection_lost()

    def abort(self) -> None:
        """Close at once, dropping the write buffer."""
        self.closing = True
        self.aborted = True
        self.buffered.clear()
        self._schedule_connection_lost()

    def _schedule_connection_lost(self) -> None:
        # As asyncio's transports: connection_lost() comes in a later loop turn.
        if not self._lost_scheduled:
            self._lost_scheduled = True
            self._loop.call_soon(self._connection_lost)

    def _connection_lost(self) -> None:
        self.lost = True
        self.protocol.connection_lost(None)

    # What the test calls, as the network and the peer.

    def feed(self, data: bytes) -> None:
        """Bytes arrive from the peer: delivered now, or kept while reading is paused."""
        if self.closing:
            return  # a closed transport reads nothing
        if not self.reading:
            self.unread += data
            return
        protocol = self.protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view and self.reading and not self.closing:
                buffer = protocol.get_buffer(len(view))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                view = view[size:]
                protocol.buffer_updated(size)
            if view and not self.closing:
                self.unread += view
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def feed_eof(self) -> None:
        """The peer half-closes; close unless the protocol keeps its side open."""
        if not self.protocol.eof_received():  # type: ignore[attr-defined]
            self.close()

    def take(self) -> bytes:
        """Return (and forget) what is on the wire: what the peer reads next."""
        data, self.sent = bytes(self.sent), bytearray()
        return data

    def send_buffered(self, size: int | None = None) -> None:
        """The network takes ``size`` bytes of the write buffer (default: all of it)."""
        size = len(self.buffered) if size is None else size
        self.sent += self.buffered[:size]
        del self.buffered[:size]
        if self.writing_paused and len(self.buffered) <= self.low_water:
            self.writing_paused = False
            self.protocol.resume_writing()  # type: ignore[attr-defined]
        if self.closing and not self.buffered:
            self._schedule_connection_lost()


class WebSocketPeer:
    """The client at the other end of a WebSocket on a FakeTransport (sans-I/O)."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.connection = Connection(Role.CLIENT)
        self.pings_received = 0
        self.pongs_sent = 0

    def receive(self) -> list[Event]:
        """Read what the WebSocket wrote; return the events (pings are answered by flush())."""
        self.connection.receive_data(self.transport.take())
        events = self.connection.events_received()
        pings = sum(1 for event in events if type(event) is Ping)
        self.pings_received += pings
        self.pongs_sent += pings  # the Connection queued a pong for each
        return events

    def flush(self) -> None:
        """Send what the peer's Connection queued (pongs, messages, a close)."""
        data = b"".join(self.connection.data_to_send())
        if data:
            self.transport.feed(data)

    def answer(self) -> list[Event]:
        """receive(), then flush(): a peer that reads and answers."""
        events = self.receive()
        self.flush()
        return events

    def send_pong(self, payload: bytes) -> None:
        """Send an unsolicited pong, or one that answers a ping late."""
        self.connection.send_pong(payload)
        self.flush()


def open_websocket(
    clock: ManualClock, *, peer_reads: bool = True, **options: Any
) -> tuple[WebSocket, FakeTransport, WebSocketPeer]:
    """Return a server-side WebSocket made as serve() makes it (WebSocketOptions), on a
    FakeTransport, with ``clock`` as its timers, and the peer at the other end.

    Args:
        clock: the connection's timers.
        peer_reads: see FakeTransport.
        options: WebSocketOptions fields (compression defaults to None here).
    """
    options.setdefault("compression", None)
    settings = WebSocketOptions(**options)
    connection = settings.make_connection(Role.SERVER, None)
    ws = settings.make_websocket(connection, None, None, timers=clock)
    transport = FakeTransport(ws, peer_reads=peer_reads)
    return ws, transport, WebSocketPeer(transport)
