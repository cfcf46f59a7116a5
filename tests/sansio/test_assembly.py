"""MessageAssembler (sansio/assembly.py), through a server Connection: fragments put together,
UTF-8 checked incrementally (1007 as soon as it is certain), max_message_size and the fragment
cap checked at each frame header (1009) with bounded memory, and streaming mode."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import BinaryMessage, MessageChunk, TextMessage
from framewire.sansio.limits import WebSocketLimits
from tests.sansio.ws_helpers import (
    BINARY,
    CONT,
    TEXT,
    byte_by_byte,
    failure,
    feed,
    frame,
    server_events,
)


def test_message_in_three_frames_is_one_message() -> None:
    data = (
        frame(TEXT, b"Never look ", fin=False)
        + frame(CONT, b"directly into ", fin=False)
        + frame(CONT, b"the sun")
    )
    expected = [TextMessage("Never look directly into the sun")]
    assert server_events(data) == expected
    assert server_events(data, byte_by_byte(data)) == expected


def test_invalid_utf8_fails_with_1007_as_soon_as_it_is_certain() -> None:
    conn = Connection(Role.SERVER)
    # The invalid sequence (a UTF-16 surrogate) is in the first fragment; the message never ends.
    events = feed(conn, [frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80", fin=False)])
    assert failure(events).code == 1007


def test_utf8_split_at_every_byte_across_fragments_is_valid() -> None:
    text = "κόσμε 😀 ok"
    encoded = text.encode()
    for cut in range(len(encoded) + 1):
        data = frame(TEXT, encoded[:cut], fin=False) + frame(CONT, encoded[cut:])
        assert server_events(data) == [TextMessage(text)]


def test_truncated_utf8_at_message_end_fails_with_1007() -> None:
    events = server_events(frame(TEXT, b"ok\xce", fin=False) + frame(CONT, b""))
    assert failure(events).code == 1007


def test_message_over_max_message_size_fails_with_1009_at_the_header() -> None:
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=1000))
    header_only = frame(BINARY, b"x" * 1001)[:8]
    failed = failure(feed(conn, [header_only]))
    assert failed.code == 1009
    assert "max_message_size=1000" in failed.reason


def test_fragmented_message_over_the_limit_fails_with_1009() -> None:
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=1000))
    data = frame(BINARY, b"x" * 600, fin=False) + frame(CONT, b"x" * 600)
    assert failure(feed(conn, [data])).code == 1009


def test_fragment_count_limit_fails_with_1009() -> None:
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_fragments=10))
    data = frame(BINARY, b"x", fin=False) + frame(CONT, b"x", fin=False) * 10
    failed = failure(feed(conn, [data]))
    assert failed.code == 1009
    assert "max_fragments=10" in failed.reason


def test_4_mib_message_in_65536_fragments_of_64_bytes_is_received() -> None:
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=4 << 20))
    piece = bytes(range(64))
    data = b"".join(frame(BINARY if i == 0 else CONT, piece, fin=i == 65535) for i in range(65536))
    events = feed(conn, [data[i : i + 65536] for i in range(0, len(data), 65536)])
    assert events == [BinaryMessage(piece * 65536)]


def one_byte_fragments(count: int) -> bytes:
    """A binary message of ``count`` + 1 masked one-byte frames (7 bytes each)."""
    data = b"".join(frame(BINARY if i == 0 else CONT, b"x", fin=False) for i in range(count))
    return data + frame(CONT, b"x")


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_100000_one_byte_fragments_cost_linear_time() -> None:
    """CVE-2026-48779 (ws): 10x the fragments must cost about 10x the time, not 100x."""
    data = one_byte_fragments(100_000)

    def run(count: int) -> float:
        conn = Connection(Role.SERVER, limits=WebSocketLimits(max_fragments=200_000))
        part = data[: count * 7]  # each one-byte masked frame is 7 bytes
        start = time.perf_counter()
        feed(conn, [part[i : i + 4096] for i in range(0, len(part), 4096)])
        return time.perf_counter() - start

    small, large = run(10_000), run(100_000)
    assert large < small * 30  # linear: 10x the input costs ~10x, not ~100x


def test_100000_one_byte_fragments_hold_bounded_memory() -> None:
    """CVE-2026-48779 (ws): the retained part count, not bytes, exhausted memory."""
    data = one_byte_fragments(100_000)
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_fragments=200_000))
    tracemalloc.start()
    events = feed(conn, [data[i : i + 4096] for i in range(0, len(data), 4096)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert events == [BinaryMessage(b"x" * 100_001)]
    assert peak < 2_000_000  # a list of 100,000 parts alone would take several MB


def test_one_byte_fragments_past_the_default_cap_fail_with_1009() -> None:
    conn = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=1 << 16))
    data = b"".join(frame(BINARY if i == 0 else CONT, b"x", fin=False) for i in range(5000))
    assert failure(feed(conn, [data])).code == 1009


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_message_fed_one_byte_per_chunk_costs_linear_time() -> None:
    def run(length: int) -> float:
        data = frame(BINARY, b"y" * length)
        conn = Connection(Role.SERVER)
        start = time.perf_counter()
        for index in range(len(data)):
            conn.receive_data(data[index : index + 1])
        assert conn.events_received() == [BinaryMessage(b"y" * length)]
        return time.perf_counter() - start

    assert run(200_000) < run(20_000) * 30


def test_streaming_mode_hands_out_pieces_as_they_arrive() -> None:
    conn = Connection(Role.SERVER, stream_messages=True)
    data = frame(BINARY, b"0123456789", fin=False) + frame(CONT, b"abc")
    events = feed(conn, [data[:10], data[10:]])
    assert [bytes(e.data) for e in events if isinstance(e, MessageChunk)] == [
        b"0123",
        b"456789",
        b"abc",
    ]
    assert [(e.first, e.last) for e in events if isinstance(e, MessageChunk)] == [
        (True, False),
        (False, False),
        (False, True),
    ]


def test_streaming_text_pieces_are_whole_code_points() -> None:
    conn = Connection(Role.SERVER, stream_messages=True)
    data = frame(TEXT, "€uro".encode())
    events = feed(conn, byte_by_byte(data))
    text = [e.data for e in events if isinstance(e, MessageChunk)]
    assert "".join(text) == "€uro"  # type: ignore[arg-type]
    assert all(isinstance(t, str) for t in text)
    assert "€" in text
