"""Helpers shared by the asyncio layer's end-to-end tests: an echo handler, and a server on
127.0.0.1 (port 0) for the length of one scenario."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import framewire
from framewire.aio.ws.websocket import WebSocket

Scenario = Callable[[int], Awaitable[None]]


async def echo(ws: WebSocket) -> None:
    """Send every message back."""
    async for message in ws:
        await ws.send(message)


def run_with_server(
    scenario: Scenario, handler: Callable[[WebSocket], Awaitable[Any]] = echo, **options: Any
) -> None:
    """Serve ``handler`` with serve() ``options`` and run ``scenario(port)`` within 30 s."""

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(scenario(port), 30)

    asyncio.run(main())
