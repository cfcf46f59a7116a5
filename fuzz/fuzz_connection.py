#!/usr/bin/env python3
"""Fuzz target: the WebSocket connection state machine, driven by random sequences of calls.

Input: a flags byte (our role, permessage-deflate and its parameters, streaming delivery,
deferred failure), then operations, one byte each plus arguments: send_text, send_binary,
send_continuation, send_ping, send_pong, send_close, fail, frame_now, receive_eof,
apply_pending_failure, delivering our bytes to a peer Connection of the other role (split as
the input says, through receive_messages() and receive_data() both), the peer sending to us,
and raw bytes from a misbehaving peer. Checked after every operation:

- send_*() raise only InvalidState, ValueError or TypeError, exactly when a model of the rules
  says they must; receive_data() never raises.
- The state only moves forward (OPEN -> CLOSING -> CLOSED), and nothing follows a close frame.
- Whatever we send, the peer decodes without failing, and receives exactly the messages, pings
  and close (code, reason) we sent, in order; a connection fails only after garbage came in.
- frame_now() gives one frame carrying the message, or None.
- close_expected() is what RFC 6455 7.1.1 says.
- The C and the Python paths give the same transcript (differential).
- After our bytes are delivered, each side holds at most max_message_size plus a constant.
- The whole sequence stays within a time budget linear in the input's length.

Run long: python3 fuzz/fuzz_connection.py -max_total_time=3600 fuzz/corpus/connection
"""

from __future__ import annotations

import sys
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented, pieces

with instrumented(__name__):
    from _invariants import (
        deep_size,
        differential,
        event_values,
        reference_frames,
        whole_messages,
        within_linear_time,
    )

    from framewire.exceptions import InvalidState
    from framewire.sansio.connection import Connection, Role, State
    from framewire.sansio.deflate import DeflateConfig, DeflateParameters, PerMessageDeflate
    from framewire.sansio.events import CloseReceived, ConnectionFailed, Ping, Pong
    from framewire.sansio.frames import is_valid_close_code
    from framewire.sansio.limits import WebSocketLimits

# 200 operations of at most 255 bytes each never make a message this large: a peer following
# the protocol never hits the limit, so any failure is a finding.
MAX_MESSAGE_SIZE = 1 << 16
LIMITS = WebSocketLimits(max_message_size=MAX_MESSAGE_SIZE)
HELD_OVERHEAD = 8192
CLOSE_CODES = (1000, 1001, 1002, 1005, 1006, 1009, 1011, 1015, 2999, 3000, 4999, 5000, 0)
TEXTS = ("", "a", "héllo", "€" * 50, "\U0001f600", "x" * 200)


class Side:
    """One Connection and what a model of RFC 6455 expects of it."""

    def __init__(self, role: Role, deflate: PerMessageDeflate | None, stream: bool, defer: bool):
        self.conn = Connection(
            role, limits=LIMITS, deflate=deflate, stream_messages=stream, defer_failure=defer
        )
        self.fragmented: str | None = None  # "text" or "binary" while a message is being sent
        self.parts: list[Any] = []
        self.sent_messages: list[tuple[str, Any]] = []
        self.sent_pings: list[bytes] = []
        self.sent_pongs: list[bytes] = []
        self.received: list[Any] = []
        self.stream = stream
        self.garbage = False  # raw bytes came in from outside the protocol, or fail() was called
        self.eof = False
        self.state = State.OPEN

    def can_send_data(self) -> bool:
        conn = self.conn
        return conn.state is State.OPEN and conn.close_sent is None


def _expect(call: Any, allowed: bool, error: type[Exception]) -> str:
    """Call; it must succeed when ``allowed`` and raise ``error`` otherwise."""
    try:
        call()
    except (InvalidState, ValueError, TypeError) as exc:
        assert not allowed and isinstance(exc, error), f"unexpected {exc!r}"
        return type(exc).__name__
    assert allowed, f"expected {error.__name__}"
    return "ok"


def send_data(side: Side, reader: ByteReader, kind: str) -> str:
    fin = reader.flag()
    compress = reader.flag()
    payload: Any = reader.pick(TEXTS) if kind == "text" else reader.short_bytes()
    conn = side.conn
    allowed = side.can_send_data() and side.fragmented is None
    if kind == "text":
        outcome = _expect(
            lambda: conn.send_text(payload, fin=fin, compress=compress), allowed, InvalidState
        )
    else:
        outcome = _expect(
            lambda: conn.send_binary(payload, fin=fin, compress=compress), allowed, InvalidState
        )
    if outcome == "ok":
        side.parts = [payload]
        _after_data(side, kind, fin)
    return outcome


