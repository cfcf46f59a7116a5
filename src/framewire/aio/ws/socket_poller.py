"""One epoll descriptor per event loop for the sockets of open WebSockets (Linux, C accelerator).

asyncio's selector loop dispatches each ready socket in Python: the selector's event list, a
handle run, the transport's ``_read_ready``, ``get_buffer()`` and ``buffer_updated()``. That
costs about 1 µs per received message, a fifth of framewire's CPU time per small round trip
(benchmarks/run.py, 64 connections; docs/topics/performance.md). A ``Poller`` (C, in
framewire._speedups) is one descriptor the loop watches: its ``poll()`` reads every ready
socket into the loop's shared receive buffer and calls ``buffer_updated(n)`` on its protocol.

Plain TCP sockets are taken over, of asyncio's selector transports or uvloop's TCP transports,
and TLS sockets of asyncio's selector loop once their handshake is done: the Poller then feeds
their records to asyncio's own ssl object and decrypts them in C (_speedups_c/tls_link.c).
uvloop's TLS and other loops keep reading through their transports, as they do without the
accelerator (FRAMEWIRE_NO_SPEEDUPS=1). A ``DirectWriter`` (C) sends with one ``send()`` while
the transport has nothing queued (encrypting first, for TLS) and hands the rest to
``transport.write()``, so closing, flow control and error reports stay with the transport.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Never, Protocol

from framewire.aio.asyncio_internals import (
    PLAIN_TRANSPORT,
    TLSParts,
    is_selector_loop,
    tls_parts,
)
from framewire.aio.receive_buffer import receive_buffer
from framewire.aio.ws.inbox import InboxLike
from framewire.sansio.connection import Connection
from framewire.sansio.speedups import ENABLED

if TYPE_CHECKING:
    from framewire import _speedups

__all__ = ["SENT", "PolledProtocol", "PolledSocket", "closes_at_once", "take_over_socket"]

# The C pieces, typed by the stub (framewire/_speedups.pyi); built on Linux only.
_Poller: type[_speedups.Poller] | None = None
_DirectWriter: type[_speedups.DirectWriter] | None = None
_CInbox: type[_speedups.Inbox] | None = None
# A coroutine that has already returned None: what WebSocket.send() returns when
# PolledSocket.send_message() sent the frame (None without the accelerator: never needed then).
SENT: Coroutine[Never, object, None] | None = None
if ENABLED and sys.platform == "linux":
    from framewire._speedups import SENT as C_SENT
    from framewire._speedups import DirectWriter, Inbox, Poller

    _Poller, _DirectWriter, _CInbox, SENT = Poller, DirectWriter, Inbox, C_SENT
# Exactly asyncio's plain TCP transport: its subclasses and other transports may read
# differently (TLS decrypts above it; uvloop's are not selector transports at all).
_PLAIN_TRANSPORT: Any = PLAIN_TRANSPORT
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _speedups.Poller] = (
    weakref.WeakKeyDictionary()
)


class PolledProtocol(Protocol):
    """What a Poller calls on the protocol of a socket it reads."""

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` arrived in the loop's receive buffer."""

    def poller_eof(self) -> None:
        """The peer closed its side (recv returned 0); reading has stopped."""

    def poller_error(self, exc: BaseException) -> None:
        """Reading failed, or buffer_updated() raised ``exc``."""


