"""Every fast path is a proven subset of its general path (STYLE.md, "C accelerator and fast
paths"): for any input it returns exactly what the general path returns, or declines (returns
its "not handled" value) and lets the general path run. Never a third answer.

    fast path                                   held to the general path
    parse_whole_frames (Python, C), through     Connection.receive_data + events_received with
      Connection.receive_messages/receive_data    every receive fast path turned off
    take_compressed_messages (with deflate)     the same (compressed messages alone, or sharing
                                                  a DEFLATE context, among the valid units)
    parse_control_frame                         FrameDecoder.feed
    Connection.frame_now                        send_text / send_binary, then data_to_send
    DirectWriter.send_message (C, Linux)        the same; its bytes are read from a socket pair
    parse_upgrade_request (Python, C) and the   RequestParser (line by line), is_websocket_upgrade,
      server's plain 101                          accept_request and its response_bytes()
    parse_field_lines (Python, C)               RequestParser's line-by-line path
    encode_fields (C)                           py_encode_fields

Inputs are valid ones with one fault, and each test is parametrized by the fault so that every
kind gets its share of examples: frames with FIN clear, an RSV bit (RSV1 with or without
deflate), a reserved opcode, wrong masking, a 16-bit, 64-bit or mismatched length, a control
frame with length 126 or a longer payload, invalid UTF-8, a payload over max_message_size,
compressed text inflating to invalid UTF-8 or past max_message_size;
sends after each change of state; upgrade requests with a field dropped, repeated or odd, an
extra field, another request line, a bare LF, a malformed line; limits at, under and over what
the input needs. A fast path loosened in any of these ways fails here. The C case of each test
skips only when the extension was not built. Examples are derandomized and budgeted: the file
runs the same way every time, in about 12 s of CPU.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import itertools
import socket
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framewire.aio.ws.server_handshake import plain_101_around_accept
from framewire.exceptions import InvalidHandshake, InvalidState, ProtocolError
from framewire.sansio import connection as connection_module
from framewire.sansio import http11_framing
from framewire.sansio.connection import Connection, Role
from framewire.sansio.decoder import FrameDecoder, FramePiece, parse_control_frame
from framewire.sansio.deflate import DeflateConfig, DeflateParameters, PerMessageDeflate
from framewire.sansio.events import BinaryMessage, Event, TextMessage
from framewire.sansio.field_lines import py_parse_field_lines
from framewire.sansio.handshake import accept_request, is_websocket_upgrade
from framewire.sansio.http11 import RequestParser
from framewire.sansio.http11_encode import py_encode_fields
from framewire.sansio.http11_events import BadRequest, EndOfMessage, RequestHead
from framewire.sansio.limits import HTTPLimits, WebSocketLimits
from framewire.sansio.mask import py_apply_mask
from framewire.sansio.upgrade_request import py_parse_upgrade_request
from framewire.sansio.whole_frames import py_parse_whole_frames
from tests.conftest import c_twin_or_skip
from tests.sansio.splits import split_at


def budget(examples: int) -> settings:
    """Hypothesis settings of a test here: ``examples`` derandomized examples, no deadline."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def twin(request: pytest.FixtureRequest, python_version: Any, c_name: str) -> Any:
    """The Python twin, or its C version (the test skips when the extension was not built)."""
    return python_version if request.param == "python" else c_twin_or_skip(c_name)


@pytest.fixture(scope="module", params=["python", "c"])
def whole_frames(request: pytest.FixtureRequest) -> Any:
    return twin(request, py_parse_whole_frames, "parse_whole_frames")


@pytest.fixture(scope="module", params=["python", "c"])
def upgrade_request(request: pytest.FixtureRequest) -> Any:
    return twin(request, py_parse_upgrade_request, "parse_upgrade_request")


@pytest.fixture(scope="module", params=["python", "c"])
def field_lines(request: pytest.FixtureRequest) -> Any:
    return twin(request, py_parse_field_lines, "parse_field_lines")


# ------------------------------------------------------------------ choosing the path


def decline_whole_frames(data: object, masked: bool, max_size: int | None, out: object) -> int:
    """parse_whole_frames() that takes nothing: Connection goes the general way."""
    return 0


def decline_compressed(data: object, position: int, *arguments: object) -> int:
    """take_compressed_messages() that takes nothing: compressed frames go the general way."""
    return position


def decline_control_frame(data: object, expect_masked: bool) -> None:
    """parse_control_frame() that takes nothing: Connection makes its FrameDecoder."""
    return None


def decline_field_lines(*arguments: object) -> None:
    """parse_field_lines() that takes nothing: RequestParser reads line by line."""
    return None


@contextlib.contextmanager
def receive_paths(
    whole_frames: Callable[..., int], control_frame: Callable[..., Any]
) -> Iterator[None]:
    """Let Connection use these receive fast paths (the decliners: the general path only, and
    then compressed frames go the general way too)."""
    saved = (
        connection_module.parse_whole_frames,
        connection_module.parse_control_frame,
        connection_module.take_compressed_messages,
    )
    connection_module.parse_whole_frames = whole_frames
    connection_module.parse_control_frame = control_frame
    if whole_frames is decline_whole_frames:
        connection_module.take_compressed_messages = decline_compressed
    try:
        yield
    finally:
        (
            connection_module.parse_whole_frames,
            connection_module.parse_control_frame,
            connection_module.take_compressed_messages,
        ) = saved


