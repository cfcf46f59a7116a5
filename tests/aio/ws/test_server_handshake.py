"""ServerHandshake (aio/ws/server_handshake.py): the server's side of the opening handshake,
over real sockets: origins refused with 403, and a plain upgrade request taking the fast path
with exactly the general path's 101, or going the general way when it needs negotiation or
arrives in pieces."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import framewire
from framewire import InvalidStatus
from framewire.aio.ws.websocket import WebSocket
from tests.aio.helpers import echo, run_with_server
from tests.conformance.rawclient import RawClient, client_frame
from tests.waiting import wait_until


def test_origin_rejected_with_403() -> None:
    async def scenario(port: int) -> None:
        with pytest.raises(InvalidStatus) as info:
            await framewire.connect(f"ws://127.0.0.1:{port}/", origin="https://evil.example")
        assert info.value.status == 403
        async with framewire.connect(f"ws://127.0.0.1:{port}/", origin="https://ok.example"):
            pass

    run_with_server(scenario, origins=["https://ok.example"])


async def raw_handshake(port: int, request: bytes) -> tuple[RawClient, bytes]:
    """Write ``request`` in one write; return the client and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return RawClient(reader, writer), head


PLAIN_REQUEST = (
    b"GET /fast?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"X-Trace: 7\r\n\r\n"
)


def test_a_plain_upgrade_takes_the_fast_path_with_the_general_paths_101() -> None:
    from framewire.sansio.handshake import accept_request
    from framewire.sansio.headers import Headers

    seen: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        seen["path"], seen["trace"] = ws.request.path, ws.request.headers["x-trace"]
        await echo(ws)

    async def main() -> None:
        extra = [("X-Served-By", "test")]
        async with framewire.serve(handler, "127.0.0.1", 0, extra_headers=extra) as server:

            def general_upgrade(*args: Any) -> None:
                raise AssertionError("the plain request went the general way")

            server._upgrade = general_upgrade  # type: ignore[method-assign]
            port = server.sockets[0].getsockname()[1]
            # A frame in the same write as the request: the fast path hands it on.
            client, head = await raw_handshake(port, PLAIN_REQUEST + client_frame(1, b"hi"))
            expected = accept_request(
                "GET",
                "1.1",
                Headers(
                    [
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                        ("Host", "x"),
                        ("Upgrade", "websocket"),
                        ("Connection", "Upgrade"),
                        ("Sec-WebSocket-Version", "13"),
                    ]
                ),
                extra_headers=server.extra_headers,
            ).response_bytes()
            assert head == expected
            assert b"X-Served-By: test\r\nServer: framewire\r\n" in head
            assert await client.read_message() == (1, b"hi")
            await client.close()

    asyncio.run(main())
    assert seen == {"path": "/fast", "trace": "7"}


@pytest.mark.parametrize(
    ("options", "extra", "expected"),
    [
        ({"subprotocols": ["chat"]}, b"Sec-WebSocket-Protocol: other, chat\r\n", b"Protocol: chat"),
        ({"origins": ["http://ok"]}, b"Origin: http://ok\r\n", b"HTTP/1.1 101"),
        ({"origins": ["http://ok"]}, b"Origin: http://evil\r\n", b"HTTP/1.1 403"),
        ({}, b"Sec-WebSocket-Extensions: permessage-deflate\r\n", b"permessage-deflate"),
        ({"compression": None}, b"Sec-WebSocket-Extensions: permessage-deflate\r\n", b"101"),
    ],
)
def test_a_plain_upgrade_that_needs_negotiation_goes_the_general_way(
    options: dict[str, Any], extra: bytes, expected: bytes
) -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            request = PLAIN_REQUEST.replace(b"X-Trace: 7\r\n", extra)
            client, head = await raw_handshake(port, request)
            assert expected in head
            if b" 101 " in head and b"deflate" not in head:
                assert b"Sec-WebSocket-Extensions" not in head
                await client.send(client_frame(2, b"\x00"))
                assert await client.read_message() == (2, b"\x00")
            client.writer.close()

    asyncio.run(main())


def test_a_request_split_over_two_reads_goes_the_general_way() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(PLAIN_REQUEST[:40])
            await writer.drain()
            # The first read made the general path's parser: the request is split for sure.
            await wait_until(
                lambda: any(p._request_parser is not None for p in server._http_protocols),
                what="the server to read the first 40 bytes",
            )
            writer.write(PLAIN_REQUEST[40:])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
            writer.close()

    asyncio.run(main())
