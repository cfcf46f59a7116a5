"""aiohttp echo server for the benchmarks (no size limit, no access log).

Compression is off unless --deflate is given; then `compress=True`, aiohttp's defaults (zlib
level 1, 15-bit window, context kept).
"""

from __future__ import annotations

import asyncio

from _common import parse_arguments, run, tls_context
from aiohttp import WSMsgType, web

arguments = parse_arguments(__doc__ or "")
connections: set[web.WebSocketResponse] = set()


async def handle(request: web.Request) -> web.WebSocketResponse:
    """Echo (or broadcast) every message of one WebSocket connection."""
    ws = web.WebSocketResponse(compress=arguments.deflate, max_msg_size=0)
    await ws.prepare(request)
    connections.add(ws)
    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                targets = connections if arguments.broadcast else (ws,)
                # aiohttp has no broadcast helper: one send per connection is its idiom.
                for target in list(targets):
                    await target.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                targets = connections if arguments.broadcast else (ws,)
                for target in list(targets):
                    await target.send_str(message.data)
    finally:
        connections.discard(ws)
    return ws


async def main() -> None:
    """Serve until killed."""
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", arguments.port, ssl_context=tls_context(arguments))
    await site.start()
    await asyncio.Event().wait()


run(main, arguments.uvloop)
