"""The WebSocket state machine (sansio/connection.py): messages in, control frames, protocol
violations, closing, every split, and the fast-path flags it keeps. Message assembly is
test_assembly.py, what it sends test_sending.py."""

from __future__ import annotations

import contextlib
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.exceptions import InvalidState
from framewire.sansio.connection import Connection, Role, State
from framewire.sansio.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    MessageChunk,
    Ping,
    Pong,
    TextMessage,
)
from framewire.sansio.limits import WebSocketLimits
from tests.sansio.ws_helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    failure,
    feed,
    frame,
    server_events,
    split_at,
)

# ------------------------------------------------------------------- classic cases


def test_five_back_to_back_json_messages_decode_five_messages() -> None:
    message = json.dumps({"type": "message", "user": "ada", "text": "héllo wörld"})
    data = frame(TEXT, message.encode()) * 5
    assert server_events(data) == [TextMessage(message)] * 5


def test_binary_message_round_trip_client_to_server_and_back() -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.send_binary(b"\x00\xff" * 40000)
    server.receive_data(b"".join(client.data_to_send()))
    assert server.events_received() == [BinaryMessage(b"\x00\xff" * 40000)]
    server.send_text("réponse")
    client.receive_data(b"".join(server.data_to_send()))
    assert client.events_received() == [TextMessage("réponse")]


# ------------------------------------------------------------------- message rules


def test_control_frames_between_fragments_are_processed_at_once() -> None:
    conn = Connection(Role.SERVER)
    events = feed(conn, [frame(TEXT, b"frag1 ", fin=False), frame(PING, b"p")])
    assert events == [Ping(b"p")]
    assert conn.data_to_send() == [b"\x8a\x01p"]  # the pong is already queued
    events = feed(conn, [frame(PONG, b"q"), frame(CONT, b"frag2")])
    assert events == [Pong(b"q"), TextMessage("frag1 frag2")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (frame(CONT, b"x"), "continuation frame without a message"),
        (frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), "new data frame while a fragmented"),
        (frame(TEXT, b"a", fin=False) + frame(BINARY, b"b"), "new data frame while a fragmented"),
        (frame(BINARY, b"a", fin=False) + frame(CONT, b"b", rsv1=True), "RSV1"),
        (frame(PING, b"x" * 126), "over 125 bytes"),
        (frame(PING, b"x", fin=False), "fragmented control frame"),
        (frame(5, b""), "reserved opcode"),
        (frame(TEXT, b"x", rsv1=True), "RSV1"),
        (frame(CLOSE, b"\x03"), "1 byte"),
        (frame(CLOSE, (1005).to_bytes(2, "big")), "invalid close code 1005"),
        (frame(CLOSE, (2999).to_bytes(2, "big")), "invalid close code 2999"),
    ],
)
def test_protocol_violations_fail_with_1002(data: bytes, reason: str) -> None:
    conn = Connection(Role.SERVER)
    events = feed(conn, [data])
    failed = failure(events)
    assert failed.code == 1002
    assert reason in failed.reason
    assert conn.close_sent == (1002, failed.reason)
    assert conn.state is State.CLOSING


def test_close_reason_with_invalid_utf8_fails_with_1007() -> None:
    events = server_events(frame(CLOSE, b"\x03\xe8\xff"))
    assert failure(events).code == 1007


def test_nothing_is_read_after_failing() -> None:
    conn = Connection(Role.SERVER)
    feed(conn, [frame(5, b"")])
    conn.data_to_send()
    assert feed(conn, [frame(TEXT, b"ignored")]) == []
    assert conn.data_to_send() == []


# ------------------------------------------------------------------- closing


def test_close_is_answered_with_the_same_code_then_input_stops() -> None:
    conn = Connection(Role.SERVER)
    events = feed(conn, [frame(CLOSE, b"\x03\xe8bye") + frame(TEXT, b"after")])
    assert events == [CloseReceived(1000, "bye")]
    assert conn.data_to_send() == [b"\x88\x02\x03\xe8"]
    assert conn.state is State.CLOSING
    assert conn.close_expected()
    with pytest.raises(InvalidState):
        conn.send_text("too late")


