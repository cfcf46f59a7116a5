"""framewire on uvloop: the same server and client, on uvloop's transports.

uvloop's transports do not derive from asyncio.Transport and it drives BufferedProtocol itself,
so this runs the paths most likely to differ: the upgrade hand-off, buffered reads, large
messages, pings and closing.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import framewire
from framewire.aio.ws import socket_poller
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
                assert ws._polled is None  # handed to the Poller after its first read
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                await asyncio.sleep(0)  # recv() returned inside that read: let it finish
                # uvloop's TCP transports are read by the Poller too, when it was built.
                assert (ws._polled is not None) is (socket_poller._Poller is not None)
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


def test_files_are_sent_whole_on_uvloop(tmp_path: Path) -> None:
    # uvloop has no loop.sendfile(): the file is read and written piece by piece instead.
    from framewire.http.messages import FileBody

    data = os.urandom((1 << 20) + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    app = App()
    app.static("/static", str(tmp_path))

    @app.route("/part")
    async def part(request: Request) -> Response:
        return Response(body=FileBody(str(tmp_path / "big.bin"), offset=1000, length=300_000))

    async def fetch(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.close()
        return body

    async def main() -> None:
        async with framewire.serve(app, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            assert await fetch(port, "/static/big.bin") == data
            assert await fetch(port, "/part") == data[1000:301_000]

    uvloop.run(asyncio.wait_for(main(), 30))
