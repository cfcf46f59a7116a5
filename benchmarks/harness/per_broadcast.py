"""framewire's own work per broadcast() delivery, without sockets.

1,000 server-side WebSockets with NullTransports get one 64-byte binary message per
broadcast() call. Prints µs per delivery (noisy on a shared machine); under ``count.sh`` the
instruction count per broadcast is exact (divide by 1,000 for one delivery).

    python benchmarks/harness/per_broadcast.py [BROADCASTS] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from common import NullTransport

from framewire.aio.ws.broadcast import broadcast
from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Connection, Role

CLIENTS = 1000


async def main(broadcasts: int, repeats: int) -> None:
    """Broadcast ``broadcasts`` messages ``repeats`` times; print the best time per delivery."""
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(CLIENTS):
        ws = WebSocket(Connection(Role.SERVER), ping_interval=None)
        ws.connection_made(NullTransport(loop, ws))
        clients.append(ws)
    message = b"x" * 64
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(broadcasts):
            assert broadcast(clients, message) == CLIENTS
        best = min(best, time.perf_counter() - start)
    print(f"per delivery: {best / broadcasts / CLIENTS * 1e6:.3f} us")


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [1_000, 3][len(arguments) :])))