@contextlib.contextmanager
def field_lines_path(parse: Callable[..., Any]) -> Iterator[None]:
    """Let RequestParser read whole heads with ``parse`` (decline_field_lines: line by line)."""
    saved = http11_framing.parse_field_lines
    http11_framing.parse_field_lines = parse
    try:
        yield
    finally:
        http11_framing.parse_field_lines = saved


# ------------------------------------------------------------------ frames, one fault at most

DATA_OPCODES, CONTROL_OPCODES = [1, 2], [8, 9, 10]
RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]
FAULTS = [
    "fin-clear",
    "rsv1",
    "rsv1-deflated",
    "rsv2",
    "rsv3",
    "reserved-opcode",
    "continuation",
    "masking",
    "16-bit",  # a length in a longer form than it needs (RFC 6455 5.2 asks for the shortest)
    "64-bit",
    "64-bit-top-bit",
    "raw",  # any 7-bit length field, whatever follows
    "control-length-126",
    "control-over-125",
    "invalid-utf-8",
    "large",
    "deflated-invalid-utf-8",  # RSV1 text whose inflated payload is not UTF-8
    "deflated-large",  # RSV1, inflating past the smaller max_message_size values
]
INVALID_UTF8 = [b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"ok\xf4\x90\x80\x80", b"\x80"]
CLOSE_PAYLOADS = [
    b"",
    b"\x03",
    b"\x03\xe8",
    b"\x03\xe8bye",
    b"\x0b\xb8",  # 3000
    b"\x13\x87",  # 4999
    b"\x03\xe7",  # 999
    b"\x03\xed",  # 1005: never sent
    b"\x13\x88",  # 5000
    b"\x03\xe8\xff",  # reason not UTF-8
    b"\x03\xe8" + b"r" * 123,
]
SIZES = st.one_of(st.integers(0, 10), st.sampled_from([124, 125, 126, 127, 300]))
CONTROL_SIZES = st.one_of(st.integers(0, 10), st.sampled_from([124, 125]))
MASK_KEYS = st.one_of(st.just(b"\x00\x00\x00\x00"), st.binary(min_size=4, max_size=4))


