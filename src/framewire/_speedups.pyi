"""Type stub for the optional C accelerator; see framewire.sansio.mask for the Python twin."""

from __future__ import annotations

from framewire.aio.inbox import PyInbox
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

class PayloadBuffer:
    """One large frame's payload, unmasked in place (see framewire.sansio.payload_buffer)."""

    filled: int
    def __init__(self, length: int) -> None: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def unmask_into(
        self, data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /
    ) -> None:
        """Unmask ``data``, the next bytes of the payload, into the buffer."""
    def take(self) -> bytes:
        """Return the complete payload without copying it."""

class Inbox(PyInbox):
    """The C twin of framewire.aio.inbox.PyInbox."""
