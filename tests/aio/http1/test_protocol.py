"""Tests for aio/http1/protocol.py: the asyncio HTTP/1.1 server connection, over real sockets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from framewire.aio.http1.protocol import HTTP1ServerProtocol, UpgradeHandler
from framewire.exceptions import HTTPError
from framewire.http.messages import FileBody, HTTPHandler, Request, Response
from framewire.sansio.http11 import (
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestHead,
    ResponseHead,
    ResponseParser,
)
from framewire.sansio.limits import HTTPLimits
from tests.aio.fakes import FakeTransport, ManualClock
from tests.waiting import loop_turns, wait_until

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


# Basics.


def test_get_and_post_reach_the_handler() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return await echo(request)

    async def main() -> None:
        server = await Server().start(handler, server_header="framewire-test")
        reader, writer = await server.connect()
        writer.write(get("/a%20b?x=1&x=2&y="))
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.headers["X-Info"] == "GET /a b [('x', ['1', '2']), ('y', [''])]"
        assert reply.headers["Server"] == "framewire-test"
        assert "Date" in reply.headers
        writer.write(post("/up", b"payload"))
        reply = await read_reply(reader)
        assert reply.body == b"payload"
        request = seen[0]
        assert (request.raw_path, request.query, request.http_version) == (
            "/a%20b",
            "x=1&x=2&y=",
            "1.1",
        )
        assert request.remote_address is not None
        assert request.remote_address[0] == "127.0.0.1"
        assert request.headers["host"] == "test"
        writer.close()
        await server.close()

    run(main)


def test_handler_errors_become_500_and_http_errors_keep_their_status() -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/teapot":
            raise HTTPError(418, "short and stout")
        raise RuntimeError("boom")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get("/teapot"))
        reply = await read_reply(reader)
        assert (reply.status, reply.body) == (418, b"short and stout\n")
        writer.write(get("/boom"))
        reply = await read_reply(reader)
        assert reply.status == 500
        assert b"boom" not in reply.body
        writer.close()
        await server.close()

    run(main)


def test_without_http_handler_requests_get_426() -> None:
    async def main() -> None:
        server = await Server().start(None)
        reader, writer = await server.connect()
        writer.write(get())
        reply = await read_reply(reader)
        assert reply.status == 426
        assert reply.headers["Upgrade"] == "websocket"
        assert reply.headers["Sec-WebSocket-Version"] == "13"
        assert reply.headers["Content-Type"].startswith("text/plain") or reply.body
        writer.close()
        await server.close()

    run(main)


# Connection management.


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        for index in range(3):
            writer.write(post(f"/{index}", b"x" * index))
            reply = await read_reply(reader)
            assert reply.body == b"x" * index
            assert "Connection" not in reply.headers
        writer.write(get("/", "Connection: close"))
        reply = await read_reply(reader)
        assert reply.headers["Connection"] == "close"
        await assert_closed(reader)
        assert len(server.protocols) == 1
        writer.close()
        await server.close()

    run(main)


def test_http_10_closes_unless_keep_alive() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        writer.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reply = await read_reply(reader)
        assert reply.headers["Connection"] == "keep-alive"
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        reply = await read_reply(reader)
        assert reply.status == 200
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_pipelined_requests_are_answered_in_order_one_task_at_a_time() -> None:
    running = 0
    most_running = 0

    async def handler(request: Request) -> Response:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        # The first request is the slowest: answers must still come in request order.
        await loop_turns({"/1": 50, "/2": 0, "/3": 10}[request.path])
        running -= 1
        return Response(body=request.path.encode() + await request.body())

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get("/1") + post("/2", b"-body") + get("/3"))
        bodies = [(await read_reply(reader)).body for _ in range(3)]
        assert bodies == [b"/1", b"/2-body", b"/3"]
        assert most_running == 1
        writer.close()
        await server.close()

    run(main)


def test_pipelined_requests_then_half_close_are_all_answered() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        writer.write(get("/1") + post("/2", b"body") + get("/3"))
        writer.write_eof()
        replies = [await read_reply(reader) for _ in range(3)]
        assert [reply.body for reply in replies] == [b"", b"body", b""]
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_handler_connection_header_does_not_contradict_a_close() -> None:
    async def handler(request: Request) -> Response:
        return Response(headers=[("Connection", "keep-alive")], body=b"x")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get("/", "Connection: close"))
        reply = await read_reply(reader)
        assert reply.headers.get_all("Connection") == ["close"]
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_idle_connection_has_no_task_and_closes_after_keepalive_timeout() -> None:
    async def main() -> None:
        limits = HTTPLimits(keepalive_timeout=0.2)
        server = await Server().start(echo, limits=limits)
        reader, writer = await server.connect()
        writer.write(get())
        await read_reply(reader)
        await wait_until(lambda: server.protocols[0]._task is None, what="the task to end")
        await assert_closed(reader)  # the deadline: see the in-memory tests at the end
        writer.close()
        await server.close()

    run(main)


def test_slow_head_gets_408_and_close() -> None:
    async def main() -> None:
        server = await Server().start(echo, limits=HTTPLimits(header_timeout=0.2))
        reader, writer = await server.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        reply = await read_reply(reader)
        assert reply.status == 408
        assert b"header_timeout" in reply.body
        assert reply.headers["Connection"] == "close"
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
)
def test_parse_errors_answer_their_status_and_close(data: bytes, status: int) -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        writer.write(data)
        reply = await read_reply(reader)
        assert reply.status == status
        assert reply.headers["Connection"] == "close"
        assert reply.headers["Content-Type"].startswith("text/plain")
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_graceful_close_waits_for_the_response_in_progress() -> None:
    started = asyncio.Event()
    finish = asyncio.Event()

    async def handler(request: Request) -> Response:
        started.set()
        await finish.wait()
        return Response(body=b"done")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        await started.wait()
        server.protocols[0].close()
        await loop_turns(10)
        assert not server.protocols[0].transport.is_closing()  # the response is still due
        finish.set()
        reply = await read_reply(reader)
        assert (reply.body, reply.headers["Connection"]) == (b"done", "close")
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


# Request bodies.


def test_chunked_request_body() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        writer.write(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: yes\r\n\r\n"
        )
        assert (await read_reply(reader)).body == b"hello world"
        writer.close()
        await server.close()

    run(main)


def test_request_body_streams_with_bounded_memory() -> None:
    size = 4 << 20
    paused_seen: list[bool] = []
    server = Server()

    async def handler(request: Request) -> Response:
        request.max_body_size = size
        # Nothing consumed yet: the body buffer fills and the socket is paused.
        transport = server.protocols[0].transport
        await wait_until(lambda: not transport.is_reading(), what="reading to pause")
        paused_seen.append(not transport.is_reading())
        total = 0
        async for chunk in request.stream():
            assert len(chunk) <= 256 * 1024
            total += len(chunk)
        return Response(body=str(total).encode())

    async def main() -> None:
        await server.start(handler)
        reader, writer = await server.connect()
        writer.write(post("/big", b"z" * size))
        reply = await read_reply(reader)
        assert reply.body == str(size).encode()
        assert paused_seen == [True]
        writer.close()
        await server.close()

    run(main)


def test_body_over_max_body_size_is_413() -> None:
    async def handler(request: Request) -> Response:
        request.max_body_size = 10
        return await echo(request)

    async def main() -> None:
        server = await Server().start(handler)
        for data in (
            post("/", b"x" * 11),
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\n12345\r\n6\r\n123456\r\n0\r\n\r\n",
        ):
            reader, writer = await server.connect()
            writer.write(data)
            reply = await read_reply(reader)
            assert reply.status == 413
            assert b"max_body_size=10" in reply.body
            await assert_closed(reader)
            writer.close()
        await server.close()

    run(main)


def test_default_max_body_size_comes_from_limits() -> None:
    async def main() -> None:
        server = await Server().start(echo, limits=HTTPLimits(max_body_size=5))
        reader, writer = await server.connect()
        writer.write(post("/", b"123456"))
        assert (await read_reply(reader)).status == 413
        writer.close()
        await server.close()

    run(main)


def test_expect_100_continue_is_answered_when_the_body_is_read() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        head, body = post("/", b"the body", "Expect: 100-continue").split(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        assert await read_head(reader) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        reply = await read_reply(reader)
        assert (reply.status, reply.body) == (200, b"the body")
        writer.close()
        await server.close()

    run(main)


def test_expect_100_continue_without_reading_closes_instead_of_waiting() -> None:
    async def handler(request: Request) -> Response:
        return Response(403, body=b"no")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(post("/", b"", "Expect: 100-continue").replace(b"Length: 0", b"Length: 99"))
        reply = await read_reply(reader)
        assert (reply.status, reply.headers["Connection"]) == (403, "close")
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_unread_body_is_discarded_and_the_connection_reused() -> None:
    async def handler(request: Request) -> Response:
        return Response(body=b"ignored " + request.path.encode())

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(post("/a", b"q" * 100_000) + get("/b"))
        assert (await read_reply(reader)).body == b"ignored /a"
        assert (await read_reply(reader)).body == b"ignored /b"
        writer.close()
        await server.close()

    run(main)


def test_unread_body_larger_than_max_body_size_closes_instead() -> None:
    async def handler(request: Request) -> Response:
        request.max_body_size = 10
        return Response(body=b"ignored")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(post("/a", b"q" * 1000)[:-900])  # 900 bytes to come: more than 10
        reply = await read_reply(reader)
        assert (reply.body, reply.headers["Connection"]) == (b"ignored", "close")
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_client_abort_mid_body_raises_connection_reset_and_leaks_nothing() -> None:
    errors: list[BaseException] = []
    reading = asyncio.Event()

    async def handler(request: Request) -> Response:
        try:
            async for _ in request.stream():
                reading.set()
        except ConnectionResetError as error:
            errors.append(error)
            raise
        return Response()

    async def main() -> None:
        baseline = asyncio.all_tasks()
        server = await Server().start(handler)
        _reader, writer = await server.connect()
        writer.write(post("/", b"x" * 1000)[:-500])
        await reading.wait()
        assert len(asyncio.all_tasks() - baseline) == 1  # the request's task
        writer.close()
        await writer.wait_closed()
        await wait_for_tasks_to_end(baseline)
        assert len(errors) == 1
        assert server.protocols[0]._transport is not None
        assert server.protocols[0]._transport.is_closing()
        await server.close()

    run(main)


def test_body_stalled_past_body_timeout_is_408() -> None:
    async def main() -> None:
        server = await Server().start(echo, limits=HTTPLimits(body_timeout=0.2))
        reader, writer = await server.connect()
        writer.write(post("/", b"x" * 100)[:-50])
        reply = await read_reply(reader)
        assert reply.status == 408
        assert b"body_timeout" in reply.body
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


# Responses.


async def numbers(count: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield b"%d," % index
        await asyncio.sleep(0)


def test_streaming_response_is_chunked() -> None:
    async def handler(request: Request) -> Response:
        return Response(body=numbers(1000), headers=[("Content-Length", "3")])

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        reply = await read_reply(reader)
        assert reply.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in reply.headers
        assert reply.body == b"".join(b"%d," % index for index in range(1000))
        writer.write(get())  # the connection is still usable
        assert (await read_reply(reader)).status == 200
        writer.close()
        await server.close()

    run(main)


def test_streaming_response_to_http_10_is_close_delimited() -> None:
    async def handler(request: Request) -> Response:
        return Response(body=numbers(10))

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reply = await read_reply(reader)
        assert "Transfer-Encoding" not in reply.headers
        assert reply.headers["Connection"] == "close"
        assert reply.body == b"".join(b"%d," % index for index in range(10))
        writer.close()
        await server.close()

    run(main)


def test_large_streaming_response_respects_write_backpressure() -> None:
    piece = b"p" * 65536
    produced = 0

    async def pieces() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(200):
            produced += 1
            yield piece

    async def handler(request: Request) -> Response:
        return Response(body=pieces())

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        # The client does not read: once the write buffer is full, the producer waits.
        await wait_until(lambda: server.protocols[0]._write_paused, what="writing to pause")
        held_at = produced
        await loop_turns(50)
        assert produced == held_at < 200
        reply = await read_reply(reader)
        assert len(reply.body) == 200 * len(piece)
        writer.close()
        await server.close()

    run(main)


def test_file_body_is_sent_with_content_length(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    content = os.urandom(300_000)
    path.write_bytes(content)

    async def handler(request: Request) -> Response:
        if request.path == "/part":
            return Response(body=FileBody(str(path), offset=10, length=1000))
        if request.path == "/missing":
            return Response(body=FileBody(str(tmp_path / "nope")))
        return Response(
            headers=[("Content-Type", "application/octet-stream")], body=FileBody(str(path))
        )

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get("/all") + get("/part") + get("/missing"))
        reply = await read_reply(reader)
        assert (reply.body == content, reply.headers["Content-Length"]) == (True, "300000")
        assert (await read_reply(reader)).body == content[10:1010]
        assert (await read_reply(reader)).status == 404
        writer.close()
        await server.close()

    run(main)


def test_head_request_gets_the_head_only() -> None:
    async def main() -> None:
        server = await Server().start(lambda request: echo_get(request))
        reader, writer = await server.connect()
        writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + get("/after"))
        head = await read_head(reader)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: 11\r\n" in head
        reply = await read_reply(reader)  # the next bytes are the next response
        assert reply.body == b"hello world"
        writer.close()
        await server.close()

    async def echo_get(request: Request) -> Response:
        return Response(body=b"hello world")

    run(main)


def test_invalid_response_header_is_500() -> None:
    async def handler(request: Request) -> Response:
        return Response(headers=[("X-Bad", "a\r\nInjected: 1")], body=b"x")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        reply = await read_reply(reader)
        assert reply.status == 500
        assert "Injected" not in reply.headers
        writer.close()
        await server.close()

    run(main)


# Upgrade.

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"


class Recorder(asyncio.Protocol):
    """Stands in for the WebSocket protocol after the handoff."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.got_data = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.got_data.set()


