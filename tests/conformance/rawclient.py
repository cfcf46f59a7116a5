"""A deliberately independent raw WebSocket client for conformance tests.

It writes hand-made frames (any bytes, split any way) and reads the server's frames with its own
small parser, so a bug in framewire's decoder cannot hide a bug in framewire's server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

TIMEOUT = 10.0


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """Return a masked client frame; ``rsv`` is the RSV bits as 0-7 (RSV1 = 4)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    mask = os.urandom(4)
    masked = (
        bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if length < 4096
        else _xor(payload, mask)
    )
    return header + mask + masked


def _xor(payload: bytes, mask: bytes) -> bytes:
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


class RawClient:
    """One raw connection: handshake, write bytes, read frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        path: str = "/",
        extra: str = "",
        host: str = "127.0.0.1",
        limit: int = 1 << 26,
    ) -> RawClient:
        """Connect and handshake; ``limit`` is how much the reader buffers before it stops
        reading from the socket (small values make a peer that does not read)."""
        reader, writer = await asyncio.open_connection(host, port, limit=limit)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"handshake failed: {head!r}")
        client = cls(reader, writer)
        client.response_head = head.decode("latin-1")
        return client

    response_head = ""

    async def send(self, data: bytes, *, chunk_size: int | None = None) -> None:
        """Write raw bytes, optionally in chunks of ``chunk_size`` with a drain between."""
        if chunk_size is None:
            self.writer.write(data)
            await self.writer.drain()
            return
        for start in range(0, len(data), chunk_size):
            self.writer.write(data[start : start + chunk_size])
            await self.writer.drain()

    async def read_frame(self) -> tuple[bool, int, int, bytes]:
        """Return (fin, rsv, opcode, payload) of the next server frame; fail on a masked one."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return bool(first & 0x80), (first >> 4) & 7, first & 0x0F, payload

    async def read_message(self) -> tuple[int, bytes]:
        """Return (opcode, payload) of the next data message, or of a control frame."""
        fin, _, opcode, payload = await self.read_frame()
        if opcode >= 8 or fin:
            return opcode, payload
        parts = [payload]
        while not fin:
            fin, _, _, payload = await self.read_frame()
            parts.append(payload)
        return opcode, b"".join(parts)

    async def expect_close(self, *codes: int, reply: bool = True) -> int:
        """Read until a close frame; check its code; answer it; expect the TCP close."""
        while True:
            _, _, opcode, payload = await self.read_frame()
            if opcode == 8:
                break
        code = struct.unpack("!H", payload[:2])[0] if payload else 1005
        assert code in codes, f"close code {code}, expected one of {codes}: {payload[2:]!r}"
        if reply:
            try:
                self.writer.write(client_frame(8, payload[:2]))
                await self.writer.drain()
            except ConnectionError:
                pass
        await self.expect_tcp_close()
        return code

    async def expect_tcp_close(self) -> None:
        """The server must close the TCP connection (RFC 6455 7.1.1)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        except ConnectionResetError:
            # Our close reply raced the server's TCP close; the kernel answered with RST.
            rest = b""
        assert rest == b"", f"unexpected bytes before TCP close: {rest[:50]!r}"
        self.writer.close()

    async def close(self, code: int = 1000) -> None:
        """Run a clean closing handshake from the client side."""
        self.writer.write(client_frame(8, struct.pack("!H", code)))
        await self.writer.drain()
        await self.expect_close(code, reply=False)
