"""framewire's echo server and 64 raw client sockets in one process, over real sockets.

Unlike per_message.py this includes the Poller, the DirectWriter and the system calls' Python
side. Each round sends one masked 64-byte frame on every socket and waits for all echoes. The
client's own work is counted too, so compare counts of two versions rather than reading one.

    python benchmarks/harness/per_message_sockets.py [MESSAGES]
    bash benchmarks/harness/count.sh per_message_sockets.py 6400
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
import time
from typing import Any

from common import echo

import framewire
from framewire.sansio.frames import encode_frame_header
from framewire.sansio.mask import apply_mask

CONNECTIONS = 64

HANDSHAKE = (
    "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def open_clients(loop: asyncio.AbstractEventLoop, port: int) -> list[socket.socket]:
    """Open CONNECTIONS raw sockets and complete each one's opening handshake."""
    clients = []
    for _ in range(CONNECTIONS):
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(client, HANDSHAKE.format(key=key).encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(client, 4096)
        clients.append(client)
    return clients


async def main(messages: int) -> None:
    """Echo ``messages`` frames, CONNECTIONS at a time; print the time per message."""
    loop = asyncio.get_running_loop()
    rounds = max(1, messages // CONNECTIONS)
    async with framewire.serve(
        echo, "127.0.0.1", 0, compression=None, max_message_size=None
    ) as server:
        clients = await open_clients(loop, server.sockets[0].getsockname()[1])
        mask = b"abcd"
        frame = encode_frame_header(2, 64, mask=mask) + apply_mask(b"x" * 64, mask)
        expected = CONNECTIONS * 66  # each echo: a 2-byte header and the payload
        pending: dict[str, Any] = {}

        def readable(client: socket.socket) -> None:
            pending["bytes"] -= len(client.recv(65536))
            if pending["bytes"] <= 0:
                pending["done"].set_result(None)

        for client in clients:
            loop.add_reader(client.fileno(), readable, client)
        start = time.perf_counter()
        for _ in range(rounds):
            pending["bytes"] = expected
            pending["done"] = loop.create_future()
            for client in clients:
                client.send(frame)
            await pending["done"]
        elapsed = time.perf_counter() - start
        print(f"per message: {elapsed / rounds / CONNECTIONS * 1e6:.2f} us")
        for client in clients:
            loop.remove_reader(client.fileno())
            client.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 64_000))
