"""Request bodies on an HTTP/1 server connection (aio/http1/body.py, BodyChannel): chunked and
streamed with bounded memory, max_body_size, 100-continue, unread bodies discarded or the
connection closed, a client that aborts, a body that stalls. Over real sockets."""

from __future__ import annotations

import asyncio

from framewire.http.messages import Request, Response
from framewire.sansio.limits import HTTPLimits
from tests.aio.http1.helpers import (
    Server,
    assert_closed,
    echo,
    get,
    post,
    read_head,
    read_reply,
    run,
    wait_for_tasks_to_end,
)
from tests.waiting import wait_until


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
