"""Server (aio/server.py): extra headers checked up front, a graceful shutdown that closes every
client with 1001, each connection's task forgotten as it ends, and what a client is answered
when the server's own hooks fail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import framewire
from framewire import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from framewire.aio.ws.websocket import WebSocket
from framewire.http.messages import Request, Response
from tests.aio.helpers import echo
from tests.aio.http1.helpers import assert_closed, post, run
from tests.waiting import wait_until


async def _echo(websocket: framewire.WebSocket) -> None:
    async for message in websocket:
        await websocket.send(message)


async def _allow(request: Any) -> None:
    return None


def _failing_selector(offered: Any) -> str | None:
    raise RuntimeError("select_subprotocol fails")


@pytest.mark.parametrize("with_process_request", [False, True])
def test_a_failing_select_subprotocol_answers_500_and_leaves_nothing_open(
    with_process_request: bool,
) -> None:
    """Found by the header-injection tests: with a process_request hook, the connection stayed
    open and unanswered forever; without one, it was closed without an answer."""
    hooks: dict[str, Any] = {"process_request": _allow} if with_process_request else {}

    async def main() -> None:
        async with framewire.serve(
            _echo, "127.0.0.1", 0, select_subprotocol=_failing_selector, **hooks
        ) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            with pytest.raises(InvalidStatus) as failed:
                await framewire.connect(url, subprotocols=["chat"], open_timeout=5)
            assert failed.value.status == 500
            await wait_until(
                lambda: not server._tasks and not server._http_protocols,
                what="the failed connection to be gone",
            )

    asyncio.run(asyncio.wait_for(main(), 20))


def test_extra_headers_that_would_split_the_101_response_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="invalid character in the value of header 'X'"):
        framewire.serve(echo, "127.0.0.1", 0, extra_headers=[("X", "a\r\nSet-Cookie: evil")])


def test_graceful_shutdown_sends_1001_to_every_client() -> None:
    async def main() -> None:
        server = await framewire.serve(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001

    asyncio.run(main())


@pytest.mark.parametrize("hook", [False, True])
def test_server_forgets_each_connection_task_as_it_ends(hook: bool) -> None:
    """Accepted, rejected and failed connections all leave the set close() waits for."""

    async def process_request(request: Any) -> Any:
        if request.path == "/rejected":
            return Response(403, body=b"no")
        if request.path == "/broken":
            raise RuntimeError("process_request fails")
        return None

    async def handler(ws: WebSocket) -> None:
        if ws.request is not None and ws.request.path == "/raises":
            raise RuntimeError("handler fails")
        await echo(ws)

    async def main() -> None:
        hooks = {"process_request": process_request} if hook else {}
        statuses: list[int] = []
        async with framewire.serve(handler, "127.0.0.1", 0, **hooks) as server:
            port = server.sockets[0].getsockname()[1]
            paths = ["/", "/raises"] + (["/rejected", "/broken"] if hook else [])
            for path in paths:
                try:
                    async with framewire.connect(f"ws://127.0.0.1:{port}{path}") as ws:
                        await ws.send("hi")
                        await ws.recv()
                except InvalidStatus as exc:
                    statuses.append(exc.status)
                except ConnectionClosedError:
                    statuses.append(1011)
            assert statuses == ([1011, 403, 500] if hook else [1011])
            await wait_until(
                lambda: not server._tasks and not server.connections,
                what="every connection's task to end",
            )

    asyncio.run(asyncio.wait_for(main(), 30))


def test_server_shutdown_drops_a_stalled_request_after_close_timeout() -> None:
    """From Python 3.12 asyncio's wait_closed() waits for every connection: a request whose
    body stalls must not hold the shutdown until body_timeout."""
    import framewire

    reading = asyncio.Event()
    outcome: list[BaseException] = []

    async def handler(request: Request) -> Response:
        reading.set()
        try:
            await request.body()
        except ConnectionResetError as exc:
            outcome.append(exc)
            raise
        return Response(body=b"the body never completes")

    async def no_websockets(ws: Any) -> None:
        raise AssertionError("no WebSocket expected")

    async def main() -> None:
        server = await framewire.serve(
            no_websockets, "127.0.0.1", 0, http_handler=handler, close_timeout=0.5
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post("/upload", b"x" * 1000)[:-500])  # half the body, then nothing
        await reading.wait()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        await assert_closed(reader)
        writer.close()
        await wait_until(lambda: outcome, what="the handler's task to end")
        assert isinstance(outcome[0], ConnectionResetError)

    run(main)
