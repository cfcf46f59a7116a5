"""FrameDecoder: a byte stream split anywhere -> frame pieces, in one pass.

Strategy: the decoder never holds payload of a data frame. A data frame's payload is handed out
as soon as bytes of it arrive, as ``FramePiece`` objects (the first piece carries the header,
the last one says the frame is complete), so a 1 GiB frame costs no more memory than the chunk
being fed. Only two things are ever kept between calls: an incomplete header (at most 14 bytes)
and an incomplete control frame (at most 125 bytes of payload), since control frames are always
delivered whole. Each byte is looked at once, whatever the split.
"""

from __future__ import annotations

from typing import Any

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio.frames import Opcode
from framewire.sansio.mask import apply_mask
from framewire.sansio.payload_buffer import DIRECT_MAX_AHEAD, DIRECT_MIN_SIZE, PayloadBuffer

__all__ = ["FrameDecoder", "FramePiece", "parse_control_frame"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_BINARY = Opcode.BINARY

BytesLike = bytes | bytearray | memoryview

_RESERVED_OPCODES = frozenset({3, 4, 5, 6, 7, 11, 12, 13, 14, 15})
# Payload pieces at least this long are handed out as memoryviews over the received chunk
# instead of copies (unmasked frames only: unmasking makes a new buffer anyway).
_VIEW_THRESHOLD = 4096


class FramePiece:
    """A frame, or a piece of a data frame's payload, as decoded from the stream.

    Attributes:
        opcode: the frame's opcode (int; see frames.Opcode).
        fin: the frame's FIN bit.
        rsv1: the frame's RSV1 bit.
        data: this piece of the (unmasked) payload.
        first: this piece starts the frame (its header was just read).
        last: this piece ends the frame.
        frame_length: the payload length declared in the frame's header.
    """

    __slots__ = ("data", "fin", "first", "frame_length", "last", "opcode", "rsv1")

    def __init__(
        self,
        opcode: int,
        fin: bool,
        rsv1: bool,
        data: bytes | memoryview,
        first: bool,
        last: bool,
        frame_length: int,
    ) -> None:
        self.opcode = opcode
        self.fin = fin
        self.rsv1 = rsv1
        self.data = data
        self.first = first
        self.last = last
        self.frame_length = frame_length

    def __repr__(self) -> str:
        return (
            f"FramePiece(opcode={self.opcode}, fin={self.fin}, rsv1={self.rsv1}, "
            f"data={bytes(self.data)!r}, first={self.first}, last={self.last})"
        )


def parse_control_frame(data: BytesLike, expect_masked: bool) -> FramePiece | None:
    """The one frame that is all of ``data``, when it is a whole control frame; else None.

    What a fresh FrameDecoder would hand out for the same bytes, without making one: a connection
    whose first and last frame is the peer's close frame needs no decoder (benchmarks/run.py,
    handshakes per second). None for anything else, including any frame the decoder would
    reject, which then sees the bytes and reports the error itself.
    """
    end = len(data)
    if end < 2 or data[0] not in _WHOLE_CONTROL_FIRST_BYTES:
        return None
    second_byte = data[1]
    length = second_byte & 0x7F
    if second_byte & 0x80:
        if not expect_masked or end != 6 + length or length > 125:
            return None
        payload = apply_mask(data[6:], data[2:6])
    else:
        if expect_masked or end != 2 + length or length > 125:
            return None
        payload = bytes(data[2:])
    return FramePiece(data[0] & 0x0F, True, False, payload, True, True, length)


# FIN set, no RSV bit, and the opcode of a close, ping or pong frame.
_WHOLE_CONTROL_FIRST_BYTES = frozenset({0x88, 0x89, 0x8A})


class FrameDecoder:
    """Decode frames from a stream of byte chunks of any size.

    Args:
        expect_masked: True on a server (RFC 6455 5.1: clients must mask, servers must not).
        allow_rsv1: True when an extension that uses RSV1 (permessage-deflate) was negotiated.
        max_frame_size: largest payload of an uncompressed data frame; None for no limit.
    """

    __slots__ = (
        "_direct",
        "_fin",
        "_frame_length",
        "_mask",
        "_opcode",
        "_pending",
        "_received",
        "_remaining",
        "_rsv1",
        "allow_rsv1",
        "expect_masked",
        "max_frame_size",
    )

    def __init__(
        self, *, expect_masked: bool, allow_rsv1: bool = False, max_frame_size: int | None = None
    ) -> None:
        self.expect_masked = expect_masked
        self.allow_rsv1 = allow_rsv1
        self.max_frame_size = max_frame_size
        self._pending = b""  # an incomplete header, or an incomplete control frame
        # The data frame whose payload is being received, if any.
        self._remaining = 0
        self._opcode = 0
        self._fin = False
        self._rsv1 = False
        self._mask = b""
        self._received = 0
        self._frame_length = 0
        self._direct: Any = None  # the PayloadBuffer the current frame is unmasked into

    def feed(self, data: BytesLike, out: list[FramePiece]) -> None:
        """Decode ``data``, appending every frame piece it completes to ``out``.

        Pieces decoded before an error are appended before the error is raised.

        Raises:
            ProtocolError: the stream broke RFC 6455 framing (close_code says which code).
        """
        if self._pending:
            data = self._pending + bytes(data)
            self._pending = b""
        elif not isinstance(data, bytes):
            # Unmasked payload is handed out as views of the input: they must outlive it. A
            # masked payload is unmasked into new bytes, so a server reads a (reused) buffer
            # without copying it first: one copy less per MiB (benchmarks/run.py, 1 MiB echo).
            view = memoryview(data)
            plain_view = self.expect_masked and view.ndim == 1 and view.itemsize == 1
            data = view if plain_view else bytes(data)
        end = len(data)
        pos = 0
        if self._remaining:
            pos = self._payload_piece(data, 0, end, out)
        while pos < end:
            if end - pos < 2:
                self._pending = bytes(data[pos:])
                return
            first_byte = data[pos]
            second_byte = data[pos + 1]
            length = second_byte & 0x7F
            header_length = 2
            if length == 126:
                header_length = 4
            elif length == 127:
                header_length = 10
            masked = second_byte & 0x80
            if masked:
                header_length += 4
            if end - pos < header_length:
                self._check_first_bytes(first_byte, second_byte)
                self._pending = bytes(data[pos:])
                return
            opcode = first_byte & 0x0F
            self._check_first_bytes(first_byte, second_byte)
            if length == 126:
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == 127:
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if length >> 63:
                    raise ProtocolError("64-bit payload length with the most significant bit set")
            mask = bytes(data[pos + header_length - 4 : pos + header_length]) if masked else b""
            pos += header_length
            fin = bool(first_byte & 0x80)
            if opcode >= 8:
                # RFC 6455 5.5: control frames are delivered whole, even when split.
                if end - pos < length:
                    self._pending = bytes(data[pos - header_length :])
                    return
                payload = data[pos : pos + length]
                if mask:
                    payload = apply_mask(payload, mask)
                out.append(FramePiece(opcode, fin, False, payload, True, True, length))
                pos += length
                continue
            rsv1 = bool(first_byte & 0x40)
            if self.max_frame_size is not None and length > self.max_frame_size and not rsv1:
                raise PayloadTooBig(
                    f"frame of {length} bytes exceeds max_message_size={self.max_frame_size}"
                )
            self._opcode = opcode
            self._fin = fin
            self._rsv1 = rsv1
            self._mask = mask
            self._received = 0
            self._frame_length = length
            self._remaining = length
            if length == 0:
                out.append(FramePiece(opcode, fin, rsv1, b"", True, True, 0))
            elif pos < end:
                pos = self._payload_piece(data, pos, end, out)

    def _check_first_bytes(self, first_byte: int, second_byte: int) -> None:
        """Validate what the first two header bytes alone decide; raise ProtocolError."""
        if first_byte & 0x30:
            bit = "RSV2" if first_byte & 0x20 else "RSV3"
            raise ProtocolError(f"reserved bit {bit} set without a negotiated extension")
        opcode = first_byte & 0x0F
        if opcode in _RESERVED_OPCODES:
            raise ProtocolError(f"reserved opcode 0x{opcode:X}")
        if first_byte & 0x40:
            if opcode >= 8:
                raise ProtocolError("RSV1 set on a control frame")
            if not self.allow_rsv1:
                raise ProtocolError("reserved bit RSV1 set without a negotiated extension")
        masked = bool(second_byte & 0x80)
        if masked != self.expect_masked:
            if self.expect_masked:
                raise ProtocolError("unmasked frame from client (RFC 6455 5.1)")
            raise ProtocolError("masked frame from server (RFC 6455 5.1)")
        if opcode >= 8:
            if not first_byte & 0x80:
                raise ProtocolError("fragmented control frame (RFC 6455 5.5)")
            if second_byte & 0x7F > 125:
                raise ProtocolError("control frame payload over 125 bytes (RFC 6455 5.5)")

    def _payload_piece(
        self, data: bytes | memoryview, pos: int, end: int, out: list[FramePiece]
    ) -> int:
        """Hand out the next piece of the current data frame's payload; return the new pos."""
        take = min(self._remaining, end - pos)
        first = self._received == 0
        mask = self._mask
        piece: bytes | memoryview
        if mask:
            direct = self._direct
            if (
                first
                and take * DIRECT_MAX_AHEAD >= self._frame_length >= DIRECT_MIN_SIZE
                and self._opcode == _BINARY
                and self._fin
                and not self._rsv1
                and PayloadBuffer is not None
            ):
                direct = self._direct = PayloadBuffer(self._frame_length)
            if direct is not None:
                start = direct.filled
                direct.unmask_into(memoryview(data)[pos : pos + take], mask)
                piece = memoryview(direct)[start : start + take]
                if take == self._remaining:
                    self._direct = None
            else:
                offset = self._received & 3
                if offset:
                    mask = mask[offset:] + mask[:offset]
                piece = apply_mask(memoryview(data)[pos : pos + take], mask)
        elif take >= _VIEW_THRESHOLD:
            piece = memoryview(data)[pos : pos + take].toreadonly()
        else:
            piece = data[pos : pos + take] if (pos or take != end) else data
        self._received += take
        self._remaining -= take
        out.append(
            FramePiece(
                self._opcode,
                self._fin,
                self._rsv1,
                piece,
                first,
                self._remaining == 0,
                self._frame_length,
            )
        )
        return pos + take
