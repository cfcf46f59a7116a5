"""FrameDecoder: frames from a byte stream split anywhere (sansio/decoder.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio.decoder import FrameDecoder, FramePiece, parse_control_frame
from framewire.sansio.frames import Opcode
from tests.sansio.ws_helpers import byte_by_byte, frame, split_at


def decode(
    chunks: list[bytes], *, expect_masked: bool = True, **kwargs: object
) -> list[FramePiece]:
    decoder = FrameDecoder(expect_masked=expect_masked, **kwargs)  # type: ignore[arg-type]
    out: list[FramePiece] = []
    for chunk in chunks:
        decoder.feed(chunk, out)
    return out


def frames_of(pieces: list[FramePiece]) -> list[tuple[int, bool, bool, bytes]]:
    """Join pieces back into (opcode, fin, rsv1, payload) per frame."""
    frames: list[tuple[int, bool, bool, bytes]] = []
    payload = b""
    for piece in pieces:
        payload += bytes(piece.data)
        if piece.last:
            frames.append((piece.opcode, piece.fin, piece.rsv1, payload))
            payload = b""
    return frames


def test_two_frames_of_1500_and_2000_bytes_in_2048_byte_reads() -> None:
    data = frame(Opcode.BINARY, b"a" * 1500) + frame(Opcode.BINARY, b"b" * 2000)
    chunks = [data[i : i + 2048] for i in range(0, len(data), 2048)]
    assert frames_of(decode(chunks)) == [
        (Opcode.BINARY, True, False, b"a" * 1500),
        (Opcode.BINARY, True, False, b"b" * 2000),
    ]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_length_class_whole_and_byte_by_byte(length: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    data = frame(Opcode.BINARY, payload)
    expected = [(Opcode.BINARY, True, False, payload)]
    assert frames_of(decode([data])) == expected
    if length <= 1000:
        assert frames_of(decode(byte_by_byte(data))) == expected


def test_unmasked_frames_decode_on_the_client_side() -> None:
    data = frame(Opcode.TEXT, b"hello", mask=None)
    assert frames_of(decode([data], expect_masked=False)) == [(1, True, False, b"hello")]


def test_large_unmasked_payload_is_a_memoryview_not_a_copy() -> None:
    data = frame(Opcode.BINARY, b"x" * 100_000, mask=None)
    (piece,) = decode([data], expect_masked=False)
    assert isinstance(piece.data, memoryview)
    assert piece.data.readonly


def test_payload_is_handed_out_as_it_arrives() -> None:
    data = frame(Opcode.BINARY, b"0123456789")
    pieces = decode([data[:8], data[8:11], data[11:]])
    assert [bytes(p.data) for p in pieces] == [b"01", b"234", b"56789"]
    assert [(p.first, p.last) for p in pieces] == [(True, False), (False, False), (False, True)]


def test_control_frame_split_across_chunks_is_delivered_whole() -> None:
    data = frame(Opcode.PING, b"ping payload")
    pieces = decode(byte_by_byte(data))
    assert len(pieces) == 1
    assert bytes(pieces[0].data) == b"ping payload"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (frame(Opcode.TEXT, b"x", mask=None), "unmasked frame from client"),
        (frame(Opcode.TEXT, b"x", rsv1=True), "RSV1"),
        (frame(Opcode.TEXT, b"x", rsv2=True), "RSV2"),
        (frame(Opcode.TEXT, b"x", rsv3=True), "RSV3"),
        (frame(3, b"x"), "reserved opcode 0x3"),
        (frame(0xB, b"x"), "reserved opcode 0xB"),
        (frame(Opcode.PING, b"x", fin=False), "fragmented control frame"),
        (frame(Opcode.PING, b"x" * 126), "over 125 bytes"),
        (frame(Opcode.CLOSE, b"\x03\xe8" + b"x" * 124), "over 125 bytes"),
        (b"\x82\xff\x80" + b"\x00" * 7 + b"abcd", "most significant bit"),
    ],
)
def test_framing_errors_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        decode([data])
    assert info.value.close_code == 1002


def test_masked_frame_from_server_is_rejected_by_client() -> None:
    with pytest.raises(ProtocolError, match="masked frame from server"):
        decode([frame(Opcode.TEXT, b"x")], expect_masked=False)


def test_bad_header_fails_on_its_first_two_bytes() -> None:
    # A 64-bit length header is incomplete, but RSV2 is already certain.
    with pytest.raises(ProtocolError, match="RSV2"):
        decode([b"\xa2\xff"])


def test_frame_over_max_frame_size_fails_at_the_header() -> None:
    header = frame(Opcode.BINARY, b"x" * 2000)[:8]  # header + mask only, no payload
    with pytest.raises(PayloadTooBig, match="2000 bytes exceeds max_message_size=1000"):
        decode([header], max_frame_size=1000)


def test_pieces_before_an_error_are_kept() -> None:
    decoder = FrameDecoder(expect_masked=True)
    out: list[FramePiece] = []
    with pytest.raises(ProtocolError):
        decoder.feed(frame(Opcode.TEXT, b"ok") + frame(3, b""), out)
    assert frames_of(out) == [(1, True, False, b"ok")]


def test_pending_bytes_stay_bounded_when_fed_one_byte_at_a_time() -> None:
    decoder = FrameDecoder(expect_masked=True)
    out: list[FramePiece] = []
    data = frame(Opcode.BINARY, b"z" * 100_000)
    for index in range(len(data)):
        decoder.feed(data[index : index + 1], out)
        assert len(decoder._pending) <= 14
    assert sum(len(p.data) for p in out) == 100_000


frame_strategy = st.builds(
    lambda opcode, payload, fin, masked: (opcode, payload, fin, masked),
    st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION, Opcode.PING, Opcode.PONG]),
    st.one_of(
        st.binary(max_size=130),
        st.integers(min_value=126, max_value=70_000).map(lambda n: b"\x5a" * n),
    ),
    st.booleans(),
    st.booleans(),
)


@given(
    frames=st.lists(frame_strategy, min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=20),
)
def test_any_split_decodes_to_the_same_frames(
    frames: list[tuple[int, bytes, bool, bool]], cuts: list[int]
) -> None:
    for masked in (True, False):
        encoded, expected = b"", []
        for opcode, payload, fin, _ in frames:
            if opcode >= 8:
                payload, fin = payload[:125], True
            encoded += frame(opcode, payload, fin=fin, mask=b"\x01\x02\x03\x04" if masked else None)
            expected.append((opcode, fin, False, payload))
        whole = frames_of(decode([encoded], expect_masked=masked))
        split = frames_of(decode(split_at(encoded, cuts), expect_masked=masked))
        assert whole == split == expected


def _piece_fields(piece: FramePiece) -> tuple[object, ...]:
    return (
        piece.opcode,
        piece.fin,
        piece.rsv1,
        bytes(piece.data),
        piece.first,
        piece.last,
        piece.frame_length,
    )


_control_frames = st.builds(
    lambda opcode, payload, fin, rsv, masked: frame(
        opcode, payload, fin=fin, rsv1=rsv, mask=b"\x01\x02\x03\x04" if masked else None
    ),
    st.sampled_from([0x1, 0x2, 0x8, 0x9, 0xA, 0xB]),
    st.binary(max_size=130),
    st.sampled_from([True, True, True, False]),  # fin: mostly whole frames, so that many
    st.sampled_from([False, False, False, True]),  # rsv1: are taken and compared
    st.booleans(),
)


@settings(max_examples=1000)
@given(
    data=_control_frames | st.binary(max_size=12),
    tail=st.sampled_from([b"", b"\x88"]),
    expect_masked=st.booleans(),
)
def test_parse_control_frame_takes_only_what_a_fresh_decoder_hands_out_whole(
    data: bytes, tail: bytes, expect_masked: bool
) -> None:
    data += tail
    piece = parse_control_frame(data, expect_masked)
    if piece is None:
        return
    decoded: list[FramePiece] = []
    FrameDecoder(expect_masked=expect_masked).feed(data, decoded)  # raises if it would reject
    assert [_piece_fields(piece)] == [_piece_fields(p) for p in decoded]
    assert piece.opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG)


def test_parse_control_frame_takes_a_whole_close_ping_or_pong_and_nothing_else() -> None:
    mask = b"\x01\x02\x03\x04"
    close = parse_control_frame(frame(Opcode.CLOSE, b"\x03\xe8", mask=mask), True)
    assert close is not None and (close.opcode, bytes(close.data)) == (Opcode.CLOSE, b"\x03\xe8")
    ping = parse_control_frame(memoryview(frame(Opcode.PING, b"p", mask=None)), False)
    assert ping is not None and (ping.opcode, bytes(ping.data)) == (Opcode.PING, b"p")
    pong = parse_control_frame(frame(Opcode.PONG, b"x" * 125, mask=mask), True)
    assert pong is not None and bytes(pong.data) == b"x" * 125
    whole = frame(Opcode.PING, b"p", mask=mask)
    for declined in [
        whole[:-1],  # incomplete
        whole + whole,  # more than one frame
        frame(Opcode.PING, b"p", mask=None),  # unmasked where masking is expected
        frame(Opcode.PING, b"p", mask=mask, rsv1=True),
        frame(Opcode.PING, b"p", mask=mask, fin=False),
        frame(Opcode.BINARY, b"p", mask=mask),
        frame(0xB, b"p", mask=mask),  # reserved control opcode
        # A 16-bit length marker (126), even where the bytes would add up to 6 + 126.
        bytes([0x89, 0x80 | 126]) + bytes(126),
    ]:
        assert parse_control_frame(declined, True) is None
    assert parse_control_frame(bytes([0x89, 126]) + bytes(126), False) is None
