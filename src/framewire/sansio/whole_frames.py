"""The receive fast path: whole, simple data frames straight to message pieces.

Nearly every read of a busy connection holds only complete, unfragmented, uncompressed text or
binary frames. parse_whole_frames() turns those at the start of a buffer into message pieces in
one pass, and stops at the first frame that needs anything else (a control frame, a fragment,
RSV bits, a 64-bit length, an incomplete frame, a frame over the size limit, invalid UTF-8): the
general decoder then takes over from there, sees those bytes for the first time, and reports any
error itself. Both implementations below behave identically (tests/sansio/test_whole_frames.py);
the C one is used when framewire._speedups was built and FRAMEWIRE_NO_SPEEDUPS is unset.
"""

from __future__ import annotations

from collections.abc import Callable

from framewire.sansio.mask import apply_mask
from framewire.sansio.speedups import ENABLED

__all__ = ["SPEEDUPS", "parse_whole_frames", "py_parse_whole_frames"]

BytesLike = bytes | bytearray | memoryview
Piece = tuple[str | bytes, bool, bool]


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
    end = len(data)
    position = 0
    header_length = 6 if masked else 2
    while end - position >= header_length:
        first_byte = data[position]
        if first_byte != 0x81 and first_byte != 0x82:
            break
        second_byte = data[position + 1]
        if bool(second_byte & 0x80) is not masked:
            break
        length = second_byte & 0x7F
        start = position + header_length
        if length >= 126:
            if length == 127 or end - position < header_length + 2:
                break
            length = (data[position + 2] << 8) | data[position + 3]
            start += 2
        stop = start + length
        if stop > end or (max_size is not None and length > max_size):
            break
        if masked:
            payload = apply_mask(data[start:stop], data[start - 4 : start])
        else:
            payload = bytes(data[start:stop])
        if first_byte == 0x81:
            try:
                out.append((payload.decode("utf-8"), True, True))
            except UnicodeDecodeError:
                break
        else:
            out.append((payload, False, True))
        position = stop
    return position


ParseWholeFrames = Callable[[BytesLike, bool, "int | None", list[Piece]], int]
parse_whole_frames: ParseWholeFrames = py_parse_whole_frames
if ENABLED:
    from framewire._speedups import parse_whole_frames as c_parse_whole_frames

    parse_whole_frames = c_parse_whole_frames
SPEEDUPS = parse_whole_frames is not py_parse_whole_frames