def test_upgrade_request_is_handed_off_with_the_leftover_bytes() -> None:
    handoffs: list[tuple[RequestHead, bytes]] = []
    recorder = Recorder()

    def upgrade(head: RequestHead, transport: asyncio.Transport, leftover: bytes) -> None:
        handoffs.append((head, leftover))
        transport.set_protocol(recorder)
        transport.write(b"switched\n")

    async def main() -> None:
        server = await Server().start(echo, upgrade)
        reader, writer = await server.connect()
        # A plain request first: the upgrade waits for its response.
        writer.write(get("/first") + UPGRADE + FRAME)
        assert (await read_reply(reader)).status == 200
        assert await reader.readline() == b"switched\n"
        assert len(handoffs) == 1
        head, leftover = handoffs[0]
        assert (head.method, head.path) == ("GET", "/ws")
        assert leftover == FRAME
        writer.write(b"after")
        await recorder.got_data.wait()
        assert bytes(recorder.received) == b"after"
        writer.close()
        await server.close()

    run(main)


def test_upgrade_without_upgrade_handler_is_426() -> None:
    async def main() -> None:
        server = await Server().start(echo, None)
        reader, writer = await server.connect()
        writer.write(UPGRADE)
        assert (await read_reply(reader)).status == 426
        writer.close()
        await server.close()

    run(main)


