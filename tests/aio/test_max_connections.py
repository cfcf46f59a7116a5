"""serve(max_connections=N): past N open connections a new one gets a fast 503 and the others
are served as before (issue 18, "maximum connections")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import framewire
from framewire.exceptions import InvalidStatus

BOUND = 10.0  # seconds any step may take before the test fails instead of hanging


async def _echo(websocket: framewire.WebSocket) -> None:
    async for message in websocket:
        await websocket.send(message)


@asynccontextmanager
async def _server(max_connections: int) -> AsyncIterator[tuple[framewire.Server, str]]:
    async with framewire.serve(
        _echo, "127.0.0.1", 0, max_connections=max_connections, compression=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield server, f"ws://127.0.0.1:{port}/"


async def _raw_get(url: str) -> bytes:
    """Send a plain GET and return everything the server answers before closing."""
    host, port = url.removeprefix("ws://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def _echoes(websocket: framewire.WebSocket, text: str) -> bool:
    await websocket.send(text)
    return await websocket.recv() == text


def test_past_max_connections_a_handshake_gets_503_and_open_connections_keep_working() -> None:
    async def main() -> None:
        async with _server(3) as (server, url):
            clients = [await framewire.connect(url) for _ in range(3)]
            with pytest.raises(InvalidStatus) as refused:
                await framewire.connect(url)
            assert refused.value.status == 503
            assert b"max_connections=3" in refused.value.body
            answer = await _raw_get(url)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert answer.endswith(b"\r\n\r\nserver full: max_connections=3\n")
            for index, client in enumerate(clients):
                assert await _echoes(client, f"still served {index}")
            assert len(server.connections) == 3

            # One leaves: its place is free again.
            await clients.pop().close()
            async with asyncio.timeout(BOUND):
                while len(server.connections) > 2:
                    await asyncio.sleep(0)
            clients.append(await framewire.connect(url))
            assert await _echoes(clients[-1], "the newcomer")
            for client in clients:
                await client.close()

    asyncio.run(asyncio.wait_for(main(), BOUND * 3))


def test_idle_http_connections_count_toward_max_connections() -> None:
    async def main() -> None:
        async with _server(2) as (_, url):
            host, port = url.removeprefix("ws://").rstrip("/").split(":")
            idle = [await asyncio.open_connection(host, int(port)) for _ in range(2)]
            # Each idle connection is counted once the server has made it (connection_made).
            with pytest.raises(InvalidStatus) as refused:
                async with asyncio.timeout(BOUND):
                    while True:
                        client = await framewire.connect(url)
                        await client.close()  # accepted before the idle ones were counted
            assert refused.value.status == 503
            for _, writer in idle:
                writer.close()
                await writer.wait_closed()
            async with asyncio.timeout(BOUND):
                while True:  # the server sees the idle ones leave, then takes a WebSocket
                    try:
                        client = await framewire.connect(url)
                    except InvalidStatus:
                        await asyncio.sleep(0)
                        continue
                    break
            assert await _echoes(client, "after the idle ones left")
            await client.close()

    asyncio.run(asyncio.wait_for(main(), BOUND * 3))


def test_max_connections_below_one_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="max_connections must be at least 1, not 0"):
        framewire.serve(_echo, "127.0.0.1", 0, max_connections=0)
