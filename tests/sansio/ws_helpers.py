"""Helpers for WebSocket sans-I/O tests: build frames by hand, feed bytes split every way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import Event
from framewire.sansio.frames import encode_frame_header
from framewire.sansio.mask import py_apply_mask

MASK = b"\x37\xfa\x21\x3d"


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


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (sorted, deduplicated, clipped)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


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


def byte_by_byte(data: bytes) -> list[bytes]:
    """Return ``data`` as one-byte chunks."""
    return [data[i : i + 1] for i in range(len(data))]
