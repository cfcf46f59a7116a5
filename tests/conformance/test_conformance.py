"""Conformance of `framewire echo`, over real sockets, in the categories of the Autobahn suite.

Each test opens a raw connection (tests/conformance/rawclient.py), sends hand-made frames, and
checks the echo or the close code. Strict: where the RFC says "fail", the server must close with
the right code and then close TCP.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest

from tests.conformance.rawclient import RawClient, client_frame

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def run(port: int, scenario: Callable[[RawClient], Awaitable[None]]) -> None:
    async def main() -> None:
        client = await RawClient.connect(port)
        try:
            await asyncio.wait_for(scenario(client), 60)
        finally:
            client.writer.close()

    asyncio.run(main())


# ---------------------------------------------------------------- 1. framing


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("length", [0, 125, 126, 127, 128, 65535, 65536, 1 << 20])
def test_framing_all_length_classes_are_echoed(echo_port: int, opcode: int, length: int) -> None:
    payload = b"*" * length

    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(opcode, payload))
        assert await client.read_message() == (opcode, payload)
        await client.close()

    run(echo_port, scenario)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_framing_written_one_byte_at_a_time(echo_port: int, length: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    chunk = 1 if length < 200 else 997

    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(BINARY, payload), chunk_size=chunk)
        assert await client.read_message() == (BINARY, payload)
        await client.close()

    run(echo_port, scenario)


# ---------------------------------------------------------------- 2. ping / pong


def test_ping_payloads_0_to_125_get_matching_pongs(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        for size in range(126):
            payload = bytes([size % 256]) * size
            await client.send(client_frame(PING, payload))
            assert await client.read_frame() == (True, 0, PONG, payload)
        await client.close()

    run(echo_port, scenario)


def test_ping_of_126_bytes_is_rejected(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(PING, b"x" * 126))
        await client.expect_close(1002)

    run(echo_port, scenario)


def test_unsolicited_pong_is_ignored_and_pings_split_byte_by_byte(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(PONG, b"unsolicited"))
        await client.send(client_frame(PING, b"Hello, world!"), chunk_size=1)
        assert await client.read_frame() == (True, 0, PONG, b"Hello, world!")
        for index in range(10):
            await client.send(client_frame(PING, b"%d" % index))
        for index in range(10):
            assert await client.read_frame() == (True, 0, PONG, b"%d" % index)
        await client.close()

    run(echo_port, scenario)


def test_fragmented_ping_is_rejected(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(PING, b"ab", fin=False) + client_frame(CONT, b"cd"))
        await client.expect_close(1002)

    run(echo_port, scenario)


# ---------------------------------------------------------------- 3. reserved bits


@pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_reserved_bits_fail_the_connection_after_earlier_echoes(
    echo_port: int, rsv: int, opcode: int
) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, b"before"))
        await client.send(client_frame(opcode, b"bad", rsv=rsv) + client_frame(TEXT, b"after"))
        assert await client.read_message() == (TEXT, b"before")
        await client.expect_close(1002)

    run(echo_port, scenario)


# ---------------------------------------------------------------- 4. opcodes


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes_fail_the_connection(echo_port: int, opcode: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, b"before") + client_frame(opcode, b"payload"))
        assert await client.read_message() == (TEXT, b"before")
        await client.expect_close(1002)

    run(echo_port, scenario)


# ---------------------------------------------------------------- 5. fragmentation


@pytest.mark.parametrize("fragment_size", [1, 2, 7, 64, 1000, 65536])
def test_fragmented_messages_with_interleaved_pings(echo_port: int, fragment_size: int) -> None:
    payload = ("fragmented ✓ " * 2000).encode()

    async def scenario(client: RawClient) -> None:
        pieces = [payload[i : i + fragment_size] for i in range(0, len(payload), fragment_size)]
        data = b""
        for index, piece in enumerate(pieces[:3000]):
            last = index == min(len(pieces), 3000) - 1
            data += client_frame(TEXT if index == 0 else CONT, piece, fin=last)
            if index in (0, 1):
                data += client_frame(PING, b"between")
        expected = b"".join(pieces[:3000])
        await client.send(data)
        assert await client.read_frame() == (True, 0, PONG, b"between")
        if len(pieces) > 1:
            assert await client.read_frame() == (True, 0, PONG, b"between")
        opcode, echoed = await client.read_message()
        assert (opcode, echoed) == (TEXT, expected)
        await client.close()

    run(echo_port, scenario)


@pytest.mark.parametrize(
    "frames",
    [
        [client_frame(CONT, b"orphan")],
        [client_frame(CONT, b"orphan", fin=False), client_frame(CONT, b"x")],
        [client_frame(TEXT, b"a", fin=False), client_frame(TEXT, b"b")],
        [client_frame(BINARY, b"a", fin=False), client_frame(BINARY, b"b")],
        [client_frame(TEXT, b"a", fin=False), client_frame(CONT, b"b", rsv=4)],
        [client_frame(TEXT, b"a", fin=False), client_frame(PING, b"p", fin=False)],
    ],
    ids=[
        "cont-first",
        "cont-unfinished",
        "text-in-text",
        "binary-in-binary",
        "rsv1-cont",
        "frag-ping",
    ],
)
def test_invalid_fragment_sequences_fail_with_1002(echo_port: int, frames: list[bytes]) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(b"".join(frames))
        await client.expect_close(1002)

    run(echo_port, scenario)


def test_close_in_the_middle_of_a_fragmented_message(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, b"start", fin=False))
        await client.close(1000)

    run(echo_port, scenario)


# ---------------------------------------------------------------- 6. UTF-8

VALID_TEXTS = [
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
    "😀🎉 chat",
    "",
]

INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",  # surrogate
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xc0\xaf",  # overlong
    b"\xe0\x80\xaf",  # overlong
    b"\x80",  # lone continuation
    b"\xfe",
    b"\xff",
    b"\xce\xba\xe1",  # truncated at the end
    b"\xed\xbf\xbf",
]


@pytest.mark.parametrize("text", VALID_TEXTS)
def test_valid_utf8_split_at_every_byte_is_echoed(echo_port: int, text: str) -> None:
    payload = text.encode()

    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, payload))
        assert await client.read_message() == (TEXT, payload)
        if payload:
            data = b"".join(
                client_frame(
                    TEXT if i == 0 else CONT, payload[i : i + 1], fin=i == len(payload) - 1
                )
                for i in range(len(payload))
            )
            await client.send(data, chunk_size=1)
            assert await client.read_message() == (TEXT, payload)
        await client.close()

    run(echo_port, scenario)


@pytest.mark.parametrize("payload", INVALID_UTF8)
def test_invalid_utf8_fails_with_1007(echo_port: int, payload: bytes) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, payload))
        await client.expect_close(1007)

    run(echo_port, scenario)


@pytest.mark.parametrize("payload", [*INVALID_UTF8[:-3], INVALID_UTF8[-1]])
def test_invalid_utf8_fails_fast_before_the_message_ends(echo_port: int, payload: bytes) -> None:
    async def scenario(client: RawClient) -> None:
        # The message is never finished: the server must fail on the first fragment.
        await client.send(client_frame(TEXT, payload, fin=False))
        await client.expect_close(1007)

    run(echo_port, scenario)


def test_invalid_utf8_in_a_later_fragment_fails_fast(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(TEXT, "κόσμε".encode(), fin=False))
        await client.send(client_frame(CONT, b"\xed\xa0\x80", fin=False))
        await client.expect_close(1007)

    run(echo_port, scenario)


# ---------------------------------------------------------------- 9. limits


@pytest.mark.parametrize("size", [64 * 1024, 1 << 20, 4 << 20])
@pytest.mark.parametrize("fragment_size", [64, 4096, 65536, None])
def test_large_messages_in_many_fragment_sizes(
    echo_port: int, size: int, fragment_size: int | None
) -> None:
    if fragment_size == 64 and size > 1 << 20:
        pytest.skip("covered by the sans-I/O 65,536-fragment test; slow over a socket")
    payload = bytes(range(256)) * (size // 256)

    async def scenario(client: RawClient) -> None:
        if fragment_size is None:
            data = client_frame(BINARY, payload)
        else:
            chunks = [payload[i : i + fragment_size] for i in range(0, size, fragment_size)]
            data = b"".join(
                client_frame(BINARY if i == 0 else CONT, c, fin=i == len(chunks) - 1)
                for i, c in enumerate(chunks)
            )
        await client.send(data, chunk_size=65536)
        assert await client.read_message() == (BINARY, payload)
        await client.close()

    run(echo_port, scenario)


# ---------------------------------------------------------------- 7. closing


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
def test_valid_close_codes_are_echoed(echo_port: int, code: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(CLOSE, struct.pack("!H", code) + b"reason"))
        await client.expect_close(code)

    run(echo_port, scenario)


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes_fail_with_1002(echo_port: int, code: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(CLOSE, struct.pack("!H", code)))
        await client.expect_close(1002)

    run(echo_port, scenario)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", 1005),
        (b"\x03", 1002),
        (struct.pack("!H", 1000) + b"r" * 123, 1000),
        (struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80", 1007),
    ],
    ids=["empty", "one-byte", "max-reason", "invalid-utf8-reason"],
)
def test_close_payloads(echo_port: int, payload: bytes, code: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(CLOSE, payload))
        await client.expect_close(code)

    run(echo_port, scenario)


def test_close_payload_over_125_bytes_fails(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(CLOSE, struct.pack("!H", 1000) + b"r" * 124))
        await client.expect_close(1002)

    run(echo_port, scenario)


def test_nothing_is_processed_after_a_close_frame(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(
            client_frame(CLOSE, struct.pack("!H", 1000)) + client_frame(TEXT, b"ignored")
        )
        # The close reply comes and no echo of "ignored" before the TCP close.
        await client.expect_close(1000)

    run(echo_port, scenario)


def test_ping_after_close_gets_no_pong(echo_port: int) -> None:
    async def scenario(client: RawClient) -> None:
        await client.send(client_frame(CLOSE, struct.pack("!H", 1000)) + client_frame(PING, b"p"))
        _, _, opcode, _ = await client.read_frame()
        assert opcode == CLOSE
        await client.expect_tcp_close()

    run(echo_port, scenario)


# ---------------------------------------------------------------- handshake over the wire


def test_plain_http_request_gets_426(echo_port: int) -> None:
    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 426")
        assert b"Sec-WebSocket-Version: 13" in head
        writer.close()

    asyncio.run(main())


def test_bad_version_gets_426_with_version_13(echo_port: int) -> None:
    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 426")
        assert b"Sec-WebSocket-Version: 13" in head
        writer.close()

    asyncio.run(main())
