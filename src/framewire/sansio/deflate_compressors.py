"""The compressors of permessage-deflate messages, and the process's idle ones.

A message compressed without context takeover borrows the process's idle compressor for its
settings (library, level, window, memLevel) and gives it back after a full flush, which makes
zlib forget the message: deflate.py's module docstring says why that is fast. ISA-L (the
optional isal package) compresses those messages when DeflateConfig.backend allows it.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from collections.abc import Callable
from typing import Protocol

from framewire.sansio.deflate_negotiation import DeflateConfig
from framewire.sansio.speedups import DISABLED as SPEEDUPS_DISABLED

__all__ = [
    "Compressor",
    "CompressorKey",
    "borrow_compressor",
    "compression_library",
    "compressor_key",
    "finish_alone",
    "new_compressor",
]

BytesLike = bytes | bytearray | memoryview

# ISA-L has levels 0..3 (3 its best); its 0 is not "stored", so zlib's level 0 stays with zlib.
_ISAL_LEVELS = (0, 1, 2, 3, 3, 3, 3, 3, 3, 3)


class Compressor(Protocol):
    """What zlib's and ISA-L's compress objects both offer."""

    def compress(self, data: BytesLike, /) -> bytes:
        """Return the compressed bytes ready so far."""

    def flush(self, mode: int = ..., /) -> bytes:
        """Return the rest, ending as ``mode`` says (Z_SYNC_FLUSH, Z_FULL_FLUSH)."""


# (library, level, zlib window bits, memLevel) of a compressor.
CompressorKey = tuple[str, int, int, int]

# The idle compressor for each key, used by messages compressed without context takeover.
_IDLE_COMPRESSORS: dict[CompressorKey, Compressor] = {}


@functools.cache
def _isal_compressobj() -> Callable[..., Compressor] | None:
    """Return ISA-L's compressobj (the optional isal package), or None when not installed."""
    try:
        module = importlib.import_module("isal.isal_zlib")
    except ImportError:
        return None
    compressobj: Callable[..., Compressor] = module.compressobj
    return compressobj


def compression_library(
    config: DeflateConfig, window_bits: int, *, no_context_takeover: bool
) -> str:
    """Return "isal" or "zlib": what compresses messages with these settings.

    ISA-L is used only without context takeover (its state is too big to keep per connection),
    with a window of 9 bits or more (zlib's 9-bit trick for 8 does not hold for it) and a level
    above 0; with backend "auto" also only when FRAMEWIRE_NO_SPEEDUPS is not set.
    """
    if (
        config.backend == "zlib"
        or (config.backend == "auto" and SPEEDUPS_DISABLED)
        or not no_context_takeover
        or window_bits < 9
        or config.compress_level == 0
        or _isal_compressobj() is None
    ):
        return "zlib"
    return "isal"


def compressor_key(
    config: DeflateConfig, window_bits: int, *, no_context_takeover: bool
) -> CompressorKey:
    """Return the key of the compressor a side with these settings uses."""
    library = compression_library(config, window_bits, no_context_takeover=no_context_takeover)
    # zlib refuses to deflate with a raw 8-bit window, but a 9-bit zlib compressor never refers
    # further back than 512 - 262 = 250 bytes (MAX_DIST in zlib's deflate.c: the window minus
    # the lookahead), so its streams are valid for a 256-byte window: 8 is honoured with 9.
    return library, config.compress_level, max(window_bits, 9), config.mem_level


def new_compressor(key: CompressorKey) -> Compressor:
    """Return a raw-deflate compressor (negative window bits: no zlib header) for ``key``."""
    library, level, window_bits, mem_level = key
    if library == "isal":
        isal_compressobj = _isal_compressobj()
        assert isal_compressobj is not None
        # memLevel is left at ISA-L's default: it sizes ISA-L's own buffers, not zlib's hash.
        return isal_compressobj(_ISAL_LEVELS[level], zlib.DEFLATED, -window_bits)
    return zlib.compressobj(level, zlib.DEFLATED, -window_bits, mem_level)


def borrow_compressor(key: CompressorKey) -> Compressor:
    """Take the idle compressor for ``key`` (made if none is idle); give it back when done."""
    compressor = _IDLE_COMPRESSORS.pop(key, None)
    return new_compressor(key) if compressor is None else compressor


def finish_alone(compressor: Compressor, key: CompressorKey, data: BytesLike) -> bytes:
    """Compress a message's last data with a borrowed compressor, forget it, give it back."""
    # A full flush writes the same bytes as a sync flush and also clears zlib's hash table, so
    # the next message cannot refer back to this one: it compresses exactly as a fresh
    # compressor would (RFC 7692 7.1.1.1 is kept, and output is the same for every borrower).
    output = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    _IDLE_COMPRESSORS[key] = compressor
    return output
