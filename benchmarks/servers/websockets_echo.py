"""websockets echo server for the benchmarks (no size limit, no pings).

Compression is off unless --deflate is given; then it is `compression="deflate"`, websockets'
defaults (server and client windows 12 bits, memLevel 5, zlib's default level, context kept).
"""

from __future__ import annotations

from _common import parse_arguments, run, tls_context
from websockets.asyncio.server import ServerConnection, broadcast, serve

arguments = parse_arguments(__doc__ or "")
connections: set[ServerConnection] = set()


async def echo(ws: ServerConnection) -> None:
    """Send every message back to its sender."""
    async for message in ws:
        await ws.send(message)


async def broadcast_handler(ws: ServerConnection) -> None:
    """Send every message to every open connection, with websockets.broadcast."""
    connections.add(ws)
    try:
        async for message in ws:
            broadcast(connections, message)
    finally:
        connections.discard(ws)


async def main() -> None:
    """Serve until killed."""
    handler = broadcast_handler if arguments.broadcast else echo
    async with serve(
        handler,
        "127.0.0.1",
        arguments.port,
        compression="deflate" if arguments.deflate else None,
        max_size=None,
        ping_interval=None,
        ssl=tls_context(arguments),
    ) as server:
        await server.serve_forever()


run(main, arguments.uvloop)
