"""framewire echo server for the benchmarks (compression off, no message size limit)."""

from __future__ import annotations

from typing import Any

from _common import parse_arguments, run

import framewire

arguments = parse_arguments(__doc__ or "")
connections: set[Any] = set()


async def echo(ws: Any) -> None:
    """Send every message back to its sender."""
    async for message in ws:
        await ws.send(message)


async def broadcast(ws: Any) -> None:
    """Send every message to every open connection, with framewire.broadcast."""
    connections.add(ws)
    try:
        async for message in ws:
            framewire.broadcast(connections, message)
    finally:
        connections.discard(ws)


async def main() -> None:
    """Serve until killed."""
    handler = broadcast if arguments.broadcast else echo
    async with framewire.serve(
        handler, "127.0.0.1", arguments.port, compression=None, max_message_size=None
    ) as server:
        await server.serve_forever()


run(main, arguments.uvloop)
