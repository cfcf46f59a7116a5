"""A framewire echo/broadcast server for tests/reliability/test_load.py, run as a subprocess.

Usage: python load_server.py. It listens on 127.0.0.1 (a free port, compression off), prints
``listening PORT`` once ready, and serves until killed. Every text message is echoed, except
``broadcast COUNT SIZE``: the server then sends COUNT messages of SIZE bytes to every open
connection with framewire.broadcast() and answers the sender ``report MIN MAX`` (the fewest and
most connections one of those messages reached).
"""

from __future__ import annotations

import asyncio
import resource

import framewire

COMMAND = "broadcast "
REPORT = "report "


def raise_fd_limit() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to its hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def broadcast_payload(index: int, size: int) -> str:
    """Return the ``index``-th broadcast message: its number, then filler up to ``size`` bytes."""
    head = f"{index}:"
    return head + "x" * max(0, size - len(head))


def send_to_all(connections: set[framewire.WebSocket], count: int, size: int) -> str:
    """Broadcast ``count`` messages of ``size`` bytes; return the report for the sender."""
    reached = [
        framewire.broadcast(connections, broadcast_payload(index, size)) for index in range(count)
    ]
    return f"{REPORT}{min(reached)} {max(reached)}"


async def main() -> None:
    """Serve until killed."""
    raise_fd_limit()
    running: framewire.Server | None = None

    async def handler(websocket: framewire.WebSocket) -> None:
        assert running is not None  # connections arrive only once serve() has returned it
        async for message in websocket:
            if isinstance(message, str) and message.startswith(COMMAND):
                count, size = (int(word) for word in message[len(COMMAND) :].split())
                await websocket.send(send_to_all(running.connections, count, size))
            else:
                await websocket.send(message)

    # backlog: the test opens hundreds of connections at once; the kernel caps it at somaxconn.
    async with framewire.serve(handler, "127.0.0.1", 0, compression=None, backlog=4096) as server:
        running = server
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
