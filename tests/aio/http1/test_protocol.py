"""HTTP1ServerProtocol (aio/http1/protocol.py), the asyncio HTTP/1.1 server connection, over
real sockets: requests reaching the handler, keep-alive and HTTP/1.0, pipelining in order, parse
errors, timeouts, a graceful close and the upgrade hand-off; then its timers on a manual clock.
Bodies, responses, handlers and the transport plumbing have their own modules here."""

from __future__ import annotations

import asyncio

import pytest

from framewire.http.messages import Request, Response
from framewire.sansio.http11 import (
    RequestHead,
)
from framewire.sansio.limits import HTTPLimits
from tests.aio.http1.helpers import (
    TICK,
    UPGRADE,
    Server,
    answered,
    assert_closed,
    echo,
    get,
    in_memory,
    post,
    read_reply,
    run,
)
from tests.waiting import loop_turns, wait_until

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


# Upgrade.

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


# Parsing shares the event loop.


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


# In memory: the connection's timers on a manual clock, over a fake transport
# (tests/aio/fakes.py). Each deadline is checked just before and as it falls due.


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
