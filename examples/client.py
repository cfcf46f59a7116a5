"""A framewire client: send a message, wait for the reply, ping, and close.

python examples/client.py ws://127.0.0.1:9001/
"""

from __future__ import annotations

import asyncio
import sys

import framewire


async def main(url: str) -> None:
    """Talk to an echo server once."""
    async with framewire.connect(url) as ws:
        await ws.send("hello")
        print("reply:", await ws.recv())
        print(f"ping round trip: {await ws.ping(b'x') * 1000:.2f} ms")
        await ws.close(1000, "bye")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/"))