def test_request_body_json_and_text_helpers() -> None:
    async def handler(request: Request) -> Response:
        data: Any = await request.json()
        assert await request.text() == '{"a": [1, 2]}'
        return Response(body=repr(data).encode())

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(post("/", b'{"a": [1, 2]}'))
        assert (await read_reply(reader)).body == b"{'a': [1, 2]}"
        writer.write(post("/", b"{not json"))
        reply = await read_reply(reader)
        assert reply.status == 400
        writer.close()
        await server.close()

    run(main)


def test_pipelined_bytes_behind_a_busy_request_pause_reading() -> None:
    paused_seen: list[bool] = []
    server = Server()
    slow_started = asyncio.Event()

    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            slow_started.set()
            transport = server.protocols[0].transport
            await wait_until(lambda: not transport.is_reading(), what="reading to pause")
            paused_seen.append(not transport.is_reading())
        return Response(body=b"%d" % len(await request.body()))

    async def main() -> None:
        await server.start(handler, limits=HTTPLimits(max_head_size=1000))
        reader, writer = await server.connect()
        writer.write(get("/slow"))
        await slow_started.wait()
        writer.write(post("/next", b"n" * 5000))  # arrives while /slow is being handled
        assert (await read_reply(reader)).body == b"0"
        assert (await read_reply(reader)).body == b"5000"
        assert paused_seen == [True]
        writer.close()
        await server.close()

    run(main)


