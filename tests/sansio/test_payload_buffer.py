"""Large binary frames unmasked in place (sansio/payload_buffer.py, _speedups.PayloadBuffer)."""

from __future__ import annotations

import os

import pytest

from framewire.sansio import payload_buffer
from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import MessageChunk
from framewire.sansio.limits import WebSocketLimits
from framewire.sansio.mask import py_apply_mask
from framewire.sansio.payload_buffer import DIRECT_MIN_SIZE, whole_payload
from tests.sansio.ws_helpers import MASK, frame

speedups = pytest.importorskip("framewire._speedups")
PayloadBuffer = speedups.PayloadBuffer


def test_unmasking_in_uneven_pieces_equals_unmasking_at_once() -> None:
    payload = os.urandom(100_003)
    masked = py_apply_mask(payload, MASK)
    buffer = PayloadBuffer(len(payload))
    position = 0
    for size in (1, 2, 3, 5, 4096, 7, 50_000, 45_889):
        buffer.unmask_into(masked[position : position + size], MASK)
        position += size
        assert buffer.filled == position
    assert position == len(payload)
    view = memoryview(buffer)
    assert view.readonly and bytes(view) == payload
    taken = buffer.take()
    assert taken == payload and type(taken) is bytes
    view.release()


def test_errors_are_named() -> None:
    buffer = PayloadBuffer(4)
    with pytest.raises(ValueError, match="not complete: 0 of 4"):
        buffer.take()
    with pytest.raises(ValueError, match="do not fit"):
        buffer.unmask_into(b"12345", MASK)
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        buffer.unmask_into(b"1", b"abc")
    with pytest.raises(ValueError, match=">= 0"):
        PayloadBuffer(-1)
    buffer.unmask_into(b"abcd", MASK)
    assert buffer.take() == py_apply_mask(b"abcd", MASK)
    with pytest.raises(ValueError, match="already taken"):
        buffer.take()
    with pytest.raises(BufferError):
        memoryview(buffer)
    assert len(buffer) == 0


def _chunks(conn: Connection, data: bytes, sizes: list[int]) -> list[MessageChunk]:
    chunks: list[MessageChunk] = []
    position = 0
    for size in [*sizes, len(data)]:
        conn.receive_data(data[position : position + size])
        position += size
        chunks += [e for e in conn.events_received() if isinstance(e, MessageChunk)]
        if position >= len(data):
            break
    return chunks


@pytest.fixture
def accelerated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the C PayloadBuffer even when FRAMEWIRE_NO_SPEEDUPS is set for the test run."""
    monkeypatch.setattr(payload_buffer, "PayloadBuffer", PayloadBuffer)
    monkeypatch.setattr("framewire.sansio.decoder.PayloadBuffer", PayloadBuffer)


@pytest.mark.usefixtures("accelerated")
def test_a_large_binary_frame_arrives_as_views_of_one_buffer_and_is_taken_whole() -> None:
    payload = os.urandom(1 << 20)
    limits = WebSocketLimits(max_message_size=2 << 20)
    conn = Connection(Role.SERVER, stream_messages=True, limits=limits)
    chunks = _chunks(conn, frame(2, payload), [200_000, 300_000, 1, 99_999])
    parts = [chunk.data for chunk in chunks]
    assert all(type(part) is memoryview for part in parts)
    assert len({id(part.obj) for part in parts if isinstance(part, memoryview)}) == 1
    whole = whole_payload(parts)
    assert whole == payload
    assert whole_payload(parts) is whole  # views still alive: the same bytes, shared


@pytest.mark.usefixtures("accelerated")
def test_a_header_alone_does_not_reserve_the_frame_size() -> None:
    """The buffer is made only once 1/64 of the frame came in one read (a peer that announces
    a large frame and sends a trickle gets ordinary pieces)."""
    conn = Connection(Role.SERVER, stream_messages=True)
    length = 8 * DIRECT_MIN_SIZE
    chunks = _chunks(conn, frame(2, b"\x00" * length), [20, 1000, length])
    assert length > 64 * (20 - 14)
    assert type(chunks[0].data) is bytes
    assert whole_payload([chunk.data for chunk in chunks]) is None
    assert b"".join(bytes(chunk.data) for chunk in chunks) == b"\x00" * length


@pytest.mark.usefixtures("accelerated")
def test_text_small_and_compressed_frames_keep_ordinary_pieces() -> None:
    conn = Connection(Role.SERVER, stream_messages=True)
    text = "é" * DIRECT_MIN_SIZE
    chunks = _chunks(conn, frame(1, text.encode()), [DIRECT_MIN_SIZE])
    assert "".join(str(chunk.data) for chunk in chunks) == text
    small = _chunks(conn, frame(2, b"x" * 1000), [])
    assert small[0].data == b"x" * 1000 and type(small[0].data) is bytes


def test_without_the_accelerator_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payload_buffer, "PayloadBuffer", None)
    monkeypatch.setattr("framewire.sansio.decoder.PayloadBuffer", None)
    payload = os.urandom(DIRECT_MIN_SIZE * 2)
    conn = Connection(Role.SERVER, stream_messages=True)
    parts = [chunk.data for chunk in _chunks(conn, frame(2, payload), [DIRECT_MIN_SIZE])]
    assert whole_payload(parts) is None
    assert b"".join(bytes(part) for part in parts) == payload
