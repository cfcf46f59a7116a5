"""Fakes and socket pairs for the tests of the C Poller and DirectWriter (test_socket_poller.py,
test_tls_poller.py)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

__all__ = ["RecordingProtocol", "RecordingTransport", "read_all", "socket_pairs"]


class RecordingProtocol:
    """Keeps what a Poller tells it; buffer_updated copies the bytes read."""

    def __init__(self, buffer: memoryview, fail_with: BaseException | None = None) -> None:
        self.buffer = buffer
        self.fail_with = fail_with
        self.received = b""
        self.eof = False
        self.errors: list[BaseException] = []
        self.on_data: Any = None

    def buffer_updated(self, nbytes: int) -> None:
        self.received += bytes(self.buffer[:nbytes])
        if self.on_data is not None:
            self.on_data()
        if self.fail_with is not None:
            raise self.fail_with

    def poller_eof(self) -> None:
        self.eof = True

    def poller_error(self, exc: BaseException) -> None:
        self.errors.append(exc)


class RecordingTransport:
    """What a DirectWriter needs of a transport: write() and get_write_buffer_size()."""

    def __init__(self) -> None:
        self.queued = 0
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.queued


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


@contextlib.contextmanager
def socket_pairs(count: int) -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """``count`` non-blocking connected pairs (ours, theirs), all closed at the end."""
    pairs = [socket.socketpair() for _ in range(count)]
    try:
        for pair in pairs:
            for sock in pair:
                sock.setblocking(False)
        yield pairs
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()
