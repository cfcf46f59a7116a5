"""framewire on uvloop: the same server and client, on uvloop's transports.

uvloop's transports do not derive from asyncio.Transport and it drives BufferedProtocol itself,
so this runs the paths most likely to differ: the upgrade hand-off, buffered reads, large
messages, pings and closing.
"""

from __future__ import annotations

import asyncio
import os

import pytest

import framewire
from framewire.aio.ws.websocket import WebSocket
from framewire.http import App, Request, Response

uvloop = pytest.importorskip("uvloop")


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def test_echo_ping_and_close_on_uvloop() -> None:
    async def main() -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with framewire.serve(echo, "127.0.0.1", 0, max_message_size=4 << 20) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/", max_message_size=4 << 20) as ws:
                assert ws._polled is None  # uvloop reads through its own transports
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                big = os.urandom(3 << 20)
                await ws.send(big)
                assert await ws.recv() == big
                for index in range(100):
                    await ws.send(b"%d" % index)
                assert [await ws.recv() for _ in range(100)] == [b"%d" % i for i in range(100)]
                assert await ws.ping() >= 0
                await ws.close(4001, "done")
                assert ws.close_code == 4001

    uvloop.run(asyncio.wait_for(main(), 30))


def test_http_routes_on_uvloop() -> None:
    app = App()

    @app.route("/hello")
    async def hello(request: Request) -> Response:
        return Response(body=b"hi")

    async def main() -> None:
        async with framewire.serve(app, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = await reader.read()
            writer.close()
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"hi")

    uvloop.run(asyncio.wait_for(main(), 30))
