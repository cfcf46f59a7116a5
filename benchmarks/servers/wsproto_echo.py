"""wsproto echo server for the benchmarks: the pure-Python anchor (issue 17).

wsproto is sans-I/O: this is the pump its documentation describes, on an asyncio Protocol
(bytes in through receive_data(), events out of events(), bytes to send from send()), the
cheapest I/O there is for it on asyncio. wsproto never buffers a message: a data event may be
part of one (message_finished=False, a frame or part of a frame that has arrived so far), and the
echo sends each part on at once as a fragment of the reply, keeping message_finished, so that a
1 MiB message streams through without being assembled (the load generator counts a reply when
its FIN frame arrives). With --broadcast a message is assembled first, so that parts of
different senders' messages cannot interleave on a receiver.

No size limit (wsproto has none), no pings. Compression is off unless --deflate is given; then
`PerMessageDeflate()`, wsproto's defaults (zlib's default level, 15-bit windows, contexts kept),
accepted when the client offers it. Writing backpressure pauses reading the same connection.
"""

from __future__ import annotations

import asyncio

from _common import parse_arguments, run, tls_context
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

arguments = parse_arguments(__doc__ or "")
connections: set[EchoProtocol] = set()


class EchoProtocol(asyncio.Protocol):
    """One WebSocket connection: wsproto's state machine between the socket and the echo."""

    def __init__(self) -> None:
        """Start a server-side wsproto connection; the transport comes in connection_made."""
        self.websocket = WSConnection(ConnectionType.SERVER)
        self.transport: asyncio.Transport | None = None
        # --broadcast: the message being assembled.
        self.text_parts: list[str] = []
        self.binary_parts = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        connections.discard(self)

    def data_received(self, data: bytes) -> None:
        """Feed wsproto and act on its events."""
        self.websocket.receive_data(data)
        self.handle_events()

    def eof_received(self) -> bool:
        """Tell wsproto the peer closed its side; close ours."""
        self.websocket.receive_data(None)
        self.handle_events()
        return False

    def pause_writing(self) -> None:
        """The peer does not read: stop reading what it sends until it does."""
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The peer reads again."""
        assert self.transport is not None
        self.transport.resume_reading()

    def handle_events(self) -> None:
        """Answer every pending event, with one write for all the bytes it produced."""
        websocket, transport = self.websocket, self.transport
        assert transport is not None
        output: list[bytes] = []
        for event in websocket.events():
            if isinstance(event, Message):
                if arguments.broadcast:
                    self.collect(event)
                else:
                    # A str part goes out as text, bytes as binary (continuation frames after
                    # the first part: wsproto keeps track).
                    part = Message(data=event.data, message_finished=event.message_finished)
                    output.append(websocket.send(part))
            elif isinstance(event, Request):
                extensions: list[Extension] = [PerMessageDeflate()] if arguments.deflate else []
                output.append(websocket.send(AcceptConnection(extensions=extensions)))
                connections.add(self)
            elif isinstance(event, Ping):
                output.append(websocket.send(event.response()))
            elif isinstance(event, CloseConnection):
                # RFC 6455 7.1.1: answer the close, then the server closes TCP first.
                if websocket.state == ConnectionState.REMOTE_CLOSING:
                    output.append(websocket.send(event.response()))
                connections.discard(self)
        if output:
            transport.write(b"".join(output))
        if websocket.state == ConnectionState.CLOSED:
            transport.close()

    def collect(self, event: Message[bytes | bytearray] | Message[str]) -> None:
        """--broadcast: assemble a message, then send it to every open connection."""
        if isinstance(event.data, str):
            self.text_parts.append(event.data)
        else:
            self.binary_parts += event.data
        if not event.message_finished:
            return
        message: Event
        if isinstance(event.data, str):
            message = TextMessage(data="".join(self.text_parts))
            self.text_parts = []
        else:
            message = BytesMessage(data=bytes(self.binary_parts))
            self.binary_parts = bytearray()
        for target in list(connections):
            if target.websocket.state == ConnectionState.OPEN and target.transport is not None:
                target.transport.write(target.websocket.send(message))


async def main() -> None:
    """Serve until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        EchoProtocol, "127.0.0.1", arguments.port, ssl=tls_context(arguments)
    )
    async with server:
        await server.serve_forever()


run(main, arguments.uvloop)
