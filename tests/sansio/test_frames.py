"""Frame header encoding and close payload rules (sansio/frames.py)."""

from __future__ import annotations

import pytest

from framewire.exceptions import ProtocolError
from framewire.sansio.frames import (
    Opcode,
    encode_close_payload,
    encode_frame_header,
    is_valid_close_code,
    parse_close_payload,
)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_header_uses_7_16_and_64_bit_lengths(length: int, expected: bytes) -> None:
    assert encode_frame_header(Opcode.TEXT, length) == expected


def test_header_flags_and_mask() -> None:
    header = encode_frame_header(Opcode.BINARY, 3, fin=False, rsv1=True, mask=b"abcd")
    assert header == b"\x42\x83abcd"


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014])
def test_registered_codes_are_valid(code: int) -> None:
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_reserved_and_out_of_range_codes_are_invalid(code: int) -> None:
    assert not is_valid_close_code(code)
    with pytest.raises(ProtocolError, match=f"invalid close code {code}"):
        parse_close_payload(code.to_bytes(2, "big"))


@pytest.mark.parametrize("code", [3000, 3999, 4000, 4999])
def test_application_codes_are_valid(code: int) -> None:
    assert parse_close_payload(code.to_bytes(2, "big") + b"ok") == (code, "ok")


def test_close_payload_of_one_byte_is_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="1 byte") as info:
        parse_close_payload(b"\x03")
    assert info.value.close_code == 1002


def test_close_reason_with_invalid_utf8_is_1007() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
    assert info.value.close_code == 1007


def test_empty_close_payload_means_no_status() -> None:
    assert parse_close_payload(b"") == (1005, "")


def test_encode_close_payload_round_trips() -> None:
    assert parse_close_payload(encode_close_payload(1001, "bye ☃")) == (1001, "bye ☃")
    assert encode_close_payload(None) == b""


def test_encode_close_payload_rejects_misuse() -> None:
    with pytest.raises(ValueError, match="1006"):
        encode_close_payload(1006)
    with pytest.raises(ValueError, match="123"):
        encode_close_payload(1000, "x" * 124)
    with pytest.raises(ValueError, match="requires a close code"):
        encode_close_payload(None, "reason")


def test_opcode_enum_values() -> None:
    assert [int(o) for o in Opcode] == [0, 1, 2, 8, 9, 10]
