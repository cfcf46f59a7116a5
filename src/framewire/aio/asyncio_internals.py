"""The private parts of asyncio that framewire uses, all in this one module.

Each one buys speed on asyncio's own selector loop (benchmarks/README.md's ledger names the
rows), and each has a fallback: when a name below is missing, the caller takes asyncio's public
path. tests/aio/test_asyncio_internals.py checks every one of them on the running Python, so a
change in a new Python version fails a named test instead of silently costing speed or
correctness.

- ``PLAIN_TRANSPORT``: asyncio's plain TCP transport class (``_SelectorSocketTransport``). Only
  its sockets are read by the Poller and closed at once (ws/socket_poller.py).
- ``make_socket_transport(loop)``: the loop's ``_make_socket_transport``, used by the acceptor to
  build a transport for an accepted socket without a task (acceptor.py).
- ``raw_accept(sock)``: ``socket._accept()``, accept without converting family and type to
  enums (acceptor.py).
- ``server_sockets(server)`` and ``server_uses_tls(server)``: ``asyncio.Server``'s listening
  sockets and TLS context (acceptor.py).
- ``tls_parts(transport)``: the objects asyncio's SSLProtocol reads and writes records with
  (its ssl object, its two memory BIOs, its ``_process_outgoing()`` and the TCP transport
  under it), so that the
  Poller and the DirectWriter can move a TLS socket's records in C (ws/socket_poller.py,
  _speedups_c/tls_link.c).
- ``running_tasks()``: Python 3.11's loop -> running task dict, ``asyncio.tasks._current_tasks``,
  which aio/ws/wakeup.py hands to the C Wakeup (wakeup.c reads it instead of calling
  current_task()); None where current_task() is not a Python function over that dict.

Known behaviour changes asyncio made that framewire works around, each tested there too:
from 3.12 the selector transport's ``writelines()`` queues without calling ``pause_writing()``,
so framewire never calls it (ws/protocol.py, _flush()).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from asyncio import selector_events, sslproto
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "PLAIN_TRANSPORT",
    "TLSObject",
    "TLSParts",
    "has_raw_accept",
    "is_selector_loop",
    "make_socket_transport",
    "raw_accept",
    "running_tasks",
    "server_sockets",
    "server_uses_tls",
    "tls_parts",
]

PLAIN_TRANSPORT: Any = getattr(selector_events, "_SelectorSocketTransport", None)


def is_selector_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is asyncio's own selector event loop (not uvloop, not proactor)."""
    return isinstance(loop, selector_events.BaseSelectorEventLoop)


def make_socket_transport(loop: asyncio.AbstractEventLoop) -> Callable[..., Any] | None:
    """Return ``loop._make_socket_transport(sock, protocol, *, extra, server)``, or None."""
    if not is_selector_loop(loop):
        return None
    return getattr(loop, "_make_socket_transport", None)


def raw_accept(sock: socket.socket) -> tuple[int, Any]:
    """Accept one connection on non-blocking ``sock``: (file descriptor, peer address).

    Raises:
        BlockingIOError: nothing is waiting; OSError as socket.accept() does.
    """
    return sock._accept()  # type: ignore[attr-defined,no-any-return]


def has_raw_accept() -> bool:
    """Whether :func:`raw_accept` can be used on this Python."""
    return hasattr(socket.socket, "_accept")


def server_sockets(server: asyncio.Server) -> list[socket.socket] | None:
    """Return the listening sockets of a server made with ``start_serving=False``, or None."""
    sockets = getattr(server, "_sockets", None)
    if not sockets or not all(isinstance(sock, socket.socket) for sock in sockets):
        return None
    return list(sockets)


def server_uses_tls(server: asyncio.Server) -> bool:
    """Whether ``server`` wraps its connections in TLS (True when it cannot tell)."""
    return getattr(server, "_ssl_context", True) is not None


def running_tasks() -> dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None:
    """Return the loop -> running task dict that asyncio.current_task() reads, or None.

    None where current_task() is not a Python function over that dict (it is on 3.11; from 3.12
    it is written in C): reading the dict would not be reading what current_task() reads.
    """
    if not inspect.isfunction(asyncio.current_task):
        return None
    tasks = getattr(asyncio.tasks, "_current_tasks", None)
    return tasks if type(tasks) is dict else None


_TLS_TRANSPORT: Any = getattr(sslproto, "_SSLProtocolTransport", None)
_WRAPPED: Any = getattr(getattr(sslproto, "SSLProtocolState", None), "WRAPPED", None)


class TLSObject(Protocol):
    """What framewire calls on the C object inside an ssl.SSLObject (``SSLObject._sslobj``)."""

    def read(self, size: int, buffer: bytearray | memoryview, /) -> int:
        """Decrypt up to ``size`` bytes into ``buffer``; 0 at the peer's close_notify."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Encrypt ``data`` into the outgoing BIO; returns its length."""

    def pending(self) -> int:
        """Decrypted bytes held that a read returns without new records."""


# (ssl_object, incoming, outgoing, send_outgoing, plain_transport): see tls_parts().
TLSParts = tuple[TLSObject, ssl.MemoryBIO, ssl.MemoryBIO, Callable[[], None], asyncio.Transport]


def tls_parts(transport: asyncio.BaseTransport) -> TLSParts | None:
    """Return ``(ssl_object, incoming, outgoing, send_outgoing, plain_transport)`` of asyncio's
    TLS ``transport`` once its handshake is done, or None.

    ``ssl_object`` is the C object of ssl.SSLObject (read(n, buffer), write(data), pending()),
    ``incoming`` and ``outgoing`` its ssl.MemoryBIO objects, ``send_outgoing()`` the
    SSLProtocol's own way to send what is in ``outgoing`` (in order, with its flow control) and
    ``plain_transport`` the plain TCP transport under it. None as well while the SSLProtocol
    holds anything back (a write backlog, paused reading or writing): it then keeps its records
    to itself.
    """
    if _TLS_TRANSPORT is None or type(transport) is not _TLS_TRANSPORT:
        return None
    protocol: Any = getattr(transport, "_ssl_protocol", None)
    try:
        wrapper = protocol._sslobj
        parts = (
            wrapper._sslobj,
            protocol._incoming,
            protocol._outgoing,
            protocol._process_outgoing,
            protocol._transport,
        )
        busy = (
            protocol._state is not _WRAPPED
            or protocol._write_backlog
            or protocol._ssl_reading_paused
            or protocol._ssl_writing_paused
        )
    except AttributeError:
        return None
    if busy or type(parts[4]) is not PLAIN_TRANSPORT or not isinstance(wrapper, ssl.SSLObject):
        return None
    return parts
