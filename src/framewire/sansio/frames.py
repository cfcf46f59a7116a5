"""WebSocket frame constants, frame encoding, and close-payload rules (RFC 6455 5 and 7).

Decoding lives in decoder.py, which turns a byte stream into frames; this module holds what both
directions share.
"""

from __future__ import annotations

import enum
import struct

from framewire.exceptions import ProtocolError

__all__ = [
    "CloseCode",
    "Opcode",
    "encode_close_payload",
    "encode_frame_header",
    "is_valid_close_code",
    "pack_header_16",
    "parse_close_payload",
    "truncate_reason",
]

BytesLike = bytes | bytearray | memoryview


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 5.2). 0x3-0x7 and 0xB-0xF are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005  # never sent on the wire
    ABNORMAL_CLOSURE = 1006  # never sent on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never sent on the wire


# RFC 6455 7.4.1 and the IANA "WebSocket Close Code Number Registry": the codes that may appear
# in a close frame. 1004, 1005, 1006 and 1015 are reserved or local-only; 3000-4999 are for
# libraries, frameworks and applications.
_SENDABLE_REGISTERED_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012})
_SENDABLE_REGISTERED_CODES |= {1013, 1014}


def is_valid_close_code(code: int) -> bool:
    """Return True if ``code`` may be sent in a close frame."""
    return code in _SENDABLE_REGISTERED_CODES or 3000 <= code <= 4999


# Two header bytes and a 16-bit payload length (connection.py frames small messages with it too).
pack_header_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def encode_frame_header(
    opcode: int, payload_length: int, *, fin: bool = True, rsv1: bool = False, mask: bytes = b""
) -> bytes:
    """Return the header of a frame (RFC 6455 5.2), mask key included when ``mask`` is given.

    Args:
        opcode: the frame's opcode.
        payload_length: the payload's length in bytes (the 7/16/64-bit form is chosen here).
        fin: whether this is the final frame of its message.
        rsv1: the RSV1 bit (set on the first frame of a permessage-deflate message).
        mask: empty for an unmasked frame, else the 4-byte masking key.
    """
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    mask_bit = 0x80 if mask else 0
    if payload_length < 126:
        header = bytes((first, mask_bit | payload_length))
    elif payload_length < 65536:
        header = pack_header_16(first, mask_bit | 126, payload_length)
    else:
        header = _PACK_64(first, mask_bit | 127, payload_length)
    return header + mask if mask else header


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """Return the payload of a close frame.

    Raises:
        ValueError: when the code may not be sent, when a reason comes without a code, or when
            the payload would exceed the 125 bytes a control frame may carry.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason requires a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 7.4)")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > 125:
        raise ValueError(f"close reason of {len(payload) - 2} bytes exceeds 123 bytes")
    return payload


def truncate_reason(reason: str, limit: int = 123) -> str:
    """Return ``reason`` cut to at most ``limit`` UTF-8 bytes, on a code point boundary: a
    close reason fits in 123 bytes (RFC 6455 5.5, 5.5.1)."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= limit:
        return reason
    return encoded[:limit].decode("utf-8", "ignore")


def parse_close_payload(payload: BytesLike) -> tuple[int, str]:
    """Return (code, reason) from a received close frame's payload.

    An empty payload gives (1005, ""), meaning no status was received.

    Raises:
        ProtocolError: a 1-byte payload or a code that may not be sent (1002), or a reason that
            is not valid UTF-8 (1007).
    """
    length = len(payload)
    if length == 0:
        return CloseCode.NO_STATUS_RECEIVED, ""
    if length == 1:
        raise ProtocolError("close frame payload of 1 byte (a close code needs 2)")
    code = (payload[0] << 8) | payload[1]
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    if length == 2:
        return code, ""
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("close reason is not valid UTF-8", close_code=1007) from exc
    return code, reason
