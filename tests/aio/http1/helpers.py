"""Helpers shared by the HTTP/1 server connection's tests (tests/aio/http1/): a listening
HTTP1ServerProtocol on 127.0.0.1, a client that reads replies with the sans-I/O response parser,
request builders, and the in-memory set-up on a FakeTransport and a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from framewire.aio.http1.protocol import HTTP1ServerProtocol, UpgradeHandler
from framewire.http.messages import HTTPHandler, Request, Response
from framewire.sansio.http11 import (
    BadResponse,
    BodyData,
    EndOfMessage,
    ResponseHead,
    ResponseParser,
)
from framewire.sansio.limits import HTTPLimits
from tests.aio.fakes import FakeTransport, ManualClock
from tests.waiting import wait_until

TIMEOUT = 10.0


Main = Callable[[], Awaitable[None]]


def run(main: Main) -> None:
    """Run one test's coroutine with a bound on its duration."""
    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


class Server:
    """A listening HTTP1ServerProtocol server on 127.0.0.1, port 0."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.protocols: list[HTTP1ServerProtocol] = []
        self.port = 0

    async def start(
        self,
        http_handler: HTTPHandler | None,
        upgrade_handler: UpgradeHandler | None = None,
        limits: HTTPLimits = HTTPLimits(),  # noqa: B008
        server_header: str | None = None,
    ) -> Server:
        def factory() -> HTTP1ServerProtocol:
            protocol = HTTP1ServerProtocol(
                http_handler, upgrade_handler, limits, server_header=server_header
            )
            self.protocols.append(protocol)
            return protocol

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(factory, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class Reply:
    """A response read by the test client."""

    def __init__(self, head: ResponseHead, body: bytes) -> None:
        self.head = head
        self.status = head.status
        self.headers = head.headers
        self.body = body


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """Read one response (with its body) using the sans-I/O response parser."""
    parser = ResponseParser(max_body_size=1 << 30)
    head: ResponseHead | None = None
    body = bytearray()
    while True:
        data = await reader.read(65536)
        if data:
            parser.receive_data(data)
        else:
            parser.receive_eof()
        while parser.has_more_to_parse:
            parser.parse_more()
        for event in parser.events_received():
            if isinstance(event, ResponseHead) and event.status >= 200:
                head = event
            elif isinstance(event, BodyData):
                body += event.data
            elif isinstance(event, EndOfMessage):
                assert head is not None
                leftover = parser.take_unparsed()
                if leftover:
                    reader._buffer[:0] = leftover  # type: ignore[attr-defined]
                return Reply(head, bytes(body))
            elif isinstance(event, BadResponse):
                raise AssertionError(event.reason)
        if not data:
            raise AssertionError("connection closed before the response")


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def assert_closed(reader: asyncio.StreamReader) -> None:
    """Check the server closed the connection (after anything it still had to send)."""
    while True:
        try:
            data = await reader.read(65536)
        except ConnectionResetError:
            return
        if not data:
            return


def get(target: str = "/", *extra: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: test", *extra, "", ""]
    return "\r\n".join(lines).encode()


def post(target: str, body: bytes, *extra: str) -> bytes:
    lines = [f"POST {target} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}", *extra]
    return "\r\n".join([*lines, "", ""]).encode() + body


async def echo(request: Request) -> Response:
    body = await request.body()
    info = f"{request.method} {request.path} {sorted(request.query_params.items())}"
    return Response(200, [("X-Info", info)], body)


async def wait_for_tasks_to_end(baseline: set[asyncio.Task[Any]]) -> None:
    """Wait until no task is left but those of ``baseline``."""
    await wait_until(lambda: not asyncio.all_tasks() - baseline, what="the tasks to end")


TICK = 0.001  # seconds: a moment


def in_memory(limits: HTTPLimits) -> tuple[HTTP1ServerProtocol, FakeTransport, ManualClock]:
    clock = ManualClock()
    protocol = HTTP1ServerProtocol(echo, None, limits, timers=clock)
    return protocol, FakeTransport(protocol), clock


async def answered(protocol: HTTP1ServerProtocol, transport: FakeTransport, count: int) -> None:
    """Wait until ``count`` responses were written and the handler's task ended."""
    await wait_until(
        lambda: transport.sent.count(b"HTTP/1.1 ") == count and protocol._task is None,
        what=f"{count} responses",
    )


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