def deflated(payload: bytes) -> bytes:
    """``payload`` compressed as one permessage-deflate message (RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


@st.composite
def payloads(draw: st.DrawFn, opcode: int) -> bytes:
    if opcode == 8:
        return draw(st.sampled_from(CLOSE_PAYLOADS))
    size = draw(CONTROL_SIZES if opcode > 8 else SIZES)
    if opcode == 1 and draw(st.integers(0, 3)):
        return draw(st.text(max_size=size)).encode()
    return draw(st.binary(min_size=size, max_size=size))


def encode(
    draw: st.DrawFn,
    opcode: int,
    payload: bytes,
    *,
    masked: bool,
    fin: bool = True,
    rsv: int = 0,
    form: str = "minimal",
) -> bytes:
    """A frame's bytes; ``form`` is how its length is written: "minimal", "16-bit", "64-bit",
    "64-bit-top-bit" (its most significant bit set), "raw" (any 7-bit length field, nothing
    after it) or "raw 126"."""
    length = len(payload)
    if form == "raw":
        field, extended = draw(st.integers(0, 127)), b""
    elif form == "raw 126":
        field, extended = 126, b""
    elif form == "16-bit" or (form == "minimal" and length >= 126):
        field, extended = 126, length.to_bytes(2, "big")
    elif form.startswith("64-bit"):
        top = 1 << 63 if form.endswith("top-bit") else 0
        field, extended = 127, (length | top).to_bytes(8, "big")
    else:
        field, extended = length, b""
    header = bytes(((0x80 if fin else 0) | rsv | opcode, (0x80 if masked else 0) | field))
    if not masked:
        return header + extended + payload
    key = draw(MASK_KEYS)
    return header + extended + key + py_apply_mask(payload, key)


@st.composite
def valid_units(draw: st.DrawFn, masked: bool, deflate: bool = False) -> bytes:
    """A whole message in one frame (most often), a control frame, or a fragmented message,
    perhaps with a control frame between its fragments; with ``deflate``, also compressed
    messages of one frame, each alone or two that share a DEFLATE context."""
    kinds = ["message"] * 6 + ["control", "fragmented"]
    kind = draw(st.sampled_from(kinds + (["compressed"] * 4 + ["shared"] * 2 if deflate else [])))
    if kind in ("compressed", "shared"):
        opcode = draw(st.sampled_from(DATA_OPCODES))
        first = draw(payloads(opcode))
        if kind == "compressed":
            return encode(draw, opcode, deflated(first), masked=masked, rsv=0x40)
        # The second message refers back to the first: the receiver's inflater keeps it.
        compressor = zlib.compressobj(wbits=-15)
        frames = []
        for payload in (first, first + draw(payloads(opcode))):
            data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
            frames.append(encode(draw, opcode, data[:-4], masked=masked, rsv=0x40))
        return b"".join(frames)
    if kind == "message":
        opcode = draw(st.sampled_from(DATA_OPCODES))
        return encode(draw, opcode, draw(payloads(opcode)), masked=masked)
    if kind == "control":
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        return encode(draw, opcode, draw(payloads(opcode)), masked=masked)
    opcode = draw(st.sampled_from(DATA_OPCODES))
    text = draw(st.text(max_size=12)).encode() if opcode == 1 else draw(st.binary(max_size=12))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=2)))
    parts = [text[start:stop] for start, stop in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    fragments = [
        encode(draw, opcode if index == 0 else 0, part, masked=masked, fin=index == len(parts) - 1)
        for index, part in enumerate(parts)
    ]
    if draw(st.booleans()):
        fragments.insert(1, encode(draw, 9, b"between", masked=masked))
    return b"".join(fragments)


@st.composite
def faulty_frames(
    draw: st.DrawFn, masked: bool, fault: str, opcodes: list[int] | None = None
) -> bytes:
    """One frame (of one of ``opcodes``, by default any) that is valid but for ``fault``."""
    opcode = draw(st.sampled_from(opcodes or [*DATA_OPCODES * 3, 0, *CONTROL_OPCODES]))
    payload = draw(payloads(opcode))
    fin, rsv, mask_bit, form = True, 0, masked, "minimal"
    if fault == "fin-clear":
        fin = False
    elif fault in ("rsv1", "rsv1-deflated"):
        rsv = 0x40
        payload = deflated(payload) if fault == "rsv1-deflated" else payload
    elif fault in ("rsv2", "rsv3"):
        rsv = 0x20 if fault == "rsv2" else 0x10
    elif fault == "reserved-opcode":
        opcode = draw(st.sampled_from(RESERVED_OPCODES))
    elif fault == "continuation":
        opcode = 0
    elif fault == "masking":
        mask_bit = not masked
    elif fault in ("16-bit", "64-bit", "64-bit-top-bit", "raw"):
        form = fault
    elif fault == "control-length-126":
        # A 7-bit length of 126 followed by 126 bytes: 126 is the 16-bit form's marker.
        opcode, payload, form = draw(st.sampled_from(CONTROL_OPCODES)), bytes(126), "raw 126"
    elif fault == "control-over-125":
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        payload = draw(st.binary(min_size=126, max_size=130))
    elif fault == "invalid-utf-8":
        opcode, payload = 1, draw(st.sampled_from(INVALID_UTF8))
    elif fault == "large":
        payload = draw(st.binary(min_size=126, max_size=400))
    elif fault == "deflated-invalid-utf-8":
        opcode, rsv = 1, 0x40
        payload = deflated(draw(st.text(max_size=5)).encode() + draw(st.sampled_from(INVALID_UTF8)))
    elif fault == "deflated-large":
        opcode, rsv = draw(st.sampled_from(DATA_OPCODES)), 0x40
        payload = deflated(b"a" * draw(st.integers(100, 400)))
    return encode(draw, opcode, payload, masked=mask_bit, fin=fin, rsv=rsv, form=form)


@st.composite
def frame_streams(draw: st.DrawFn, masked: bool, fault: str, deflate: bool = False) -> bytes:
    """Up to three valid units and, unless ``fault`` is "none", a frame with that fault among
    them (most often where the fast path meets it); whole, cut short, or followed by a few
    stray bytes."""
    units = draw(st.lists(valid_units(masked, deflate), max_size=3))
    if fault != "none":
        units.insert(draw(st.integers(0, len(units))), draw(faulty_frames(masked, fault)))
    data = b"".join(units)
    ending = draw(st.sampled_from(["whole"] * 6 + ["cut", "junk"]))
    if ending == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if ending == "junk":
        return data + draw(st.binary(min_size=1, max_size=6))
    return data


@st.composite
def closing_units(draw: st.DrawFn, masked: bool, fault: str) -> list[bytes]:
    """Up to two whole messages, then one control frame, valid or with one fault: the shape of a
    closing handshake, which Connection serves without a FrameDecoder (parse_control_frame)."""
    units = []
    for _ in range(draw(st.integers(0, 2))):
        opcode = draw(st.sampled_from(DATA_OPCODES))
        units.append(encode(draw, opcode, draw(payloads(opcode)), masked=masked))
    if fault == "none":
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        units.append(encode(draw, opcode, draw(payloads(opcode)), masked=masked))
    else:
        units.append(draw(faulty_frames(masked, fault, CONTROL_OPCODES)))
    return units


def peer_frame(opcode: int, payload: bytes, *, masked: bool) -> bytes:
    """A valid frame of a peer (masked with a zero key when ``masked``)."""
    header = bytes((0x80 | opcode, (0x80 if masked else 0) | len(payload)))
    return header + b"\x00\x00\x00\x00" + payload if masked else header + payload


# ------------------------------------------------------------------ connections

DEFLATE_CONFIG = DeflateConfig(min_size=0)  # every message compressed: frames differ from plain


@dataclasses.dataclass(frozen=True)
class Setup:
    """How the two connections compared in a test are made."""

    role: Role
    deflate: bool = False
    stream_messages: bool = False
    max_message_size: int | None = 1 << 20
    defer_failure: bool = False

    @property
    def receives_masked(self) -> bool:
        return self.role is Role.SERVER

    def connection(self) -> Connection:
        deflate = None
        if self.deflate:
            is_server = self.role is Role.SERVER
            deflate = PerMessageDeflate(
                DeflateParameters(), is_server=is_server, config=DEFLATE_CONFIG
            )
        return Connection(
            self.role,
            limits=WebSocketLimits(max_message_size=self.max_message_size),
            deflate=deflate,
            stream_messages=self.stream_messages,
            defer_failure=self.defer_failure,
        )


setups = st.builds(
    Setup,
    role=st.sampled_from(Role),
    deflate=st.booleans(),
    stream_messages=st.booleans(),
    max_message_size=st.sampled_from([None, 1 << 20, 1 << 20, 300, 125, 5, 0]),
    defer_failure=st.booleans(),
)


def plain_events(events: list[Event]) -> list[tuple[object, ...]]:
    """Events as comparable tuples: a memoryview becomes bytes, str stays str."""
    return [
        (
            type(event).__name__,
            *(
                bytes(value) if isinstance(value, memoryview) else value
                for value in (getattr(event, field.name) for field in dataclasses.fields(event))
            ),
        )
        for event in events
    ]


def frames_sent(connection: Connection) -> list[tuple[object, ...]]:
    """What the connection queued, as (opcode, fin, rsv1, payload, last) per frame: a client's
    frames are masked with fresh keys, so they are compared unmasked (and must be masked)."""
    decoder = FrameDecoder(expect_masked=connection.role is Role.CLIENT, allow_rsv1=True)
    pieces: list[FramePiece] = []
    decoder.feed(b"".join(connection.data_to_send()), pieces)
    return [
        (piece.opcode, piece.fin, piece.rsv1, bytes(piece.data), piece.last) for piece in pieces
    ]


def transcript(setup: Setup, chunks: list[bytes | bytearray | memoryview]) -> list[object]:
    """Events and frames sent after each chunk, then the connection's final state."""
    connection = setup.connection()
    record: list[object] = []
    for chunk in chunks:
        connection.receive_data(chunk)
        record.append((plain_events(connection.events_received()), frames_sent(connection)))
    record.append(
        (
            connection.state,
            connection.close_received,
            connection.close_sent,
            connection.failure,
            connection.pending_failure,
        )
    )
    return record


