"""Type stub for the optional C accelerator; see framewire.sansio.mask for the Python twin."""

from __future__ import annotations

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte ``mask`` (RFC 6455 5.3)."""
