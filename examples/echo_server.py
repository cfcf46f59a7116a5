"""The smallest framewire server: echo every message back.

python examples/echo_server.py        # then: framewire client ws://127.0.0.1:9001/
"""

from __future__ import annotations

import asyncio
import sys

import framewire


async def handler(ws: framewire.WebSocket) -> None:
    """Echo each message; the loop ends when the client closes normally."""
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    """Serve until interrupted."""
    async with framewire.serve(handler, "127.0.0.1", port) as server:
        print(f"listening on ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