@st.composite
def receive_cases(
    draw: st.DrawFn, fault: str
) -> tuple[Setup, list[bytes | bytearray | memoryview]]:
    """A connection's setup and what it receives, in chunks: frames cut anywhere, or (a third
    of the time) a closing handshake's frames cut only between frames."""
    setup = draw(setups)
    if draw(st.integers(0, 2)):
        data = draw(frame_streams(setup.receives_masked, fault, setup.deflate))
        cuts = draw(st.just([]) | st.lists(st.integers(0, len(data)), max_size=3))
        chunks = split_at(data, cuts)
    else:
        units = draw(closing_units(setup.receives_masked, fault))
        ends = list(itertools.accumulate(map(len, units)))
        chunks = split_at(b"".join(units), draw(st.lists(st.sampled_from(ends), max_size=2)))
    kind = draw(st.sampled_from([bytes, bytes, bytearray, memoryview]))
    return setup, [kind(chunk) for chunk in chunks]


# Each fault gets its share of examples: hypothesis favours the first of a sampled_from().
FAULT_CASES = ["none", *FAULTS]


@pytest.mark.parametrize("fault", FAULT_CASES)
@budget(30)
@given(source=st.data())
def test_receiving_through_the_fast_paths_gives_the_general_paths_events_and_frames(
    whole_frames: Any, fault: str, source: st.DataObject
) -> None:
    setup, chunks = source.draw(receive_cases(fault))
    with receive_paths(decline_whole_frames, decline_control_frame):
        expected = transcript(setup, chunks)
    with receive_paths(whole_frames, parse_control_frame):
        assert transcript(setup, chunks) == expected


@st.composite
def whole_frame_cases(draw: st.DrawFn, fault: str) -> tuple[Setup, bytes]:
    setup = Setup(
        draw(st.sampled_from(Role)),
        deflate=draw(st.booleans()),
        max_message_size=draw(st.sampled_from([None, None, 300, 300, 125, 5, 0])),
    )
    return setup, draw(frame_streams(setup.receives_masked, fault))


