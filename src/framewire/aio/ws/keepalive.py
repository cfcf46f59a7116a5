"""A WebSocket's keepalive: PingTracker, pings waiting for their pong, and Keepalive, what
WebSocketProtocol derives from to ping through its connection and give up on a silent peer.

Loop callbacks, not a task: keepalive() sends a ping (when none is already waiting) and arms the
next one ping_interval seconds later; if no pong comes within ping_timeout seconds,
``on_timeout`` runs. The owner arms the first call (WebSocket makes its PingTracker only then).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from framewire.aio.timers import Scheduler, Timer
from framewire.exceptions import InvalidState
from framewire.sansio.connection import Connection, State

__all__ = ["Keepalive", "PingTracker"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN = State.OPEN

logger = logging.getLogger("framewire")


class PingTracker:
    """Pings waiting for their pong, and the keepalive timer.

    Args:
        send_ping: sends a ping with the payload; returns False when the connection can no
            longer send (the keepalive then stops).
        on_timeout: called when a keepalive ping got no pong within ``timeout``.
        interval: seconds between keepalive pings; None disables them.
        timeout: seconds to wait for a keepalive pong; None waits forever.
        loop: the event loop (default: the running one).
        timers: what arms the timers (default: the loop).
    """

    __slots__ = (
        "_interval_handle",
        "_loop",
        "_on_timeout",
        "_send_ping",
        "_timeout_handle",
        "_timers",
        "_waiting",
        "interval",
        "timeout",
    )

    def __init__(
        self,
        send_ping: Callable[[bytes], bool],
        on_timeout: Callable[[], None],
        interval: float | None,
        timeout: float | None,
        loop: asyncio.AbstractEventLoop | None = None,
        timers: Scheduler | None = None,
    ) -> None:
        self._send_ping = send_ping
        self._on_timeout = on_timeout
        self.interval = interval
        self.timeout = timeout
        self._loop = loop or asyncio.get_running_loop()
        self._timers: Scheduler = timers or self._loop
        self._waiting: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._interval_handle: Timer | None = None
        self._timeout_handle: Timer | None = None

    def new_payload(self) -> bytes:
        """Return a random 4-byte payload that no waiting ping uses."""
        payload = os.urandom(4)
        while payload in self._waiting:
            payload = os.urandom(4)
        return payload

    def register(self, payload: bytes) -> asyncio.Future[float]:
        """Note a ping about to be sent; the future gets the round-trip time in seconds.

        Raises:
            InvalidState: a ping with the same payload is still waiting for its pong.
        """
        if payload in self._waiting:
            raise InvalidState(f"a ping with payload {payload!r} is already waiting for its pong")
        future: asyncio.Future[float] = self._loop.create_future()
        self._waiting[payload] = (future, time.monotonic())
        return future

    def pong_received(self, payload: bytes) -> None:
        """Resolve the ping this pong answers, and every ping sent before it."""
        if payload not in self._waiting:
            return  # an unsolicited pong (RFC 6455 5.5.3)
        now = time.monotonic()
        for key in list(self._waiting):
            future, sent_at = self._waiting.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == payload:
                break
        # Any pong shows the peer is alive.
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None

    def keepalive(self) -> None:
        """Send a keepalive ping now (unless one still waits for its pong); arm the next."""
        self._interval_handle = self._timers.call_later(self.interval or 0, self.keepalive)
        if self._timeout_handle is not None:
            return  # the previous keepalive ping is still waiting for its pong
        payload = self.new_payload()
        future = self.register(payload)
        if not self._send_ping(payload):
            self._waiting.pop(payload, None)
            future.cancel()
            self._interval_handle.cancel()
            return
        if self.timeout is not None:
            self._timeout_handle = self._timers.call_later(self.timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timeout_handle = None
        self._on_timeout()

    def close(self, exc: BaseException) -> None:
        """Stop the timers and fail every waiting ping with ``exc``."""
        for handle in (self._interval_handle, self._timeout_handle):
            if handle is not None:
                handle.cancel()
        for future, _ in self._waiting.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: nobody may be waiting on it
        self._waiting.clear()


class Keepalive:
    """The keepalive side of WebSocketProtocol (aio/ws/protocol.py), which derives from it.

    Its connection_made() arms the first keepalive ping and data_received() hands pongs to the
    PingTracker; ping() shares it. A keepalive ping without a pong within ping_timeout fails
    the connection with 1011 and drops it.
    """

    # What WebSocketProtocol provides.
    connection: Connection
    ping_interval: float | None
    ping_timeout: float | None
    _loop: asyncio.AbstractEventLoop
    _timers: Scheduler
    transport: asyncio.Transport | None
    _abort_detail: str

    # Defaults on the class, as WebSocketProtocol's: most connections never ping.
    _pings: PingTracker | None = None  # made by the first ping: see _ping_tracker()
    _first_keepalive: Timer | None = None

    def flush(self) -> None:
        """Write what the connection queued (WebSocketProtocol's)."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Drop the TCP connection (WebSocketProtocol's)."""
        raise NotImplementedError

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

    def _send_ping_now(self, payload: bytes) -> bool:
        connection = self.connection
        if connection.state is not _OPEN or connection.close_sent is not None:
            return False
        connection.send_ping(payload)
        self.flush()
        return True

    def _keepalive_timed_out(self) -> None:
        detail = (
            f"keepalive ping timeout: no pong within {self.ping_timeout} s; the peer's event loop "
            "may be blocked, or the network link is lost"
        )
        transport = self.transport
        peer = None if transport is None else transport.get_extra_info("peername")
        logger.info("%s (%s)", detail, peer)
        self._abort_detail = detail
        if self.connection.close_sent is None and self.connection.state is _OPEN:
            self.connection.fail(1011, "keepalive ping timeout")
            self.flush()
        self._abort()
