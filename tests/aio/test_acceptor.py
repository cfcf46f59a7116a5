"""aio/acceptor.py: a server's listening sockets accepted without a task per connection, with
asyncio's behaviour on bursts, errors, running out of descriptors and close()."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

import framewire
from framewire.aio import acceptor
from framewire.aio.acceptor import accept_connections
from framewire.aio.ws.websocket import WebSocket


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


class Counting(asyncio.Protocol):
    """Answers every connection with b"hi" and counts them."""

    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Counting.made += 1
        transport.write(b"hi")  # type: ignore[attr-defined]


async def plain_server(factory: Any, sock: socket.socket | None = None) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    if sock is None:
        server = await loop.create_server(factory, "127.0.0.1", 0, start_serving=False)
    else:
        server = await loop.create_server(factory, sock=sock, start_serving=False)
    assert accept_connections(loop, server, factory, 1024)
    return server


async def hello(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.readexactly(2), 5)
    finally:
        writer.close()


def test_a_burst_of_connections_is_accepted_and_close_stops_accepting() -> None:
    async def main() -> None:
        server = await plain_server(Counting)
        port = server.sockets[0].getsockname()[1]
        assert await asyncio.gather(*(hello(port) for _ in range(300))) == [b"hi"] * 300
        server.close()
        await server.wait_closed()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_serve_accepts_websockets_through_it() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]

            async def one(i: int) -> str:
                async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                    await ws.send(str(i))
                    return str(await ws.recv())

            assert await asyncio.gather(*(one(i) for i in range(50))) == [str(i) for i in range(50)]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_failing_protocol_factory_closes_that_connection_and_is_reported() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reports.append(context))
        calls = 0

        def factory() -> asyncio.Protocol:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("no protocol today")
            return Counting()

        server = await plain_server(factory)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        assert await hello(port) == b"hi"
        assert len(reports) == 1 and isinstance(reports[0]["exception"], RuntimeError)
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


class FlakySocket(socket.socket):
    """A listening socket whose next accept fails with EMFILE, as when out of descriptors."""

    fail_next = False

    def _accept(self) -> tuple[int, Any]:
        if FlakySocket.fail_next:
            FlakySocket.fail_next = False
            raise OSError(errno.EMFILE, "Too many open files")
        return super()._accept()  # type: ignore[misc, no-any-return]


def test_running_out_of_descriptors_pauses_accepting_then_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acceptor, "ACCEPT_RETRY_DELAY", 0.05)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reports.append(context))
        sock = FlakySocket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = await plain_server(Counting, sock)
        port = sock.getsockname()[1]
        FlakySocket.fail_next = True
        # The first readiness fails; the connection waits in the backlog and is taken after
        # the pause.
        assert await hello(port) == b"hi"
        assert [report["message"] for report in reports] == [
            "socket.accept() out of system resource"
        ]
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_tls_servers_and_other_loops_are_left_to_asyncio(tmp_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server = await loop.create_server(
            Counting, "127.0.0.1", 0, ssl=context, start_serving=False
        )
        assert not accept_connections(loop, server, Counting, 100)
        server.close()
        await server.wait_closed()

        class NotSelector(asyncio.AbstractEventLoop):
            pass

        plain = await loop.create_server(Counting, "127.0.0.1", 0, start_serving=False)
        assert not accept_connections(NotSelector(), plain, Counting, 100)
        plain.close()
        await plain.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))
