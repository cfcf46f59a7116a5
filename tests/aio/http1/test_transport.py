"""The transport plumbing under an HTTP/1 connection (aio/http1/transport.py): reading paused
for bytes pipelined behind a busy request, and the lingering close after an error answer, its
deadline checked on a manual clock."""

from __future__ import annotations

import asyncio

from framewire.http.messages import Request, Response
from framewire.sansio.limits import HTTPLimits
from tests.aio.http1.helpers import TICK, Server, get, in_memory, post, read_reply, run
from tests.waiting import wait_until


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