def test_close_when_idle_closes_at_once() -> None:
    async def main() -> None:
        server = await Server().start(echo)
        reader, writer = await server.connect()
        writer.write(get())
        await read_reply(reader)
        server.protocols[0].close()
        await assert_closed(reader)
        writer.close()
        await server.close()

    run(main)


def test_handler_returning_something_else_is_500() -> None:
    async def handler(request: Request) -> Response:
        return "not a response"  # type: ignore[return-value]

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        assert (await read_reply(reader)).status == 500
        writer.close()
        await server.close()

    run(main)


# Request objects on their own.


def test_request_build_gives_an_in_memory_request() -> None:
    async def main() -> None:
        request = Request.build(
            "POST", "/x%2Fy?q=a+b", headers=[("Content-Type", "text/plain")], body=b"caf\xc3\xa9"
        )
        assert (request.path, request.raw_path) == ("/x/y", "/x%2Fy")
        assert request.query_params == {"q": ["a b"]}
        assert request.path_params == {}
        assert await request.text() == "café"
        assert [chunk async for chunk in request.stream()] == [b"caf\xc3\xa9"]  # cached

    run(main)


def test_request_body_can_be_streamed_once() -> None:
    async def main() -> None:
        request = Request.build("POST", "/", body=b"abc")
        assert [chunk async for chunk in request.stream()] == [b"abc"]
        with pytest.raises(RuntimeError):
            [chunk async for chunk in request.stream()]

    run(main)