def test_empty_close_is_answered_with_an_empty_close() -> None:
    conn = Connection(Role.SERVER)
    assert feed(conn, [frame(CLOSE)]) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == [b"\x88\x00"]


def test_closing_handshake_started_locally() -> None:
    server = Connection(Role.SERVER)
    server.send_close(1001, "going")
    assert server.data_to_send() == [b"\x88\x07\x03\xe9going"]
    assert not server.close_expected()
    feed(server, [frame(PING, b"late ping"), frame(CLOSE, b"\x03\xe9")])
    assert server.data_to_send() == []  # no pong and no second close after our close
    assert server.close_expected()
    server.receive_eof()
    assert server.state is State.CLOSED


def test_data_frames_are_still_received_while_closing() -> None:
    server = Connection(Role.SERVER)
    server.send_close()
    assert feed(server, [frame(TEXT, b"in flight")]) == [TextMessage("in flight")]


# ------------------------------------------------------------------- every split


message_strategy = st.one_of(
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.binary(max_size=300).map(lambda b: ("binary", b)),
    st.integers(min_value=126, max_value=70_000).map(lambda n: ("binary", b"\x00" * n)),
    st.binary(max_size=125).map(lambda b: ("ping", b)),
)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(message_strategy, min_size=1, max_size=5),
    fragment_sizes=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=150_000), max_size=25),
    stream=st.booleans(),
)
def test_every_way_of_splitting_gives_the_same_events(
    messages: list[tuple[str, object]],
    fragment_sizes: list[int],
    cuts: list[int],
    stream: bool,
) -> None:
    client = Connection(Role.CLIENT)
    for kind, value in messages:
        if kind == "ping":
            client.send_ping(value)  # type: ignore[arg-type]
            continue
        payload = value.encode() if isinstance(value, str) else value
        assert isinstance(payload, bytes)
        size = fragment_sizes[len(payload) % len(fragment_sizes)]
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        send = client.send_text if kind == "text" else client.send_binary
        send(pieces[0], fin=len(pieces) == 1)
        for index, piece in enumerate(pieces[1:], start=2):
            if index == 2:
                client.send_ping(b"between")
            client.send_continuation(piece, fin=index == len(pieces))
    data = b"".join(client.data_to_send())

    def decoded(chunks: list[bytes]) -> list[object]:
        conn = Connection(
            Role.SERVER, stream_messages=stream, limits=WebSocketLimits(max_fragments=100_000)
        )
        events = feed(conn, chunks)
        return _merge_chunks(events)

    whole = decoded([data])
    assert decoded(split_at(data, cuts)) == whole
    expected_messages = [v for k, v in messages if k != "ping"]
    got = [e.data for e in whole if isinstance(e, TextMessage | BinaryMessage)]
    assert got == expected_messages


def _merge_chunks(events: list[object]) -> list[object]:
    """Turn streamed chunks into whole messages, so streamed and whole runs compare equal."""
    merged: list[object] = []
    parts: list[object] = []
    for event in events:
        if isinstance(event, MessageChunk):
            parts.append(event.data if isinstance(event.data, str) else bytes(event.data))
            if event.last:
                if event.is_text:
                    merged.append(TextMessage("".join(parts)))  # type: ignore[arg-type]
                else:
                    merged.append(BinaryMessage(b"".join(parts)))  # type: ignore[arg-type]
                parts = []
        else:
            merged.append(event)
    return merged


def test_ping_payloads_of_0_to_125_bytes_are_answered() -> None:
    for size in range(126):
        conn = Connection(Role.SERVER)
        payload = bytes(range(size))
        assert feed(conn, [frame(PING, payload)]) == [Ping(payload)]
        assert conn.data_to_send() == [bytes([0x8A, size]) + payload]