def send_continuation(side: Side, reader: ByteReader) -> str:
    fin = reader.flag()
    kind = side.fragmented
    payload: Any = reader.pick(TEXTS) if kind == "text" else reader.short_bytes()
    allowed = side.can_send_data() and kind is not None
    outcome = _expect(lambda: side.conn.send_continuation(payload, fin=fin), allowed, InvalidState)
    if outcome == "ok":
        assert kind is not None
        side.parts.append(payload)
        _after_data(side, kind, fin)
    return outcome


def _after_data(side: Side, kind: str, fin: bool) -> None:
    if fin:
        joined = "".join(side.parts) if kind == "text" else b"".join(side.parts)
        side.sent_messages.append((kind, joined))
        side.fragmented = None
    else:
        side.fragmented = kind


def send_control(side: Side, reader: ByteReader, ping: bool) -> str:
    payload = reader.short_bytes()
    conn = side.conn
    if len(payload) > 125:
        return _expect(
            lambda: (conn.send_ping if ping else conn.send_pong)(payload), False, ValueError
        )
    allowed = conn.close_sent is None and conn.state is not State.CLOSED
    outcome = _expect(
        lambda: (conn.send_ping if ping else conn.send_pong)(payload), allowed, InvalidState
    )
    if outcome == "ok":
        (side.sent_pings if ping else side.sent_pongs).append(payload)
    return outcome


def send_close(side: Side, reader: ByteReader) -> str:
    code = reader.pick((*CLOSE_CODES, None))
    reason = reader.pick(("", "bye", "é" * 61, "é" * 62))
    conn = side.conn
    if conn.close_sent is not None or conn.state is State.CLOSED:
        return _expect(lambda: conn.send_close(code, reason), False, InvalidState)
    valid = (code is None and not reason) or (
        code is not None and is_valid_close_code(code) and len(reason.encode()) <= 123
    )
    return _expect(lambda: conn.send_close(code, reason), valid, ValueError)


def transmit(sender: Side, receiver: Side, reader: ByteReader) -> None:
    """Deliver everything ``sender`` queued to ``receiver``, split as the input says."""
    data = b"".join(sender.conn.data_to_send())
    _check_output(sender, data)
    use_fast_path = reader.flag()
    for chunk in pieces(data, reader.byte()):
        conn = receiver.conn
        if use_fast_path and chunk:
            out: list[Any] = []
            taken = conn.receive_messages(chunk, out)
            for payload, is_text, _ in out:
                receiver.received.append(("text" if is_text else "binary", payload))
            chunk = chunk[taken:]
        conn.receive_data(chunk)
        receiver.received.extend(event_values(conn.events_received()))
    for side in (sender, receiver):
        # The compressor's window and tables are a fixed cost per connection, not input held
        # (zlib's are invisible to sys.getsizeof, ISA-L's are not): left out.
        held = deep_size(side.conn, shared=(LIMITS, side.conn.deflate))
        assert held <= MAX_MESSAGE_SIZE + HELD_OVERHEAD, f"a connection holds {held} bytes"


def _check_output(sender: Side, data: bytes) -> None:
    """Nothing follows our close frame, and every frame we wrote is complete."""
    frames = reference_frames(data)
    assert all(frame.complete for frame in frames), "a frame was written in part"
    opcodes = [frame.opcode for frame in frames]
    if 8 in opcodes:
        assert opcodes.index(8) == len(opcodes) - 1, "a frame was sent after the close frame"


def check_received(side: Side, peer: Side) -> None:
    """What ``side`` received is exactly what ``peer`` sent."""
    received = whole_messages(side.received) if side.stream else side.received
    messages = []
    pings = []
    pongs = []
    for event in received:
        if isinstance(event, tuple):
            messages.append(event)
        elif type(event).__name__ in ("TextMessage", "BinaryMessage"):
            messages.append(
                ("text" if type(event).__name__ == "TextMessage" else "binary", event.data)
            )
        elif isinstance(event, Ping):
            pings.append(event.payload)
        elif isinstance(event, Pong):
            pongs.append(event.payload)
        elif isinstance(event, CloseReceived) and not side.garbage:
            sent = peer.conn.close_sent
            assert sent is not None and (event.code, event.reason) == sent, (event, sent)
        elif isinstance(event, ConnectionFailed):
            assert side.garbage, f"{event} though the peer followed the protocol"
    if not side.garbage:
        assert messages == peer.sent_messages[: len(messages)], (messages, peer.sent_messages)
        assert pings == peer.sent_pings[: len(pings)], "pings lost or reordered"
        for payload in pongs:
            assert payload in peer.sent_pongs or payload in side.sent_pings, "unasked pong"