@pytest.mark.parametrize("fault", FAULT_CASES)
@budget(30)
@given(source=st.data(), kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_whole_frames_are_what_the_general_path_reads_as_whole_messages(
    whole_frames: Any, fault: str, source: st.DataObject, kind: type
) -> None:
    setup, data = source.draw(whole_frame_cases(fault))
    out: list[tuple[str | bytes, bool, bool]] = []
    used = whole_frames(kind(data), setup.receives_masked, setup.max_message_size, out)
    assert 0 <= used <= len(data)
    python_out: list[tuple[str | bytes, bool, bool]] = []
    assert (
        py_parse_whole_frames(data, setup.receives_masked, setup.max_message_size, python_out)
        == used
    )
    assert out == python_out  # the twins agree
    assert all(last is True and isinstance(p, str) is is_text for p, is_text, last in out)
    messages = [TextMessage(p) if is_text else BinaryMessage(p) for p, is_text, _ in out]
    # The general path reads the bytes taken as exactly these messages, and they end on a frame
    # boundary: an empty binary frame appended after them is read as itself.
    probe = peer_frame(2, b"", masked=setup.receives_masked)
    with receive_paths(decline_whole_frames, decline_control_frame):
        general = setup.connection()
        general.receive_data(data[:used] + probe)
        assert general.events_received() == [*messages, BinaryMessage(b"")]
        assert general.data_to_send() == []


# ------------------------------------------------------------------ one control frame


@st.composite
def control_frame_cases(draw: st.DrawFn, fault: str) -> tuple[bytes, bool]:
    """Mostly one control frame, valid but for ``fault`` (sometimes also a byte short or
    over); else a stream of frames with that fault."""
    expect_masked = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        return draw(frame_streams(expect_masked, fault)), expect_masked
    if fault == "none":
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        data = encode(draw, opcode, draw(payloads(opcode)), masked=expect_masked)
    else:
        data = draw(faulty_frames(expect_masked, fault, CONTROL_OPCODES))
    if draw(st.integers(0, 5)) == 0:
        data = data[:-1] if draw(st.booleans()) else data + b"\x00"
    return data, expect_masked


def piece_fields(piece: FramePiece) -> tuple[object, ...]:
    return (
        piece.opcode,
        piece.fin,
        piece.rsv1,
        type(piece.data),
        bytes(piece.data),
        piece.first,
        piece.last,
        piece.frame_length,
    )


@pytest.mark.parametrize("fault", FAULT_CASES)
@budget(30)
@given(
    source=st.data(),
    allow_rsv1=st.booleans(),
    max_frame_size=st.sampled_from([None, 0, 125]),
)
def test_a_whole_control_frame_is_the_decoders_one_piece(
    fault: str, source: st.DataObject, allow_rsv1: bool, max_frame_size: int | None
) -> None:
    data, expect_masked = source.draw(control_frame_cases(fault))
    piece = parse_control_frame(data, expect_masked)
    if piece is None:
        return  # declined
    decoder = FrameDecoder(
        expect_masked=expect_masked, allow_rsv1=allow_rsv1, max_frame_size=max_frame_size
    )
    pieces: list[FramePiece] = []
    decoder.feed(data, pieces)  # a ProtocolError here fails the test: the fast path took it
    assert [piece_fields(each) for each in pieces] == [piece_fields(piece)]
    # ``data`` was all of that one frame: the next frame is read as itself.
    decoder.feed(peer_frame(9, b"next", masked=expect_masked), pieces)
    assert [piece_fields(each) for each in pieces[1:]] == [
        (9, True, False, bytes, b"next", True, True, 4)
    ]


def test_the_decoder_refuses_what_the_control_frame_path_must_decline() -> None:
    # The faults a loosened parse_control_frame would let through, each a ProtocolError here.
    for data in (b"\x09\x00", b"\xc9\x00", b"\x89\x7e" + bytes(126), b"\x8b\x00", b"\x89\x80"):
        assert parse_control_frame(data, False) is None
        with pytest.raises(ProtocolError):
            FrameDecoder(expect_masked=False).feed(data, [])


# ------------------------------------------------------------------ sending

STEPS = [
    "start-fragmented-message",
    "finish-it",
    "send-ping",
    "drain",
    "send-close",
    "receive-ping",
    "receive-close",
    "receive-bad-bytes",
    "receive-eof",
    "fail",
]


def take_step(connection: Connection, step: str) -> None:
    """Do ``step`` to ``connection`` (both connections of a test take the same steps)."""
    masked = connection.role is Role.SERVER
    with contextlib.suppress(InvalidState, ValueError):
        if step == "start-fragmented-message":
            connection.send_text("part", fin=False)
        elif step == "finish-it":
            connection.send_continuation("end", fin=True)
        elif step == "send-ping":
            connection.send_ping(b"ping")
        elif step == "drain":
            connection.data_to_send()
        elif step == "send-close":
            connection.send_close(1000)
        elif step == "receive-ping":
            connection.receive_data(peer_frame(9, b"hi", masked=masked))
        elif step == "receive-close":
            connection.receive_data(peer_frame(8, b"\x03\xe8", masked=masked))
        elif step == "receive-bad-bytes":
            connection.receive_data(b"\xff\xff")
        elif step == "receive-eof":
            connection.receive_eof()
        elif step == "fail":
            connection.fail(1011, "internal error")


MESSAGES = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from([124, 125, 126, 127, 2048, 2049, 65535, 65536]).map(bytes),
    st.sampled_from([125, 126, 16383, 16384]).map(lambda length: "a" * length),
    st.sampled_from(["\U0001f600" * 16383, "é" * 20000]),  # 65,532 and 40,000 bytes
    st.sampled_from(["\ud800", "a\udfffb"]),  # lone surrogates: no UTF-8
    st.binary(max_size=30).map(bytearray),
    st.binary(max_size=30).map(memoryview),
)
send_setups = st.builds(
    Setup,
    role=st.sampled_from([Role.SERVER, Role.SERVER, Role.CLIENT]),
    deflate=st.sampled_from([False, False, True]),
)
# After the step a test is parametrized with: nothing, a drain, or a few more steps.
later_steps = st.one_of(
    st.just([]), st.just(["drain"]), st.lists(st.sampled_from(STEPS), max_size=2)
)


def general_send(connection: Connection, message: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(message, str):
        connection.send_text(message)
    else:
        connection.send_binary(message)
    return b"".join(connection.data_to_send())


def outcome(call: Callable[[], Any]) -> tuple[Any, type[BaseException] | None]:
    """What ``call`` returns, or the type of what it raises."""
    try:
        return call(), None
    except Exception as exc:
        return None, type(exc)


def prepared(setup: Setup, steps: list[str]) -> tuple[Connection, Connection]:
    fast, general = setup.connection(), setup.connection()
    for step in steps:
        take_step(fast, step)
        take_step(general, step)
    return fast, general


@pytest.mark.parametrize("step", ["nothing", *STEPS])
@budget(40)
@given(setup=send_setups, steps=later_steps, message=MESSAGES)
def test_frame_now_is_the_general_send_or_declines(
    step: str, setup: Setup, steps: list[str], message: str | bytes | bytearray | memoryview
) -> None:
    fast, general = prepared(setup, [step, *steps])
    frame, error = outcome(lambda: fast.frame_now(message))  # type: ignore[arg-type]
    expected, general_error = outcome(lambda: general_send(general, message))
    if error is not None:
        assert general_error is error  # raising is the general path's answer only
    elif frame is not None:
        assert general_error is None
        assert frame == expected
        assert fast.data_to_send() == []  # the frame is written at once: nothing was queued


class RecordingTransport:
    """The part of a transport DirectWriter uses: it keeps what it is asked to write."""

    def __init__(self, queued: bytes) -> None:
        self.written = [queued] if queued else []

    def write(self, data: bytes | memoryview) -> None:
        self.written.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.written))


