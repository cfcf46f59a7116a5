"""accept_connections(): a server's listening sockets accepted without a task per connection.

asyncio's selector loop accepts each connection in a task of its own (``_accept_connection2``):
a coroutine, a Task, a Future to wait for connection_made(), and socket.accept()'s wrapper,
which converts family and type to enums. Together that is about 57,000 instructions of the
roughly 245,000 that a minimal asyncio server spends per WebSocket handshake (cachegrind over
benchmarks/run.py's handshake scenario against a canned-101 server). Here the listening socket's
reader accepts and builds the transport directly, as that task would.

Only asyncio's own selector loop serving plain TCP is handled; for anything else (TLS, uvloop,
another loop, a future asyncio without the private methods used here) accept_connections()
returns False and changes nothing, and the caller starts serving the usual way.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

from framewire.aio.asyncio_internals import (
    has_raw_accept,
    make_socket_transport,
    raw_accept,
    server_sockets,
    server_uses_tls,
)

__all__ = ["ACCEPT_RETRY_DELAY", "accept_connections"]

ACCEPT_RETRY_DELAY = 1.0  # seconds without accepting after running out of descriptors
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def accept_connections(
    loop: asyncio.AbstractEventLoop,
    server: asyncio.Server,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    backlog: int,
) -> bool:
    """Start accepting on ``server``'s sockets (made with ``start_serving=False``).

    Returns False, having changed nothing, when the loop or server is not one this can serve;
    then call ``server.start_serving()``. server.close() stops accepting either way.
    """
    sockets = server_sockets(server)
    if (
        make_socket_transport(loop) is None
        or not has_raw_accept()
        or sockets is None
        or server_uses_tls(server)
    ):
        return False
    for sock in sockets:
        sock.listen(backlog)
        _Acceptor(loop, server, sock, protocol_factory, backlog).start()
    return True


class _Acceptor:
    """The reader of one listening socket."""

    __slots__ = ("_backlog", "_factory", "_kind", "_loop", "_server", "_sock")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        server: asyncio.Server,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._server = server
        self._sock = sock
        self._factory = protocol_factory
        self._backlog = backlog
        # Plain ints: socket.accept() converts them to enums for every connection.
        self._kind = (int(sock.family), int(sock.type), sock.proto)

    def start(self) -> None:
        if self._sock.fileno() != -1:  # not closed by server.close() in the meantime
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        """Accept what is waiting (at most ``backlog``), as asyncio's _accept_connection()."""
        make_transport: Any = make_socket_transport(self._loop)
        family, kind, proto = self._kind
        for _ in range(self._backlog):
            try:
                fd, address = raw_accept(self._sock)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # nothing more waiting
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop reports it, as it does asyncio's
                # The socket stays readable: stop watching it for a while (as asyncio does).
                self._loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc}
                )
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(ACCEPT_RETRY_DELAY, self.start)
                return
            connection = socket.socket(family, kind, proto, fileno=fd)
            try:
                connection.setblocking(False)
                make_transport(
                    connection,
                    self._factory(),
                    extra={"peername": address},
                    server=self._server,
                )
            except (SystemExit, KeyboardInterrupt):
                connection.close()
                raise
            except BaseException as exc:
                connection.close()
                self._loop.call_exception_handler(
                    {"message": "could not set up an accepted connection", "exception": exc}
                )
