"""broadcast() (aio/ws/broadcast.py): one message to many connections, framed and compressed
once, skipping or closing a peer too slow to keep up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import framewire
from framewire.aio.ws.websocket import WebSocket
from tests.aio.helpers import run_with_server
from tests.conformance.rawclient import RawClient
from tests.waiting import wait_until


def test_broadcast_reaches_every_client_and_skips_a_slow_one() -> None:
    connections: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        connections.append(ws)
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(5)]
        await wait_until(lambda: len(connections) == 5, what="five handlers")
        assert framewire.broadcast(connections, "news") == 5
        for ws in clients:
            assert await ws.recv() == "news"
        assert framewire.broadcast(connections, b"\x01\x02") == 5
        for ws in clients:
            assert await ws.recv() == b"\x01\x02"
        for ws in clients:
            await ws.close()

    run_with_server(scenario, handler)


def test_broadcast_hands_listeners_that_never_sent_to_the_poller_and_they_still_talk() -> None:
    from framewire.aio.ws import socket_poller

    connections: list[WebSocket] = []

    async def echo_after_joining(ws: WebSocket) -> None:
        connections.append(ws)
        async for message in ws:
            await ws.send(message)

    async def scenario(port: int) -> None:
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        await wait_until(lambda: len(connections) == 3, what="three handlers")
        assert all(ws._polled is None for ws in connections)  # none has read a frame yet
        assert framewire.broadcast(connections, "first") == 3
        polled = socket_poller._Poller is not None
        assert all((ws._polled is not None) is polled for ws in connections)
        assert framewire.broadcast(connections, b"second") == 3
        for number, ws in enumerate(clients):
            assert await ws.recv() == "first"
            assert await ws.recv() == b"second"
            await ws.send(f"echo {number}")  # read by the Poller now
            assert await ws.recv() == f"echo {number}"
            await ws.close()

    run_with_server(scenario, echo_after_joining, compression=None)


def test_broadcast_overflow_policies() -> None:
    connections: dict[str, WebSocket] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        connections[ws.request.path] = ws
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        slow = await RawClient.connect(port, path="/slow", limit=4096)  # never reads
        fast = await framewire.connect(f"ws://127.0.0.1:{port}/fast", max_message_size=None)
        await wait_until(lambda: len(connections) == 2, what="both handlers")
        message = b"b" * 256 * 1024
        skipped = 0
        for _ in range(100):
            delivered = framewire.broadcast(connections.values(), message)
            skipped += 2 - delivered
            assert await asyncio.wait_for(fast.recv(), 5) == message
        assert skipped > 0, "the slow client's buffer never overflowed"
        assert connections["/slow"].buffered_amount < 64 * 1024 + 2 * len(message)
        framewire.broadcast(connections.values(), message, on_overflow="close")
        await asyncio.wait_for(connections["/slow"].wait_closed(), 15)
        assert connections["/slow"].connection.close_sent == (
            1008,
            "too slow to keep up with broadcast",
        )
        await fast.close()
        slow.writer.close()

    run_with_server(scenario, handler, compression=None, close_timeout=1)


def test_broadcast_of_small_messages_stops_at_a_stalled_reader() -> None:
    # Small messages go out in one send() while a socket has nothing queued; once the stalled
    # reader's kernel buffer is full the rest queues, and from then on its buffer limit rules.
    connections: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        connections.append(ws)
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        stalled = await RawClient.connect(port, limit=4096)  # never reads
        await wait_until(lambda: len(connections) == 1, what="the handler")
        message = "m" * 1000
        sent = 0
        # Loopback's kernel buffers take a few MiB before anything queues in the transport.
        while sent < 100_000 and framewire.broadcast(connections, message) == 1:
            sent += 1
        assert 0 < sent < 100_000, "the stalled reader was never skipped"
        for _ in range(10):
            await asyncio.sleep(0)
            assert framewire.broadcast(connections, message) == 0
        assert 0 < connections[0].buffered_amount <= connections[0].write_limit + 1004
        stalled.writer.close()

    run_with_server(scenario, handler, compression=None, close_timeout=1)


def test_broadcast_compresses_once_for_peers_that_can_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from framewire.sansio.deflate import DeflateConfig, PerMessageDeflate

    connections: list[WebSocket] = []
    compress_calls = 0
    original = PerMessageDeflate.compress

    def counting(self: PerMessageDeflate, data: Any, *, final: bool) -> bytes:
        nonlocal compress_calls
        compress_calls += 1
        return original(self, data, final=final)

    async def handler(ws: WebSocket) -> None:
        connections.append(ws)
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        await wait_until(lambda: len(connections) == 3, what="three handlers")
        for ws in connections:
            deflate = ws.connection.deflate
            assert deflate is not None and deflate.can_share_output
        monkeypatch.setattr(PerMessageDeflate, "compress", counting)
        text = '{"type": "message", "text": "hello everyone"}' * 20
        assert framewire.broadcast(connections, text) == 3
        assert compress_calls == 1
        monkeypatch.undo()
        for ws in clients:
            assert await ws.recv() == text
            await ws.close()

    run_with_server(scenario, handler, compression=DeflateConfig(server_no_context_takeover=True))