def check_state(side: Side) -> None:
    conn = side.conn
    assert conn.state >= side.state, f"state went back from {side.state!r} to {conn.state!r}"
    side.state = conn.state
    if side.eof:
        assert conn.state is State.CLOSED
    if conn.failure is not None or side.conn.close_received is not None:
        assert conn.state in (State.CLOSING, State.CLOSED)
    expected = conn.close_sent is not None and (
        conn.close_received is not None or conn.failure is not None
    )
    assert conn.close_expected() == expected


def frame_now(side: Side, peer: Side, reader: ByteReader) -> str:
    message: Any = reader.pick(TEXTS) if reader.flag() else reader.short_bytes()
    framed = side.conn.frame_now(message)
    if framed is None:
        return "None"
    (frame,) = reference_frames(framed)
    encoded = message.encode() if isinstance(message, str) else message
    assert frame.complete and frame.fin and frame.payload == encoded
    assert frame.opcode == (1 if isinstance(message, str) else 2)
    assert side.can_send_data() and side.fragmented is None, "frame_now() in the wrong state"
    side.sent_messages.append(("text" if isinstance(message, str) else "binary", message))
    peer.conn.receive_data(framed)
    peer.received.extend(event_values(peer.conn.events_received()))
    return "framed"


def make_pair(flags: int) -> tuple[Side, Side]:
    ours_role = Role.CLIENT if flags & 1 else Role.SERVER
    peer_role = Role.SERVER if ours_role is Role.CLIENT else Role.CLIENT
    deflates: list[PerMessageDeflate | None] = [None, None]
    if flags & 2:
        params = DeflateParameters(
            server_no_context_takeover=bool(flags & 0x10),
            client_no_context_takeover=bool(flags & 0x20),
            server_max_window_bits=(15, 9, 8, 12)[(flags >> 6) & 3],
            client_max_window_bits=(15, 8, 10, 15)[(flags >> 6) & 3],
        )
        config = DeflateConfig(min_size=0)
        deflates = [
            PerMessageDeflate(params, is_server=role is Role.SERVER, config=config)
            for role in (ours_role, peer_role)
        ]
    ours = Side(ours_role, deflates[0], bool(flags & 4), bool(flags & 8))
    peer = Side(peer_role, deflates[1], not flags & 4, False)
    return ours, peer


def run(data: bytes) -> list[Any]:
    """Play the input's operations; return the transcript the differential check compares."""
    reader = ByteReader(data)
    ours, peer = make_pair(reader.byte())
    transcript: list[Any] = []
    steps = 0
    while not reader.exhausted and steps < 200:
        steps += 1
        operation = reader.byte() % 14
        outcome: Any = None
        if operation in (0, 1):
            outcome = send_data(ours, reader, "text" if operation == 0 else "binary")
        elif operation == 2:
            outcome = send_continuation(ours, reader)
        elif operation in (3, 4):
            outcome = send_control(ours, reader, ping=operation == 3)
        elif operation == 5:
            outcome = send_close(ours, reader)
        elif operation == 6:
            code = reader.pick((1002, 1008, 1009, 1011))
            ours.garbage = True
            ours.conn.fail(code, reader.pick(("", "bad", "x" * 300)))
        elif operation == 7:
            transmit(ours, peer, reader)
        elif operation == 8:  # the peer says something, and it reaches us
            choice = reader.byte() % 4
            if choice == 0:
                send_data(peer, reader, "text")
            elif choice == 1:
                send_data(peer, reader, "binary")
            elif choice == 2:
                send_control(peer, reader, ping=True)
            else:
                send_close(peer, reader)
            transmit(peer, ours, reader)
        elif operation == 9:
            ours.garbage = True
            ours.conn.receive_data(reader.short_bytes())
            ours.received.extend(event_values(ours.conn.events_received()))
        elif operation == 10:
            ours.eof = True
            ours.conn.receive_eof()
        elif operation == 11:
            outcome = frame_now(ours, peer, reader)
        elif operation == 12:
            ours.conn.apply_pending_failure()
            ours.received.extend(event_values(ours.conn.events_received()))
        else:
            transmit(ours, peer, reader)
            transmit(peer, ours, reader)
        for side in (ours, peer):
            check_state(side)
        check_received(peer, ours)
        check_received(ours, peer)
        transcript.append((operation, outcome, ours.conn.state, peer.conn.state))
    transcript.append((ours.received, peer.received, ours.conn.close_sent, peer.conn.close_sent))
    return transcript


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    differential(
        lambda: within_linear_time(
            lambda: run(data),
            len(data),
            per_byte=500e-6,  # every operation takes at least one byte of the input
            constant=0.2,
            what="operation sequence",
        )
    )


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
