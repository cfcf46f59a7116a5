"""framewire's own work per received and echoed message, without sockets.

A WebSocket with a NullTransport gets one masked 64-byte binary frame per buffer_updated() call
from a loop callback (as a transport would call it), and a real handler task echoes it with
``async for`` and ``send()``. Prints µs per message (noisy on a shared machine); under
``count.sh`` the instruction count per message is exact.

    python benchmarks/harness/per_message.py [MESSAGES] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from common import NullTransport, echo

from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Connection, Role
from framewire.sansio.frames import encode_frame_header
from framewire.sansio.mask import apply_mask


async def main(messages: int, repeats: int) -> None:
    """Feed ``messages`` frames ``repeats`` times; print the best time per message."""
    loop = asyncio.get_running_loop()
    ws = WebSocket(Connection(Role.SERVER, stream_messages=True), ping_interval=None)
    transport = NullTransport(loop, ws)
    ws.connection_made(transport)
    handler = asyncio.create_task(echo(ws))
    await asyncio.sleep(0)
    mask = b"abcd"
    frame = encode_frame_header(2, 64, mask=mask) + apply_mask(b"x" * 64, mask)
    times: list[float] = []

    def feed(done: asyncio.Future[None]) -> None:
        start = time.perf_counter()
        for _ in range(messages):
            buffer = ws.get_buffer(-1)
            buffer[: len(frame)] = frame
            ws.buffer_updated(len(frame))
        times.append(time.perf_counter() - start)
        done.set_result(None)

    for _ in range(repeats):
        done = loop.create_future()
        loop.call_soon(feed, done)  # outside any task, as a transport's read callback runs
        await done
    best = min(times)
    assert transport.writes >= messages * repeats, transport.writes
    print(f"per message: {best / messages * 1e6:.2f} us")
    handler.cancel()


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [200_000, 3][len(arguments) :])))
