"""framewire: a sans-I/O WebSocket (RFC 6455, RFC 7692) and HTTP/1.1 stack for asyncio.

import framewire

async def handler(ws):
    async for message in ws:
        await ws.send(message)

async with framewire.serve(handler, "127.0.0.1", 9001) as server:
    await server.serve_forever()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framewire._lazy import lazy_attributes
from framewire.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    FramewireError,
    HTTPError,
    InvalidHandshake,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from framewire.sansio.deflate_negotiation import DeflateConfig

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DeflateConfig",
    "FramewireError",
    "HTTPError",
    "InvalidHandshake",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "Server",
    "WebSocket",
    "broadcast",
    "connect",
    "serve",
]

__version__ = "0.1.0"

# The asyncio layer is imported on first use, so that `import framewire.sansio...` (the
# sans-I/O core, usable without asyncio) stays light.
_LAZY = {
    "broadcast": "framewire.aio.ws.broadcast",
    "connect": "framewire.aio.ws.client",
    "Server": "framewire.aio.server",
    "serve": "framewire.aio.server",
    "WebSocket": "framewire.aio.ws.websocket",
}

if TYPE_CHECKING:
    from framewire.aio.server import Server, serve
    from framewire.aio.ws.broadcast import broadcast
    from framewire.aio.ws.client import connect
    from framewire.aio.ws.websocket import WebSocket


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
