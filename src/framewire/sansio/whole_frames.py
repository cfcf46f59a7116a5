"""The receive fast path: whole, simple data frames straight to message pieces.

Nearly every read of a busy connection holds only complete, unfragmented, uncompressed text or
binary frames. parse_whole_frames() turns those at the start of a buffer into message pieces in
one pass, and stops at the first frame that needs anything else (a control frame, a fragment,
RSV bits, a 64-bit length, an incomplete frame, a frame over the size limit, invalid UTF-8): the
general decoder then takes over from there, sees those bytes for the first time, and reports any
error itself. With permessage-deflate, take_compressed_messages() does the same for whole
compressed messages of one frame (Python only: zlib's time dominates them). Both versions of
parse_whole_frames() behave identically (tests/sansio/test_whole_frames.py); the C one is used
when framewire._speedups was built and FRAMEWIRE_NO_SPEEDUPS is unset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from framewire.sansio.mask import apply_mask
from framewire.sansio.speedups import ENABLED

if TYPE_CHECKING:
    from framewire.sansio.deflate import PerMessageDeflate

__all__ = [
    "SPEEDUPS",
    "parse_whole_frames",
    "py_parse_whole_frames",
    "take_compressed_messages",
    "whole_frame_at",
]

BytesLike = bytes | bytearray | memoryview
Piece = tuple[str | bytes, bool, bool]


def whole_frame_at(data: BytesLike, position: int, masked: bool) -> tuple[int, int, int] | None:
    """Return (first byte, payload start, payload end) of the frame at ``position`` when all
    of it is in ``data`` with a 7- or 16-bit length and the mask bit ``masked`` asks for; else
    None. The first byte (FIN, RSV bits, opcode) is the caller's to check."""
    header_length = 6 if masked else 2
    end = len(data)
    if end - position < header_length:
        return None
    second_byte = data[position + 1]
    if bool(second_byte & 0x80) is not masked:
        return None
    length = second_byte & 0x7F
    start = position + header_length
    if length >= 126:
        if length == 127 or end - position < header_length + 2:
            return None
        length = (data[position + 2] << 8) | data[position + 3]
        start += 2
    stop = start + length
    return None if stop > end else (data[position], start, stop)


def py_parse_whole_frames(
    data: BytesLike, masked: bool, max_size: int | None, out: list[Piece]
) -> int:
    """Append ``(payload, is_text, True)`` for each whole simple frame at the start of ``data``.

    Args:
        data: received bytes; a view of a reused buffer is fine, nothing refers to it after.
        masked: True on the server side (client frames must be masked), False on the client.
        max_size: the largest payload accepted here, or None for no limit.
        out: the list the pieces are appended to: ``str`` for text, ``bytes`` for binary.

    Returns:
        How many bytes of ``data`` the appended frames took.
    """
    position = 0
    while (frame := whole_frame_at(data, position, masked)) is not None:
        first_byte, start, stop = frame
        if first_byte != 0x81 and first_byte != 0x82:
            break
        if max_size is not None and stop - start > max_size:
            break
        payload = _payload(data, start, stop, masked)
        if first_byte == 0x81:
            try:
                out.append((payload.decode("utf-8"), True, True))
            except UnicodeDecodeError:
                break
        else:
            out.append((payload, False, True))
        position = stop
    return position


def take_compressed_messages(
    data: BytesLike,
    position: int,
    masked: bool,
    deflate: PerMessageDeflate,
    max_size: int | None,
    out: list[Piece],
) -> int:
    """Append ``(message, is_text, True)`` for each whole compressed one-frame message from
    ``position`` on, inflated by ``deflate.inflate_whole()``; return where they end.

    Stops at anything else, and at a frame inflate_whole() leaves to the general path, which
    then finds the inflater as it was.
    """
    while (frame := whole_frame_at(data, position, masked)) is not None:
        first_byte, start, stop = frame
        if first_byte != 0xC1 and first_byte != 0xC2:  # FIN, RSV1, text or binary
            break
        is_text = first_byte == 0xC1
        message = deflate.inflate_whole(_payload(data, start, stop, masked), max_size, is_text)
        if message is None:
            break
        out.append((message, is_text, True))
        position = stop
    return position


def _payload(data: BytesLike, start: int, stop: int, masked: bool) -> bytes:
    if masked:
        return apply_mask(data[start:stop], data[start - 4 : start])
    return bytes(data[start:stop])


ParseWholeFrames = Callable[[BytesLike, bool, "int | None", list[Piece]], int]
parse_whole_frames: ParseWholeFrames = py_parse_whole_frames
if ENABLED:
    from framewire._speedups import parse_whole_frames as c_parse_whole_frames

    parse_whole_frames = c_parse_whole_frames
SPEEDUPS = parse_whole_frames is not py_parse_whole_frames