class PolledSocket:
    """One socket read through its loop's Poller, and written through ``write(data)``.

    Use pause(), resume() and stop() instead of the transport's pause_reading() and
    resume_reading(); write() instead of transport.write(). ``send_message(connection,
    message)`` frames and sends a ``str`` or ``bytes`` message under 64 KiB at once when
    ``connection.frame_now()`` would frame it and the transport holds nothing; it returns True
    then, else False (and does nothing).
    """

    __slots__ = ("_fd", "_loop", "_poller", "_tls", "_writer", "send_message", "write")

    def __init__(
        self,
        poller: _speedups.Poller,
        writer: _speedups.DirectWriter,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        tls: TLSParts | None = None,
    ) -> None:
        self._poller = poller
        self._fd: int | None = fd
        self._loop = loop
        self._tls = tls
        self._writer = writer
        self.write: Callable[[bytes], None] = writer.write
        self.send_message: Callable[[Connection, object], bool] = writer.send_message

    def pause(self) -> None:
        """Stop reading until resume()."""
        if self._fd is not None:
            self._poller.pause(self._fd)

    def resume(self) -> None:
        """Read again after pause()."""
        if self._fd is not None:
            self._poller.resume(self._fd)
            self.read_pending()

    def read_pending(self) -> None:
        """TLS: have the Poller decrypt, soon, what the ssl object holds without a new read
        (records read before a pause, or before the Poller took the socket over)."""
        tls = self._tls
        if self._fd is not None and tls is not None and (tls[1].pending or tls[0].pending()):
            self._loop.call_soon(self._poller.read_now, self._fd)

    def stop(self) -> None:
        """Stop reading for good (before the socket is closed), and leave writes to the
        transport; safe to call twice."""
        if self._fd is not None:
            self._poller.unregister(self._fd)
            self._writer.stop()
            self._fd = None
            if self._tls is not None:
                # asyncio's SSLProtocol reads again, through the same ssl object: it closes.
                self._tls[4].resume_reading()


def closes_at_once(transport: asyncio.WriteTransport) -> bool:
    """Whether ``transport``, after close(), calls connection_lost() in the next loop turn
    whatever the peer does: asyncio's plain TCP transport with nothing left to write."""
    return type(transport) is _PLAIN_TRANSPORT and not transport.get_write_buffer_size()


def _is_pollable(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> bool:
    """Whether ``transport`` is a plain TCP transport whose socket the Poller may read.

    asyncio's own (``_SelectorSocketTransport`` on its selector loop), or uvloop's TCP
    transport: both keep a paused socket open until after ``connection_lost()``, send what
    was queued before what is written next, and report flow control the same way.
    """
    kind = type(transport)
    if kind is _PLAIN_TRANSPORT:
        return is_selector_loop(loop)
    return kind.__name__ == "TCPTransport" and kind.__module__ == "uvloop.loop"


def take_over_socket(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    protocol: PolledProtocol,
    receiver: tuple[Connection, InboxLike, bool, int | None] | None = None,
) -> PolledSocket | None:
    """Read ``transport``'s socket through ``loop``'s Poller from now on, for ``protocol``.

    The transport's own reading is paused for good: use the returned PolledSocket instead.
    Returns None, and changes nothing, when the accelerator is missing or the transport or
    loop is not one the Poller can serve.

    ``receiver`` is (connection, the C Inbox, whether frames are masked, max_message_size): a
    read of whole simple messages then goes from the Poller to the Inbox without
    buffer_updated() (Connection.receive_messages()' case, in C).
    """
    if _Poller is None or _DirectWriter is None or transport.is_closing():
        return None
    tls = None
    if not _is_pollable(loop, transport):
        tls = tls_parts(transport) if is_selector_loop(loop) else None
        if tls is None:
            return None
    plain_transport = transport if tls is None else tls[4]
    sock = plain_transport.get_extra_info("socket")
    if sock is None:
        return None
    poller = _pollers.get(loop)
    if poller is None:
        poller = _Poller(receive_buffer(loop))
        loop.add_reader(poller.fileno(), poller.poll)
        _pollers[loop] = poller
    fd = sock.fileno()
    plain_transport.pause_reading()
    c_receiver = None
    if receiver is not None:
        connection, inbox, masked, max_size = receiver
        if _CInbox is not None and isinstance(inbox, _CInbox):  # it queues into the C Inbox only
            c_receiver = (connection, inbox, masked, max_size)
    writer = _DirectWriter(fd, transport, tls)
    poller.register(fd, protocol, c_receiver, writer if tls is not None else None)
    polled = PolledSocket(poller, writer, fd, loop, tls)
    polled.read_pending()
    return polled