def read_all(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return received
        if not chunk:
            return received
        received += chunk


@pytest.fixture(scope="module")
def direct_writer() -> Any:
    if sys.platform != "linux":
        pytest.skip("DirectWriter is built on Linux only")
    return c_twin_or_skip("DirectWriter")


@pytest.mark.parametrize("step", ["nothing", *STEPS])
@budget(25)
@given(
    setup=send_setups,
    steps=later_steps,
    message=MESSAGES | st.integers(),
    queued=st.sampled_from([b"", b"", b"", b"queued"]),
)
def test_send_message_sends_the_general_paths_frame_or_declines(
    direct_writer: Any, step: str, setup: Setup, steps: list[str], message: object, queued: bytes
) -> None:
    fast, general = prepared(setup, [step, *steps])
    transport = RecordingTransport(queued)
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.setblocking(False)
        writer = direct_writer(ours.fileno(), transport)
        sent, error = outcome(lambda: writer.send_message(fast, message))
        received = read_all(peer) + b"".join(transport.written[1 if queued else 0 :])
    assert error is None  # a message the general path would refuse is declined, not raised
    assert sent is True or sent is False
    if not sent:
        assert received == b""
        return
    assert not queued  # never written ahead of bytes the transport still holds
    assert isinstance(message, str | bytes)
    expected, general_error = outcome(lambda: general_send(general, message))  # type: ignore[arg-type]
    assert general_error is None
    assert received == expected
    assert fast.data_to_send() == []


# ------------------------------------------------------------------ the upgrade request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PLAIN_FIELDS = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]
ODD_VALUES = {
    "Host": ["", "a", "example.com:8080", "x y"],
    "Upgrade": ["WebSocket", "websocket, h2c", "h2c, websocket", "h2c", "", "web socket"],
    "Connection": ["keep-alive, Upgrade", "upgrade", "close", "", ",,UPGRADE,", "upgraded"],
    "Sec-WebSocket-Key": [
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "AAAAAAAAAAAAAAAAAAAA+/==",
        KEY[:-2],
        KEY + "A",
        "!" + KEY[1:],
        "AAAAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAAAAA",
        KEY.lower(),
    ],
    "Sec-WebSocket-Version": ["8", "13, 13", "013", "", "1 3"],
}
# Fields that change what the request asks for, or break it.
EXTRA_FIELDS = {
    "content-length-0": ("Content-Length", "0"),
    "content-length-3": ("Content-Length", "3"),
    "transfer-encoding": ("Transfer-Encoding", "chunked"),
    "extension-offer": ("Sec-WebSocket-Extensions", "permessage-deflate"),
    "control-character": ("X-Control", "a\x01b"),
}
HARMLESS_FIELDS = [
    ("Sec-WebSocket-Protocol", "chat"),
    ("Origin", "https://example.com"),
    ("X-Obs-Text", "caf\xe9"),
]
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcxyzABCXYZ"
REQUEST_LINES = [
    "GET /a?b=%20&c HTTP/1.1",
    "GET * HTTP/1.1",
    "GET / HTTP/1.0",
    "GET /chat HTTP/2.0",
    "POST /chat HTTP/1.1",
    "get /chat HTTP/1.1",
    "GET  /chat HTTP/1.1",
    "GET /ch\x7fat HTTP/1.1",
]
SERVER_HEADERS = (("Server", "framewire"),)


@st.composite
def field_names(draw: st.DrawFn, name: str) -> str:
    return draw(st.sampled_from([name, name, name.lower(), name.upper(), name.swapcase()]))


UPGRADE_FAULTS = [
    "none",
    *[f"{change}-{name}" for change in ("drop", "repeat", "odd") for name, _ in PLAIN_FIELDS],
    *EXTRA_FIELDS,
    "random-field",
    "request-line",
    "empty-line-first",
    "bare-LF",
    "malformed-line",
]


@st.composite
def upgrade_heads(draw: st.DrawFn, fault: str) -> bytes:
    """An upgrade request head (and what follows it): the plain one in any field order, names in
    any case, any spacing, perhaps a harmless extra field, and ``fault``: a field dropped,
    repeated or given an odd value, a field that changes the request (Content-Length,
    Transfer-Encoding, an extension offer, a control character), another request line, an empty
    line first, a bare LF, a malformed line."""
    fields = [(draw(field_names(name)), value) for name, value in PLAIN_FIELDS]
    fields = list(draw(st.permutations(fields)))
    if draw(st.booleans()):
        harmless = draw(st.sampled_from(HARMLESS_FIELDS))
        fields.insert(draw(st.integers(0, len(fields))), harmless)
    line, start, end = "GET /chat HTTP/1.1", "", "\r\n"
    change, _, name = fault.partition("-")
    if change in ("drop", "repeat", "odd"):
        value = dict(PLAIN_FIELDS)[name]
        index = next(i for i, field in enumerate(fields) if field[0].lower() == name.lower())
        odd = draw(st.sampled_from(ODD_VALUES[name]))
        if change == "drop":
            del fields[index]
        elif change == "repeat":
            fields.insert(
                draw(st.integers(0, len(fields))), (name, draw(st.sampled_from([value, odd])))
            )
        else:
            fields[index] = (fields[index][0], odd)
    elif fault in EXTRA_FIELDS:
        fields.insert(draw(st.integers(0, len(fields))), EXTRA_FIELDS[fault])
    elif fault == "random-field":
        extra = draw(
            st.tuples(
                st.text(alphabet=TOKEN_CHARS + " :é", max_size=8),
                st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=8),
            )
        )
        fields.insert(draw(st.integers(0, len(fields))), extra)
    elif fault == "request-line":
        line = draw(st.sampled_from(REQUEST_LINES))
    elif fault == "empty-line-first":
        start = "\r\n"
    elif fault == "bare-LF":
        end = "\n"
    lines = []
    for name, value in fields:
        space = draw(st.sampled_from([" ", " ", "", "\t", "  "]))
        lines.append(f"{name}:{space}{value}{draw(st.sampled_from(['', '', ' ', chr(9)]))}")
    if fault == "malformed-line":
        malformed = draw(st.sampled_from([" folded", "Host : a", "no colon", "X-Bare: a\rb", ""]))
        lines.insert(draw(st.integers(0, len(lines))), malformed)
    head = f"{start}{line}\r\n" + "".join(f"{text}{end}" for text in lines) + "\r\n"
    return head.encode("latin-1") + draw(st.binary(max_size=6))