def test_deferred_failure_lets_earlier_messages_be_answered_first() -> None:
    conn = Connection(Role.SERVER, defer_failure=True)
    events = feed(conn, [frame(TEXT, b"before") + frame(5, b"") + frame(TEXT, b"after")])
    assert events == [TextMessage("before")]
    assert conn.pending_failure is not None and conn.pending_failure.code == 1002
    conn.send_text("before")  # the echo still goes out, ahead of the close frame
    assert feed(conn, [frame(TEXT, b"ignored")]) == []
    conn.apply_pending_failure()
    echo, close = conn.data_to_send()
    assert echo == b"\x81\x06before"
    assert close.startswith(b"\x88") and close[2:4] == (1002).to_bytes(2, "big")
    assert conn.close_sent is not None and conn.close_sent[0] == 1002
    assert conn.failure is not None


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=400),
    role=st.sampled_from([Role.SERVER, Role.CLIENT]),
    stream=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_arbitrary_bytes_never_raise_and_failures_are_final(
    data: bytes, role: Role, stream: bool, cuts: list[int]
) -> None:
    """Whatever the peer sends, receive_data() only produces events (STYLE: never raises)."""
    conn = Connection(role, stream_messages=stream)
    events = feed(conn, split_at(data, cuts))
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    assert len(failures) <= 1
    if failures:
        assert events[-1] is failures[0]  # nothing is delivered after failing
        assert failures[0].code in (1002, 1007, 1009)
        assert conn.close_sent is not None
    closes = [e for e in events if isinstance(e, CloseReceived)]
    if closes:
        assert events[-1] is closes[0]


raw_frame = st.builds(
    lambda opcode, payload, fin, rsv, masked: frame(
        opcode,
        payload,
        fin=fin,
        rsv1=bool(rsv & 4),
        rsv2=bool(rsv & 2),
        rsv3=bool(rsv & 1),
        mask=MASK_KEY if masked else None,
    ),
    st.integers(min_value=0, max_value=15),
    st.one_of(st.binary(max_size=130), st.text(max_size=40).map(str.encode)),
    st.booleans(),
    st.sampled_from([0, 0, 0, 1, 2, 4]),
    st.booleans(),
)
MASK_KEY = b"\x01\x02\x03\x04"


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(raw_frame, max_size=8),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=3),
    role=st.sampled_from([Role.SERVER, Role.CLIENT]),
    stream=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=1200), max_size=8),
)
def test_mutated_frame_streams_never_raise_and_split_the_same(
    frames: list[bytes],
    flips: list[tuple[int, int]],
    role: Role,
    stream: bool,
    cuts: list[int],
) -> None:
    data = bytearray(b"".join(frames))
    for position, value in flips:
        if data:
            data[position % len(data)] ^= value

    def run(chunks: list[bytes]) -> list[object]:
        conn = Connection(role, stream_messages=stream)
        events = _merge_chunks(feed(conn, chunks))
        if role is Role.SERVER:  # a client's replies are masked with fresh keys
            events.append(b"".join(conn.data_to_send()))  # pongs, the close reply
        return events

    whole = run([bytes(data)])
    assert run(split_at(bytes(data), cuts)) == whole
    failures = [e for e in whole if isinstance(e, ConnectionFailed)]
    assert len(failures) <= 1
    if failures:
        assert whole[-1 if role is Role.CLIENT else -2] is failures[0]


