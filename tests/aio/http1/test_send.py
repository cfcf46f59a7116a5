"""Responses on an HTTP/1 server connection (aio/http1/send.py): streamed bodies chunked, or
close-delimited for HTTP/1.0, held back by a slow client; files with their Content-Length;
HEAD; a Connection header that cannot contradict a close; an invalid header answered 500."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from framewire.http.messages import FileBody, Request, Response
from tests.aio.http1.helpers import Server, assert_closed, get, read_head, read_reply, run
from tests.waiting import loop_turns, wait_until


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
