"""A WebSocket client cheap enough to hold 10,000 connections in one test process.

framewire.connect() builds a full connection (state machine, inbox, timers, a task per
reader) per client; here a client is one asyncio.Protocol with a byte buffer. It sends a fixed
upgrade request, checks the 101 by its Sec-WebSocket-Accept, then parses the server's frames
just enough to hand each whole message to a callback: no fragmentation (a non-final frame is an
error), pings answered, a close frame recorded as an error. Whatever goes wrong is appended to
the shared ``errors`` list instead of raising, so one test can check all clients at the end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import zlib
from collections.abc import Callable

__all__ = ["LoadClient", "MessageHandler", "Tally", "connect_all"]

# The key only has to be 16 base64-encoded bytes (RFC 6455 4.1); a fixed one lets every client
# check the same expected Sec-WebSocket-Accept value.
KEY = base64.b64encode(b"framewire-load!!").decode("ascii")
ACCEPT = base64.b64encode(
    hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode("ascii")).digest()
)
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"  # what browsers send
# RFC 7692 7.2.2: a compressed message is missing this empty stored block's tail.
DEFLATE_TAIL = b"\x00\x00\xff\xff"
MASK = b"\x00\x00\x00\x00"  # RFC 6455 5.3 only asks for a mask; an all-zero one costs no XOR
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA

MessageHandler = Callable[["LoadClient", str], None]


class Tally:
    """Counts events across clients and wakes a waiter when a count is reached."""

    def __init__(self) -> None:
        """Start at zero with no waiter."""
        self.count = 0
        self._target = 0
        self._reached: asyncio.Future[None] | None = None

    def add(self, amount: int = 1) -> None:
        """Count ``amount`` more events."""
        self.count += amount
        if self._reached is not None and self.count >= self._target:
            if not self._reached.done():
                self._reached.set_result(None)
            self._reached = None

    async def wait_for(self, target: int, timeout: float) -> None:
        """Wait until at least ``target`` events were counted; TimeoutError after ``timeout``
        seconds."""
        if self.count >= target:
            return
        self._target = target
        self._reached = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(timeout):
            await self._reached


def frame(opcode: int, payload: bytes) -> bytes:
    """Return a final, masked client frame (RFC 6455 5.2) with the all-zero mask."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + MASK + payload


def upgrade_request(port: int, target: str, offer_deflate: bool) -> bytes:
    """Return the HTTP upgrade request of every client to ``target``."""
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    if offer_deflate:
        lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class LoadClient(asyncio.Protocol):
    """One client connection: upgrade, then whole text messages to ``on_message``.

    Attributes:
        deflate: the server agreed to permessage-deflate.
        upgraded: resolved once the 101 arrived and was checked.
    """

    __slots__ = (
        "_buffer",
        "_errors",
        "_on_message",
        "_request",
        "_stopping",
        "deflate",
        "number",
        "transport",
        "upgraded",
    )

    def __init__(
        self,
        number: int,
        request: bytes,
        on_message: MessageHandler,
        errors: list[str],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Make client ``number``, which sends ``request`` once connected."""
        self.number = number
        self._request = request
        self._on_message = on_message
        self._errors = errors
        self._buffer = bytearray()
        self._stopping = False
        self.deflate = False
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def send_text(self, text: str) -> None:
        """Send one text message."""
        assert self.transport is not None
        self.transport.write(frame(TEXT, text.encode("utf-8")))

    def abort(self) -> None:
        """Drop the connection without a closing handshake (the test is over)."""
        self._stopping = True
        if self.transport is not None:
            self.transport.abort()

    def fail(self, reason: str) -> None:
        """Record ``reason`` as this client's error and drop the connection."""
        self._errors.append(f"client {self.number}: {reason}")
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(reason))
        self.abort()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.upgraded.done() and not self._read_response():
            return
        offset = self._read_frames()
        del self._buffer[:offset]

    def _read_response(self) -> bool:
        """Check the 101 response once it is whole; return whether frames may follow."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[: end + 4]).lower()
        del self._buffer[: end + 4]
        if not head.startswith(b"http/1.1 101 "):
            self.fail(f"handshake refused: {head[:200]!r}")
            return False
        if b"sec-websocket-accept: " + ACCEPT.lower() + b"\r\n" not in head:
            self.fail(f"wrong Sec-WebSocket-Accept in {head[:300]!r}")
            return False
        self.deflate = b"permessage-deflate" in head
        self.upgraded.set_result(None)
        return True

    def _read_frames(self) -> int:
        """Handle every whole frame in the buffer; return how many bytes they took."""
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                start += 2
            elif length == 127:
                start += 8
            if len(buffer) < start:
                break
            if length >= 126:
                length = int.from_bytes(buffer[offset + 2 : start], "big")
            if len(buffer) < start + length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            if not self._handle_frame(first, second, payload):
                break
        return offset

    def _handle_frame(self, first: int, second: int, payload: bytes) -> bool:
        """Act on one frame; return False once the connection was failed."""
        opcode = first & 0x0F
        if not first & 0x80 or second & 0x80:
            self.fail(f"unexpected frame: non-final or masked (0x{first:02x} 0x{second:02x})")
            return False
        if opcode == PING:
            assert self.transport is not None
            self.transport.write(frame(PONG, payload))
        elif opcode == TEXT:
            if first & 0x40:  # RSV1: compressed, each message from a fresh context here
                payload = zlib.decompressobj(-15).decompress(payload + DEFLATE_TAIL)
            self._on_message(self, payload.decode("utf-8"))
        elif opcode != PONG:
            self.fail(f"unexpected frame with opcode {opcode}: {payload[:200]!r}")
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._stopping:
            self._stopping = True
            self._errors.append(f"client {self.number}: connection lost ({exc!r})")
            if not self.upgraded.done():
                self.upgraded.set_exception(ConnectionError(f"connection lost ({exc!r})"))


async def connect_all(
    port: int,
    targets: list[str],
    on_message: MessageHandler,
    errors: list[str],
    *,
    first_number: int = 0,
    offer_deflate: bool = False,
    in_flight: int = 200,
) -> list[LoadClient]:
    """Open one client per entry of ``targets`` (a request target such as /websocket?x=1),
    at most ``in_flight`` handshakes at a time; return them once all are upgraded.

    Clients are numbered from ``first_number``, in the order of ``targets``.

    Raises:
        OSError: a connection was refused or reset.
        ConnectionError: a handshake was refused.
    """
    loop = asyncio.get_running_loop()
    clients = [
        LoadClient(number, upgrade_request(port, target, offer_deflate), on_message, errors, loop)
        for number, target in enumerate(targets, first_number)
    ]
    pending = iter(clients)

    async def open_some() -> None:
        for client in pending:
            await loop.create_connection(factory_of(client), "127.0.0.1", port)
            await client.upgraded

    await asyncio.gather(*(open_some() for _ in range(in_flight)))
    return clients


def factory_of(client: LoadClient) -> Callable[[], LoadClient]:
    """Return a protocol factory for loop.create_connection() that returns ``client``."""
    return lambda: client
