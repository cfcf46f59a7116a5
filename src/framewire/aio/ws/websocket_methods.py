"""PyWebSocketMethods: WebSocket.send() and ``__anext__``, the two calls of every message.

The Python twin of ``framewire._speedups.WebSocketMethods`` (_speedups_c/websocket_methods.c).
WebSocket derives from WebSocketMethods, which is the C type when the accelerator was built
(Linux) and FRAMEWIRE_NO_SPEEDUPS is unset, else this class.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, Awaitable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

from framewire.aio.ws.inbox import InboxLike
from framewire.aio.ws.socket_poller import SENT, PolledSocket
from framewire.sansio.connection import Connection
from framewire.sansio.speedups import ENABLED

__all__ = ["Message", "PyWebSocketMethods", "WebSocketMethods"]

Message = str | bytes
BytesLike = bytes | bytearray | memoryview


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
    _inbox: InboxLike
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


# What WebSocket derives from: the C twin when it is used, else the Python one. A base class
# must be one class to the type checker: the twin, which the C type mirrors (the stub and
# tests/test_speedups_boundary.py check it does).
if TYPE_CHECKING or not (ENABLED and sys.platform == "linux"):
    WebSocketMethods = PyWebSocketMethods
else:
    from framewire._speedups import WebSocketMethods
