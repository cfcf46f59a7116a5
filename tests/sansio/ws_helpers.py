"""Helpers for WebSocket sans-I/O tests: build frames by hand, feed bytes split every way."""

from __future__ import annotations

from collections.abc import Sequence

from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import ConnectionFailed, Event
from framewire.sansio.frames import encode_frame_header
from framewire.sansio.mask import py_apply_mask
from tests.sansio.splits import byte_by_byte, split_at

__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "MASK",
    "PING",
    "PONG",
    "TEXT",
    "byte_by_byte",
    "failure",
    "feed",
    "frame",
    "server_events",
    "split_at",
]

MASK = b"\x37\xfa\x21\x3d"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10  # opcodes, as plain ints


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = MASK,
) -> bytes:
    """Return one frame's bytes; masked (as a client sends) unless mask is None."""
    header = bytearray(encode_frame_header(opcode, len(payload), fin=fin, rsv1=rsv1))
    header[0] |= (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0)
    if mask is None:
        return bytes(header) + payload
    header[1] |= 0x80
    return bytes(header) + mask + py_apply_mask(payload, mask)


def feed(conn: Connection, chunks: Sequence[bytes]) -> list[Event]:
    """Feed every chunk, collecting events (MessageChunk events are kept as they come)."""
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events.extend(conn.events_received())
    return events


def server_events(
    data: bytes, chunks: Sequence[bytes] | None = None, **kwargs: object
) -> list[Event]:
    """Decode client bytes with a fresh server connection."""
    conn = Connection(Role.SERVER, **kwargs)  # type: ignore[arg-type]
    return feed(conn, chunks if chunks is not None else [data])


def failure(events: Sequence[object]) -> ConnectionFailed:
    """Return the one ConnectionFailed among ``events`` (asserting there is exactly one)."""
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    assert len(failures) == 1, events
    return failures[0]
