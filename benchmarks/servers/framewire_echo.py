"""framewire echo server for the benchmarks (no message size limit).

Compression is off unless --deflate is given; then it is framewire's default DeflateConfig(),
with the compression backend pinned to what a plain `pip install framewire` has: the standard
library's zlib (`--deflate-backend isal` for ISA-L, the optional extra; run.py's
"framewire+isal"), so that the column does not depend on what else the venv holds.
"""

from __future__ import annotations

from typing import Any

from _common import parse_arguments, run, tls_context

import framewire

arguments = parse_arguments(__doc__ or "", deflate_backends=("zlib", "isal", "auto"))
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
        handler,
        "127.0.0.1",
        arguments.port,
        compression=(
            framewire.DeflateConfig(backend=arguments.deflate_backend)
            if arguments.deflate
            else None
        ),
        max_message_size=None,
        ssl=tls_context(arguments),
    ) as server:
        await server.serve_forever()


run(main, arguments.uvloop)
