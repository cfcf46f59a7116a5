"""What both harnesses share: a transport that keeps nothing (they measure framewire's own work,
not a socket's) and the benchmark servers' echo handler."""

from __future__ import annotations

import asyncio
from typing import Any

from framewire.aio.ws.websocket import WebSocket


async def echo(ws: WebSocket) -> None:
    """The benchmark servers' handler."""
    async for message in ws:
        await ws.send(message)


class NullTransport(asyncio.Transport):
    """Counts writes; close() schedules connection_lost() as asyncio's transports do."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
        super().__init__()
        self.loop = loop
        self.protocol = protocol
        self.closing = False
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def writelines(self, list_of_data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16384, 65536)  # asyncio's default

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name in ("peername", "sockname") else default

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
