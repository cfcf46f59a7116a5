"""Large binary frames unmasked in place and handed over whole, without a join.

A 1 MiB message arrives in several reads. Unmasking each read into its own bytes object and
joining them at the end costs a copy and, worse, several large short-lived allocations, which
glibc serves from fresh pages: about 40 page faults per MiB here, a third of the echo's time
(benchmarks/run.py, 1 MiB echo; counted in /proc/PID/stat). With the C accelerator, the decoder
instead unmasks a large binary frame's payload straight into one ``PayloadBuffer`` of the frame's
size, hands out read-only views of it as the pieces, and whole_payload() returns the finished
bytes object itself. Without the accelerator (``PayloadBuffer`` is None) pieces are separate
bytes objects, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from framewire.sansio.speedups import ENABLED

if TYPE_CHECKING:
    from framewire import _speedups

__all__ = ["DIRECT_MIN_SIZE", "PayloadBuffer", "whole_payload"]

# Frames at least this long are unmasked into a PayloadBuffer (smaller ones arrive in one read).
DIRECT_MIN_SIZE = 64 * 1024
# The buffer is made at the frame's full size (never above max_message_size, checked at the
# header) only once the peer has sent at least 1/64 of it in one read: a header alone does not
# make the server reserve a large buffer. Loopback reads of a 1 MiB frame bring 64 KiB or more.
DIRECT_MAX_AHEAD = 64

PayloadBuffer: type[_speedups.PayloadBuffer] | None = None
if ENABLED:
    from framewire._speedups import PayloadBuffer as CPayloadBuffer

    PayloadBuffer = CPayloadBuffer


def whole_payload(parts: Sequence[object]) -> bytes | None:
    """Return the payload as one bytes object without copying, if ``parts`` are the consecutive
    views of one complete PayloadBuffer; else None (join the parts instead)."""
    first = parts[0]
    if type(first) is not memoryview:
        return None
    owner = first.obj
    if PayloadBuffer is None or type(owner) is not PayloadBuffer:
        return None
    assert isinstance(owner, PayloadBuffer)  # for the type checker: the line above said so
    size = 0
    for part in parts:
        if type(part) is not memoryview or part.obj is not owner:
            return None
        size += len(part)
    if size != len(owner) or owner.filled != size:
        return None
    return owner.take()