def test_in_memory_body_over_max_body_size_is_413() -> None:
    async def main() -> None:
        request = Request.build("POST", "/", body=b"abc", max_body_size=2)
        with pytest.raises(HTTPError) as info:
            await request.body()
        assert info.value.http_status == 413
        request = Request.build("POST", "/", body=b"\xff")
        with pytest.raises(HTTPError) as info:
            await request.text()
        assert info.value.http_status == 400

    run(main)


def test_a_body_of_tiny_chunks_is_parsed_over_many_loop_turns() -> None:
    """aiohttp CVE-2025-69229: reads full of 1-byte chunks must not hold the event loop."""
    count = 100_000

    async def handler(request: Request) -> Response:
        return Response(200, [], str(len(await request.body())).encode())

    async def main() -> None:
        server = await Server().start(
            handler, limits=HTTPLimits(max_body_size=1 << 20, max_chunks=1 << 20)
        )
        reader, writer = await server.connect()
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                await asyncio.sleep(0)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        body = b"1\r\nx\r\n" * count + b"0\r\n\r\n"
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        reply = await read_reply(reader)
        done = True
        await ticking
        assert reply.status == 200 and reply.body == str(count).encode()
        # 100,000 chunks at most ~2,700 per loop turn: the loop ran many times in between
        # (without the budget, the whole 600 KB body is parsed in two or three turns).
        assert ticks >= 30
        writer.close()
        await server.close()

    run(main)


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


# In memory: the connection's timers on a manual clock, over a fake transport
# (tests/aio/fakes.py). Each deadline is checked just before and as it falls due.

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


def test_an_idle_keep_alive_connection_closes_at_keepalive_timeout() -> None:
    async def main() -> None:
        protocol, transport, clock = in_memory(HTTPLimits(keepalive_timeout=5, header_timeout=10))
        transport.feed(get())
        await answered(protocol, transport, 1)
        clock.advance(5 - TICK)
        assert not transport.closing
        transport.feed(get())  # a second request on the kept-alive connection
        await answered(protocol, transport, 2)
        clock.advance(5 - TICK)  # counted from the second response, not the first
        assert not transport.closing
        clock.advance(TICK)
        assert transport.closing and not transport.eof_written  # a plain close, no answer
        assert transport.sent.count(b"HTTP/1.1 ") == 2

    run(main)


def test_a_head_not_finished_within_header_timeout_gets_408_then_a_lingering_close() -> None:
    async def main() -> None:
        limits = HTTPLimits(keepalive_timeout=5, header_timeout=10, linger_timeout=2)
        _, transport, clock = in_memory(limits)
        clock.advance(4)  # idle, as on a fresh connection: header_timeout runs from the start
        transport.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        clock.advance(6 - TICK)
        assert transport.sent == b""
        clock.advance(TICK)
        assert transport.sent.startswith(b"HTTP/1.1 408 ")
        assert b"header_timeout=10" in transport.sent and b"Connection: close" in transport.sent
        assert transport.eof_written and not transport.closing  # draining the client's input
        clock.advance(2 - TICK)
        assert not transport.closing
        clock.advance(TICK)
        assert transport.closing

    run(main)


def test_a_head_that_starts_after_a_response_gets_its_own_header_timeout() -> None:
    async def main() -> None:
        protocol, transport, clock = in_memory(HTTPLimits(keepalive_timeout=5, header_timeout=10))
        transport.feed(get())
        await answered(protocol, transport, 1)
        clock.advance(4)
        transport.feed(b"GET /next HTTP/1.1\r\n")  # the keepalive timer gives way
        clock.advance(10 - TICK)
        assert not transport.closing and transport.sent.count(b"HTTP/1.1 ") == 1
        clock.advance(TICK)
        assert transport.sent.count(b"HTTP/1.1 408 ") == 1

    run(main)
