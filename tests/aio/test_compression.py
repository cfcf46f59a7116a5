"""permessage-deflate through the asyncio layer: negotiation, streaming, bombs (aio + deflate)."""

from __future__ import annotations

import asyncio
import os
import zlib
from pathlib import Path

import pytest

import framewire
from framewire import ConnectionClosedError
from framewire.aio.ws.websocket import WebSocket
from tests.conformance.rawclient import RawClient, client_frame


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    output = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert output.endswith(b"\x00\x00\xff\xff")
    return output[:-4]


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def test_compression_is_negotiated_by_default_and_round_trips() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert ws.connection.deflate is not None
                for message in ["", "x", '{"text": "hello"}' * 1000, os.urandom(70000)]:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send("not compressed" * 10, compress=False)
                assert await ws.recv() == "not compressed" * 10

    asyncio.run(main())


def test_compression_none_disables_it() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                assert ws.connection.deflate is None
                await ws.send("plain")
                assert await ws.recv() == "plain"

    asyncio.run(main())


def test_recv_stream_of_a_compressed_message_yields_inflated_pieces() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send(b"\x00" * (8 << 20))  # compresses to a few KiB
        await ws.wait_closed()

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0, max_message_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(
                f"ws://127.0.0.1:{port}/", max_message_size=16 << 20
            ) as ws:
                sizes = [len(piece) async for piece in ws.recv_stream()]
                assert sum(sizes) == 8 << 20
                assert len(sizes) > 1 and max(sizes) <= 65536  # never the whole message first

    asyncio.run(main())


def test_deflate_bomb_closes_1009_without_inflating_it() -> None:
    """CVE-2018-1000518 (websockets): max_size not enforced when decompressing."""
    bomb = deflate_raw(b"\x00" * (256 << 20))  # 256 MiB of zeros, about 256 KiB on the wire

    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0, max_message_size=1 << 20) as server:
            port = server.sockets[0].getsockname()[1]
            client = await RawClient.connect(
                port, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"
            )
            assert "permessage-deflate" in client.response_head
            can_measure = _reset_peak_rss()
            before = _peak_rss_kib()
            await client.send(client_frame(2, bomb, rsv=4))
            await client.expect_close(1009)
            if can_measure:
                grown_mib = (_peak_rss_kib() - before) / 1024
                assert grown_mib < 32, f"peak RSS grew by {grown_mib:.0f} MiB"

    asyncio.run(main())


def test_fragmented_compressed_message_over_the_limit_fails_1009() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0, max_message_size=100_000) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send([b"a" * 60_000, b"b" * 60_000])
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009

    asyncio.run(main())
