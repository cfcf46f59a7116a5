"""framewire's own work per WebSocket connection, without sockets.

Each connection goes through the server's whole path with a NullTransport: the HTTP/1.1
connection, the upgrade request, the 101, the hand-off to a WebSocket, the handler task, the
client's close frame, the closing handshake and connection_lost(). Prints µs per connection
(noisy on a shared machine); under ``count.sh`` the instruction count per connection is exact.

    python benchmarks/harness/per_handshake.py [CONNECTIONS] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from common import NullTransport, echo

from framewire.aio.server import Server
from framewire.aio.ws.options import WebSocketOptions

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:12345\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
CLOSE_FRAME = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])  # 1000, masked


class _ListeningServer:
    """What Server needs of asyncio.Server during an upgrade."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop


def feed(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    """Deliver ``data`` as a transport would: into the protocol's buffer, then buffer_updated."""
    buffer = protocol.get_buffer(-1)
    buffer[: len(data)] = data  # type: ignore[index]
    protocol.buffer_updated(len(data))


async def one_connection(server: Server, loop: asyncio.AbstractEventLoop) -> None:
    """Open, upgrade, close from the client's side, and let everything finish."""
    protocol = server._make_protocol()
    transport = NullTransport(loop, protocol)
    protocol.connection_made(transport)
    feed(protocol, REQUEST)
    await asyncio.sleep(0)  # the handler task starts
    feed(transport.protocol, CLOSE_FRAME)
    for _ in range(3):  # connection_lost, then the handler's end
        await asyncio.sleep(0)


async def main(connections: int, repeats: int) -> None:
    """Run ``connections`` connections ``repeats`` times; print the best time per connection."""
    loop = asyncio.get_running_loop()
    options = WebSocketOptions.from_kwargs({"compression": None, "max_message_size": None})
    server = Server(echo, options=options)
    server._server = _ListeningServer(loop)  # type: ignore[assignment]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(connections):
            await one_connection(server, loop)
        best = min(best, time.perf_counter() - start)
    assert not server.connections and not server._tasks, "a connection was left behind"
    print(f"per connection: {best / connections * 1e6:.1f} us")


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [3000, 5][len(arguments) :])))