@st.composite
def upgrade_cases(
    draw: st.DrawFn, fault: str, limit: tuple[str, int] | None = None
) -> tuple[bytes, HTTPLimits]:
    """An upgrade request and the limits it is parsed with: with ``limit`` (name, offset), that
    one at what the request needs plus offset and the others at their defaults; without, the
    defaults or (a third of the time) each limit at, just under or just over what it needs."""
    data = draw(upgrade_heads(fault))
    tight = limit is None and draw(st.integers(0, 2)) == 0
    head = data[: data.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in data else data
    lines = head.split(b"\r\n")
    needs = {
        "max_request_line": len(lines[0]),
        "max_head_size": len(head),
        "max_header_line": max(map(len, lines[1:]), default=0),
        "max_headers": max(len(lines) - 3, 0),
    }
    limits = {
        name: max(0, need + draw(st.sampled_from([0, -1, 1]))) if tight else default
        for (name, need), default in zip(needs.items(), (8190, 65536, 8190, 100), strict=True)
    }
    if limit is not None:
        name, offset = limit
        limits[name] = max(0, needs[name] + offset)
    return data, HTTPLimits(**limits)


def limits_of(limits: HTTPLimits) -> tuple[int, int, int, int]:
    return limits.max_request_line, limits.max_head_size, limits.max_header_line, limits.max_headers


def index_of(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in fields:
        index.setdefault(name.lower(), []).append(value)
    return index


@pytest.mark.parametrize("fault", UPGRADE_FAULTS)
@budget(35)
@given(source=st.data())
def test_a_plain_upgrade_is_what_the_full_handshake_accepts(
    upgrade_request: Any, fault: str, source: st.DataObject
) -> None:
    data, limits = source.draw(upgrade_cases(fault))
    check_plain_upgrade(upgrade_request, data, limits)


@pytest.mark.parametrize("offset", [-1, 0], ids=["one-under", "at"])
@pytest.mark.parametrize(
    "limit", ["max_request_line", "max_head_size", "max_header_line", "max_headers"]
)
@budget(20)
@given(source=st.data())
def test_a_plain_upgrade_at_each_limit_is_what_the_full_handshake_accepts(
    upgrade_request: Any, limit: str, offset: int, source: st.DataObject
) -> None:
    data, limits = source.draw(upgrade_cases("none", (limit, offset)))
    check_plain_upgrade(upgrade_request, data, limits)


def check_plain_upgrade(upgrade_request: Any, data: bytes, limits: HTTPLimits) -> None:
    """``upgrade_request`` declines ``data``, or gives what the full handshake gives."""
    result = upgrade_request(data, *limits_of(limits))
    assert result == py_parse_upgrade_request(data, *limits_of(limits))  # the twins agree
    if result is None:
        return  # declined
    target, fields, index, accept, head_length = result
    # The general path: the head parsed line by line, then checked as the server does.
    parser = RequestParser(limits)
    with field_lines_path(decline_field_lines):
        parser.receive_data(data)
    events = parser.events_received()
    assert [type(event) for event in events] == [RequestHead, EndOfMessage]
    head = events[0]
    assert isinstance(head, RequestHead)
    assert is_websocket_upgrade(head)
    try:
        accepted = accept_request(head.method, head.http_version, head.headers)
    except InvalidHandshake as exc:  # pragma: no cover - reported by the assertion
        raise AssertionError(f"the fast path accepted what the handshake refuses: {exc}") from exc
    assert target == head.target
    assert fields == head.headers.items()
    assert index == index_of(fields)
    assert accept == dict(accepted.headers)["Sec-WebSocket-Accept"].encode("ascii")
    assert data[head_length:] == parser.take_unparsed()
    # The server's plain 101 (aio/server.py) is accept_request's, made around the accept value.
    accepted = accept_request(
        head.method, head.http_version, head.headers, extra_headers=SERVER_HEADERS
    )
    before, after = plain_101_around_accept(SERVER_HEADERS)
    assert before + accept + after == accepted.response_bytes()


# ------------------------------------------------------------------ field lines and encoding

MALFORMED_FIELD_LINES = [
    b"no colon",
    b" folded",
    b"Name : v",
    b"Na me: v",
    b"N\x00: v",
    b"N: a\rb",
    b"N: a\nb",
    b"N: a\x7fb",
    b"N: \x01",
    b"",
    b":v",
    b"\xe9: v",
]
VALID_FIELD_LINES = st.builds(
    lambda name, space, value, trail: f"{name}:{space}{value}{trail}".encode("latin-1"),
    st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=8),
    st.sampled_from(["", " ", "\t", "  "]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=10),
    st.sampled_from(["", " ", "\t"]),
)


@st.composite
def field_blocks(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """Valid field lines with, half the time, one malformed or random line among them, and
    limits at, under or over what they need."""
    lines = draw(st.lists(VALID_FIELD_LINES, max_size=5))
    if draw(st.booleans()):
        odd = draw(st.sampled_from(MALFORMED_FIELD_LINES) | st.binary(max_size=12))
        lines.insert(draw(st.integers(0, len(lines))), odd)
    longest = max(map(len, lines), default=0)
    max_line = max(0, draw(st.sampled_from([8190, 8190, longest, longest + 1, longest - 1, 0])))
    max_fields = max(0, draw(st.sampled_from([100, len(lines), len(lines) - 1, len(lines) + 1])))
    return b"\r\n".join(lines), max_line, max_fields


def request_events(head: bytes, limits: HTTPLimits, parse: Callable[..., Any]) -> list[object]:
    parser = RequestParser(limits)
    with field_lines_path(parse):
        parser.receive_data(head)
    plain: list[object] = []
    for event in parser.events_received():
        if isinstance(event, RequestHead):
            plain.append((event.method, event.target, event.http_version, event.headers.items()))
        elif isinstance(event, EndOfMessage):
            plain.append(("end", event.trailers.items()))
        else:
            plain.append(event)
    return plain


@budget(300)
@given(case=field_blocks())
def test_field_lines_are_what_the_line_by_line_parser_reads(
    field_lines: Any, case: tuple[bytes, int, int]
) -> None:
    block, max_line, max_fields = case
    # HTTP/1.0: no Host needed, so the parser reports every field it read.
    head = b"GET / HTTP/1.0\r\n" + block + b"\r\n\r\n"
    start, end = 16, len(head) - 4
    result = field_lines(head, start, end, max_line, max_fields)
    assert result == py_parse_field_lines(head, start, end, max_line, max_fields)  # twins agree
    limits = HTTPLimits(max_header_line=max_line, max_headers=max_fields)
    general = request_events(head, limits, decline_field_lines)
    assert request_events(head, limits, field_lines) == general
    if result is not None:
        fields, index = result
        assert general[0] == ("GET", "/", "1.0", fields)
        assert index == index_of(fields)


def test_a_head_over_max_head_size_is_refused_however_it_is_parsed() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for over in (1, 2):
        parser = RequestParser(HTTPLimits(max_head_size=len(head) - over))
        parser.receive_data(head)
        events = parser.events_received()
        assert [(type(event), getattr(event, "http_status", None)) for event in events] == [
            (BadRequest, 431)
        ]


@pytest.fixture(scope="module")
def c_encode_fields() -> Any:
    return c_twin_or_skip("encode_fields")


ENCODABLE_FIELDS = st.lists(
    st.tuples(
        st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=6)
        | st.text(alphabet=TOKEN_CHARS + " :\r\né\u0100", max_size=6),
        st.text(alphabet="\t\x20\x7e\x80\xff abc", max_size=8)
        | st.text(alphabet="\t\x00\x1f\x20\x7e\x7f\x80\xff\u0100 abc\r\n", max_size=8),
    ),
    max_size=4,
)


@budget(200)
@given(
    fields=ENCODABLE_FIELDS
    | ENCODABLE_FIELDS.map(tuple)
    | ENCODABLE_FIELDS.map(lambda pairs: [list(pair) for pair in pairs])
)
def test_encoded_fields_are_the_twins_bytes_or_declined(c_encode_fields: Any, fields: Any) -> None:
    encoded = c_encode_fields(fields)
    if encoded is not None:
        assert encoded == py_encode_fields(fields)  # the twin neither raises nor differs


# ------------------------------------------------------------------------ one place decides

FAST_PATH_FLAGS = {"_frame_now_ok", "_whole_frames_ok"}


def flag_assignments(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(qualified name of the enclosing function, line) of each assignment to a fast-path flag,
    by any assignment statement or setattr() with the name spelled out."""

    def walk(node: ast.AST, scope: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, f"{scope}.{child.name}" if scope else child.name)
                continue
            targets: list[ast.expr] = []
            if isinstance(child, ast.Assign):
                targets = child.targets
            elif isinstance(child, ast.AugAssign | ast.AnnAssign) and child.value is not None:
                targets = [child.target]
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id == "setattr"
                and len(child.args) > 1
                and isinstance(child.args[1], ast.Constant)
                and child.args[1].value in FAST_PATH_FLAGS
            ):
                yield scope, child.lineno
            for target in targets:
                for node_in_target in ast.walk(target):
                    if (
                        isinstance(node_in_target, ast.Attribute)
                        and node_in_target.attr in FAST_PATH_FLAGS
                    ):
                        yield scope, child.lineno
            yield from walk(child, scope)

    yield from walk(tree, "")


def test_only_update_fast_paths_assigns_the_fast_path_flags() -> None:
    # The flags stand in for the connection's state; a second place that sets one would be a
    # second copy of the rule of when a fast path may run.
    source_root = Path(connection_module.__file__).parents[1]
    found = [
        (str(path.relative_to(source_root)), scope, line)
        for path in sorted(source_root.rglob("*.py"))
        for scope, line in flag_assignments(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert found, "the flags are no longer assigned: update this test"
    assert {(path, scope) for path, scope, _ in found} == {
        (str(Path("sansio", "connection.py")), "Connection._update_fast_paths")
    }, found
