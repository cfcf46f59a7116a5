"""WebSocket (aio/ws/websocket.py), the user API, end to end on 127.0.0.1: send and recv,
streams and fragments, the request and addresses, ping, close codes and async iteration, and a
handler resumed inline by a read (aio/ws/wakeup.py) that is still its own task.

Its protocol side is test_protocol.py; keepalive, wakeup, broadcast, the client and the server's
handshake have their own modules here, and aio/server.py is tests/aio/test_server.py."""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import framewire
from framewire import ConnectionClosedError, ConnectionClosedOK
from framewire.aio.ws.websocket import WebSocket
from tests.aio.helpers import run_with_server
from tests.conformance.rawclient import RawClient
from tests.waiting import wait_until


def test_echo_text_binary_and_1_mib() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/path") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await ws.recv() == big
            assert ws.close_code is None

    run_with_server(scenario, max_message_size=2 << 20)


def test_handler_sees_request_attributes_and_close_code() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        seen["path"] = ws.request.path
        seen["header"] = ws.request.headers.get("X-Test")
        seen["remote"] = ws.remote_address
        seen["subprotocol"] = ws.subprotocol
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            seen["closed"] = (exc.code, exc.reason, ws.close_code, ws.close_reason)

    async def scenario(port: int) -> None:
        async with framewire.connect(
            f"ws://127.0.0.1:{port}/room/1?x=y",
            extra_headers={"X-Test": "yes"},
            subprotocols=["chat.v1"],
        ) as ws:
            assert ws.subprotocol == "chat.v1"
            assert ws.remote_address == ("127.0.0.1", port)
            local = ws.local_address
            assert local[0] == "127.0.0.1" and local[1] != port
            await ws.close(1000, "bye")
            assert ws.close_code == 1000
            assert ws.remote_address == ("127.0.0.1", port)  # still known once closed

    run_with_server(scenario, handler, subprotocols=["chat.v1"])
    assert seen["path"] == "/room/1"
    assert seen["header"] == "yes"
    assert seen["remote"][0] == "127.0.0.1"
    assert seen["subprotocol"] == "chat.v1"
    assert seen["closed"] == (1000, "bye", 1000, "bye")


def test_async_for_ends_on_normal_close_and_raises_on_error_close() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send("one")
        await ws.close(1011, "oops")

    async def scenario(port: int) -> None:
        ws = await framewire.connect(f"ws://127.0.0.1:{port}/")
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in ws:
                received.append(message)
        assert received == ["one"]
        assert info.value.code == 1011 and info.value.reason == "oops"

    run_with_server(scenario, handler)


def test_ping_returns_once_the_pong_arrives() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            before = time.monotonic()
            latency = await ws.ping(b"x")
            assert 0 <= latency <= time.monotonic() - before  # measured within the call
            assert await ws.ping() >= 0

    run_with_server(scenario)


def test_recv_stream_yields_pieces_of_one_large_message() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send([b"a" * 100_000, b"b" * 100_000, b"c" * 100_000])
        await ws.send(iter(["x", "y"]))
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            pieces = [piece async for piece in ws.recv_stream()]
            assert b"".join(pieces) == b"a" * 100_000 + b"b" * 100_000 + b"c" * 100_000  # type: ignore[arg-type]
            assert len(pieces) >= 3
            assert await ws.recv() == "xy"

    run_with_server(scenario, handler)


def test_send_of_an_async_iterator_is_one_fragmented_message() -> None:
    async def fragments() -> AsyncIterator[str]:
        for part in ("Never look ", "directly into ", "the sun"):
            yield part

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(fragments())
            assert await ws.recv() == "Never look directly into the sun"

    run_with_server(scenario)


def test_oversized_message_closes_with_1009() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b"x" * 2000)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1009

    run_with_server(scenario, max_message_size=1000)


def test_pending_pings_fail_when_the_connection_drops() -> None:
    seen: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.ping(b"never answered")
        except framewire.ConnectionClosed as exc:
            seen.append(exc)

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = await RawClient.connect(port)
            _, _, opcode, payload = await client.read_frame()
            assert (opcode, payload) == (9, b"never answered")  # the handler awaits its pong
            client.writer.transport.abort()
            await wait_until(lambda: seen, what="ping() to fail")

    asyncio.run(main())
    assert len(seen) == 1 and isinstance(seen[0], ConnectionClosedError)


def test_a_fragmented_message_queued_whole_before_the_handler_reads_it() -> None:
    """Pieces of a message may all be queued before the handler looks: it must take them
    without waiting for more data (none will come)."""
    received: list[object] = []

    async def handler(ws: WebSocket) -> None:
        # Both messages are queued, the first in pieces, before the handler looks.
        await wait_until(lambda: ws._inbox._messages == 2, what="both messages queued")
        async for message in ws:
            received.append(message)
            if len(received) == 2:
                await ws.send("got both")

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send([b"frag", b"ment", b"ed"])
            await ws.send("whole")
            assert await asyncio.wait_for(ws.recv(), 5) == "got both"

    run_with_server(scenario, handler)
    assert received == [b"fragmented", "whole"]


def test_the_handler_task_runs_in_its_own_context_when_resumed_by_a_read() -> None:
    """Messages wake the handler's task inline (aio/ws/wakeup.py): it must still be that task,
    with its context variables, asyncio.timeout() and cancellation working."""
    tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="unset")
    seen: list[object] = []

    async def handler(ws: WebSocket) -> None:
        tag.set("handler")
        me = asyncio.current_task()
        async for message in ws:
            seen.append((asyncio.current_task() is me, tag.get()))
            async with asyncio.timeout(5):
                await ws.send(message)
            if len(seen) == 3:
                break
        # The client sends nothing until told: recv() can only end by the timeout.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await ws.recv()
        seen.append("timed out")
        await ws.send("timed out")
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            for index in range(3):
                await ws.send(f"m{index}")
                assert await ws.recv() == f"m{index}"
            assert await ws.recv() == "timed out"

    run_with_server(scenario, handler)
    assert seen == [(True, "handler")] * 3 + ["timed out"]


def test_a_handler_resumed_by_a_read_may_fail_or_close_and_the_server_goes_on() -> None:
    """The handler runs inside the read callback (aio/ws/wakeup.py); what it does there must not
    disturb the transport: an exception closes with 1011, a close() completes normally."""

    async def handler(ws: WebSocket) -> None:
        async for message in ws:
            if message == "fail":
                raise RuntimeError("handler bug")
            if message == "bye":
                await ws.close(4000, "bye")
                return
            await ws.send(message)

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as failing:
            await failing.send("fail")
            with pytest.raises(ConnectionClosedError) as info:
                await failing.recv()
            assert (info.value.code, info.value.reason) == (1011, "internal server error")
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as leaving:
            await leaving.send("echo me")
            assert await leaving.recv() == "echo me"
            await leaving.send("bye")
            with pytest.raises(ConnectionClosedError) as info:
                await leaving.recv()
            assert (info.value.code, info.value.reason) == (4000, "bye")

    run_with_server(scenario, handler)