@pytest.mark.parametrize("stream", [False, True])
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8))
def test_a_reused_receive_buffer_is_never_kept(stream: bool, cuts: list[int]) -> None:
    """The asyncio side reads every socket into one shared buffer: receive_data() must copy
    whatever it keeps, since the buffer is overwritten by the next read."""
    data = (
        frame(TEXT, "héllo".encode())
        + frame(BINARY, bytes(range(200)), fin=False)
        + frame(PING, b"p")
        + frame(CONT, b"tail" * 30)
        + frame(BINARY, b"\x00" * 130)
    )
    conn = Connection(Role.SERVER, stream_messages=stream)
    shared = bytearray(512)
    view = memoryview(shared)
    events: list[object] = []
    position = 0
    for cut in [*cuts, len(data)]:
        chunk = data[position : position + cut]
        if not chunk:
            break
        shared[: len(chunk)] = chunk
        conn.receive_data(view[: len(chunk)])
        shared[:] = b"\xee" * len(shared)  # the next read overwrites the buffer
        events.extend(conn.events_received())
        position += len(chunk)
    assert _merge_chunks(events) == _merge_chunks(server_events(data, stream_messages=stream))


def _may_frame_now(conn: Connection) -> bool:
    """frame_now()'s conditions, spelled out (the connection keeps them as one flag)."""
    return (
        not conn._outgoing
        and conn._masks is None
        and conn.deflate is None
        and conn.sending_opcode is None
        and conn.close_sent is None
        and conn.state is State.OPEN
    )


_STEPS = {
    "ping": lambda c: c.send_ping(b"p"),
    "text": lambda c: c.send_text("t"),
    "first fragment": lambda c: c.send_binary(b"f", fin=False),
    "last fragment": lambda c: c.send_continuation(b"l", fin=True),
    "flush": lambda c: c.data_to_send(),
    "close": lambda c: c.send_close(),
    "fail": lambda c: c.fail(1002, "broken"),
    "peer ping": lambda c: c.receive_data(frame(0x9, b"?", mask=b"abcd")),
    "peer close": lambda c: c.receive_data(frame(0x8, b"\x03\xe8", mask=b"abcd")),
    "peer garbage": lambda c: c.receive_data(b"\xff\xff\xff"),
    "eof": lambda c: c.receive_eof(),
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(_STEPS)), max_size=8))
def test_the_frame_now_flag_follows_every_change_of_state(steps: list[str]) -> None:
    conn = Connection(Role.SERVER)
    assert conn._frame_now_ok
    for step in steps:
        with contextlib.suppress(InvalidState):
            _STEPS[step](conn)
        assert conn._frame_now_ok is _may_frame_now(conn), steps
        assert (conn.frame_now(b"x") is not None) is _may_frame_now(conn)


def _may_take_whole_frames(conn: Connection) -> bool:
    """receive_messages()'s conditions, spelled out (the connection keeps them as one flag)."""
    decoder, assembler = conn._decoder, conn._assembler
    return not (
        conn._input_done
        or (decoder is not None and (decoder._pending or decoder._remaining))
        or (assembler is not None and assembler._in_message)
    )


_STREAM = b"".join(
    [
        frame(0x1, b"whole", mask=b"abcd"),
        frame(0x2, b"first", fin=False, mask=b"abcd"),
        frame(0x9, b"ping", mask=b"abcd"),
        frame(0x0, b"last", mask=b"abcd"),
        frame(0x2, b"x" * 300, mask=b"abcd"),
        frame(0x8, b"\x03\xe8", mask=b"abcd"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(0, len(_STREAM)), max_size=8),
    garbage=st.booleans(),
    eof=st.booleans(),
)
def test_the_whole_frames_flag_follows_every_read(
    cuts: list[int], garbage: bool, eof: bool
) -> None:
    conn = Connection(Role.SERVER, stream_messages=True, defer_failure=True)
    data = _STREAM[: max(cuts, default=0)] + (b"\xff\xff\xff" if garbage else b"")
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        taken: list[tuple[str | bytes, bool, bool]] = []
        used = conn.receive_messages(data[start:end], taken)
        assert (used > 0) <= conn._whole_frames_ok
        conn.receive_data(data[start + used : end])
        assert conn._whole_frames_ok is _may_take_whole_frames(conn), (cuts, garbage)
    if eof:
        conn.receive_eof()
        assert conn._whole_frames_ok is _may_take_whole_frames(conn) is False
