"""Interop with the websockets library (issue 3): each as client against the other as server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.exceptions import ConnectionClosedError as WebsocketsClosedError

import framewire
from framewire import ConnectionClosedError
from tests.interop.helpers import (
    BASIC_MESSAGES,
    MAX_MESSAGE_SIZE,
    TIMEOUT,
    EchoRecorder,
    echo_basic_messages,
    framewire_client_round,
)

Scenario = Callable[[str], Awaitable[None]]


def run_against_framewire(scenario: Scenario, recorder: EchoRecorder, **options: Any) -> None:
    """Run ``scenario(url)`` against a framewire echo server on 127.0.0.1."""

    async def main() -> None:
        options.setdefault("max_message_size", MAX_MESSAGE_SIZE)
        async with framewire.serve(recorder, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/"), TIMEOUT)

    asyncio.run(main())


class WebsocketsEcho:
    """websockets echo handler; "!close CODE REASON" closes; records close codes it received."""

    def __init__(self) -> None:
        self.closes: list[tuple[int | None, str | None]] = []

    async def __call__(self, ws: ServerConnection) -> None:
        """Echo until closed."""
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("!close "):
                    code, _, reason = message[len("!close ") :].partition(" ")
                    await ws.close(int(code), reason)
                    break
                await ws.send(message)
        except WebsocketsClosed:
            pass
        finally:
            await ws.wait_closed()
            self.closes.append((ws.close_code, ws.close_reason))


def run_against_websockets(scenario: Scenario, handler: WebsocketsEcho, **options: Any) -> None:
    """Run ``scenario(url)`` against a websockets echo server on 127.0.0.1."""

    async def main() -> None:
        options.setdefault("max_size", MAX_MESSAGE_SIZE)
        async with websockets_serve(handler, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/"), TIMEOUT)

    asyncio.run(main())


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_websockets_client_echoes_through_framewire_server(compression: str | None) -> None:
    recorder = EchoRecorder()

    async def scenario(url: str) -> None:
        async with websockets_connect(
            url, compression=compression, max_size=MAX_MESSAGE_SIZE
        ) as ws:
            await echo_basic_messages(ws)
            pong = await ws.ping(b"interop")
            await asyncio.wait_for(pong, 5)
            await ws.close(4001, "client bye")
        # RFC 6455 5.5.1: the answer echoes the code; echoing the reason is not required.
        assert ws.close_code == 4001

    run_against_framewire(scenario, recorder, compression=compression)
    [record] = recorder.records
    assert record.deflate is (compression is not None)
    assert record.messages == len(BASIC_MESSAGES)
    assert (record.close_code, record.close_reason) == (4001, "client bye")


def test_websockets_client_sees_framewire_server_close_code_and_reason() -> None:
    recorder = EchoRecorder()

    async def scenario(url: str) -> None:
        async with websockets_connect(url) as ws:
            await ws.send("!close 4002 server bye")
            with pytest.raises(WebsocketsClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "server bye")
        assert (ws.close_code, ws.close_reason) == (4002, "server bye")

    run_against_framewire(scenario, recorder)
    [record] = recorder.records
    # The closing side sees the code the peer echoed back.
    assert record.close_code == 4002


def test_websockets_client_normal_close_without_code() -> None:
    recorder = EchoRecorder()

    async def scenario(url: str) -> None:
        async with websockets_connect(url) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
        assert ws.close_code == 1000

    run_against_framewire(scenario, recorder)
    assert recorder.records[0].close_code == 1000


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_framewire_client_echoes_through_websockets_server(compression: str | None) -> None:
    handler = WebsocketsEcho()

    async def scenario(url: str) -> None:
        async with framewire.connect(
            url, compression=compression, max_message_size=MAX_MESSAGE_SIZE
        ) as ws:
            await framewire_client_round(ws, compression)
            await ws.close(4001, "client bye")
            assert ws.close_code == 4001  # echoed by the server

    run_against_websockets(scenario, handler, compression=compression)
    assert handler.closes == [(4001, "client bye")]


def test_framewire_client_sees_websockets_server_close_code_and_reason() -> None:
    handler = WebsocketsEcho()

    async def scenario(url: str) -> None:
        async with framewire.connect(url) as ws:
            await ws.send("!close 4002 server bye")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (4002, "server bye")
            assert (ws.close_code, ws.close_reason) == (4002, "server bye")

    run_against_websockets(scenario, handler)
    assert [code for code, _ in handler.closes] == [4002]


def test_framewire_client_answers_websockets_server_ping() -> None:
    handler_done: list[float] = []

    async def pinger(ws: ServerConnection) -> None:
        pong = await ws.ping(b"from-server")
        handler_done.append(await asyncio.wait_for(pong, 5))
        await ws.close(1000, "done")

    async def scenario(url: str) -> None:
        async with framewire.connect(url) as ws:
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (1000, "done")

    async def main() -> None:
        async with websockets_serve(pinger, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/"), TIMEOUT)

    asyncio.run(main())
    assert len(handler_done) == 1 and handler_done[0] >= 0
