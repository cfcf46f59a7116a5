"""Type stub for the optional C accelerator; see framewire.sansio.mask for the Python twin."""

from __future__ import annotations

from framewire.aio.wakeup import PyWakeup

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte ``mask`` (RFC 6455 5.3)."""

def parse_whole_frames(
    data: bytes | bytearray | memoryview,
    masked: bool,
    max_size: int | None,
    out: list[tuple[str | bytes, bool, bool]],
    /,
) -> int:
    """Append (payload, is_text, True) per whole simple frame at the start of ``data``; return
    the bytes they took (see framewire.sansio.whole_frames)."""

class Wakeup(PyWakeup):
    """The C twin of framewire.aio.wakeup.PyWakeup."""
