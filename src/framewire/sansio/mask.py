"""WebSocket payload masking (RFC 6455 5.3), with the optional C accelerator.

The C twin of py_apply_mask (framewire._speedups.apply_mask) is used when sansio/speedups.py
says the extension is ENABLED. Set FRAMEWIRE_NO_SPEEDUPS=1 to use the pure-Python path even when
the extension was built.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from framewire.sansio.speedups import ENABLED

__all__ = ["SPEEDUPS", "MaskSource", "apply_mask", "py_apply_mask"]

BytesLike = bytes | bytearray | memoryview


def py_apply_mask(data: BytesLike, mask: BytesLike) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte ``mask`` (RFC 6455 5.3).

    Pure Python without a per-byte loop: the payload and the repeated mask become two big
    integers and are XOR-ed at once, which runs at hundreds of MB/s in CPython.
    """
    # Check the mask first so that empty data fails like the C version does.
    if len(mask) != 4:
        raise ValueError(f"mask must be 4 bytes, got {len(mask)}")
    if type(mask) is not bytes:
        mask = bytes(mask)  # a view of a receive buffer cannot be repeated with *
    # A memoryview of another format (e.g. "I") has len() in items: count bytes instead.
    length = data.nbytes if isinstance(data, memoryview) else len(data)
    if length == 0:
        return b""
    if length >= _TRANSLATE_THRESHOLD:
        return _translate_mask(data, mask, length)
    repeated = (mask * ((length >> 2) + 1))[:length]
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")
    return value.to_bytes(length, "little")


# Above this size, four strided bytes.translate() passes beat the big-integer XOR by about 2x
# (benchmarks/mask_bench.py: 1.7 ms against 3.8 ms per MiB here); below it the integer wins.
_TRANSLATE_THRESHOLD = 64 * 1024
_XOR_TABLES: list[bytes | None] = [None] * 256


def _xor_table(key: int) -> bytes:
    table = _XOR_TABLES[key]
    if table is None:
        table = _XOR_TABLES[key] = bytes(value ^ key for value in range(256))
    return table


def _translate_mask(data: BytesLike, mask: bytes, length: int) -> bytes:
    """XOR every fourth byte with one mask byte, through a 256-byte translation table."""
    source = data if isinstance(data, bytes | bytearray) else memoryview(data).cast("B").tobytes()
    output = bytearray(length)
    for offset in range(4):
        output[offset::4] = source[offset::4].translate(_xor_table(mask[offset]))
    return bytes(output)


class MaskSource:
    """Hands out fresh 4-byte masking keys from os.urandom, fetched in batches.

    RFC 6455 5.3: each frame a client sends gets a new, unpredictable masking key. Shaped for
    speed: one urandom call per 256 frames instead of one per frame.
    """

    __slots__ = ("_offset", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def next_mask(self) -> bytes:
        """Return the next masking key."""
        if self._offset >= len(self._pool):
            self._pool = os.urandom(1024)
            self._offset = 0
        mask = self._pool[self._offset : self._offset + 4]
        self._offset += 4
        return mask


apply_mask: Callable[[BytesLike, BytesLike], bytes] = py_apply_mask
if ENABLED:
    from framewire._speedups import apply_mask as c_apply_mask

    apply_mask = c_apply_mask
SPEEDUPS = apply_mask is not py_apply_mask
