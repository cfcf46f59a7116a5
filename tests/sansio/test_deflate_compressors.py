"""sansio/deflate_compressors.py: which library compresses, and the process's idle compressors."""

from __future__ import annotations

import importlib.util
import zlib

import pytest

from framewire.sansio import deflate_compressors
from framewire.sansio.deflate_compressors import (
    borrow_compressor,
    compression_library,
    compressor_key,
    finish_alone,
    new_compressor,
)
from framewire.sansio.deflate_negotiation import DeflateConfig

CONFIG = DeflateConfig()
ZLIB_ONLY = DeflateConfig(backend="zlib")
HAVE_ISAL = importlib.util.find_spec("isal") is not None
MESSAGE = b'{"type": "message", "text": "hello, hello, hello"}' * 20


def fresh_output(key: deflate_compressors.CompressorKey, data: bytes) -> bytes:
    compressor = new_compressor(key)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


# -- which library compresses ---------------------------------------------------------------------


def test_zlib_compresses_what_isal_must_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deflate_compressors, "SPEEDUPS_DISABLED", False)
    isal = DeflateConfig(backend="isal") if HAVE_ISAL else DeflateConfig()
    # a kept context (ISA-L's state is 100-600 KiB), window 8, level 0 ("stored")
    assert compression_library(isal, 15, no_context_takeover=False) == "zlib"
    assert compression_library(isal, 8, no_context_takeover=True) == "zlib"
    level_0 = DeflateConfig(compress_level=0, backend=isal.backend)
    assert compression_library(level_0, 15, no_context_takeover=True) == "zlib"
    assert compression_library(ZLIB_ONLY, 15, no_context_takeover=True) == "zlib"


@pytest.mark.skipif(not HAVE_ISAL, reason="isal is not installed (framewire[isal])")
def test_auto_uses_isal_unless_speedups_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deflate_compressors, "SPEEDUPS_DISABLED", False)
    assert compression_library(CONFIG, 9, no_context_takeover=True) == "isal"
    monkeypatch.setattr(deflate_compressors, "SPEEDUPS_DISABLED", True)
    assert compression_library(CONFIG, 9, no_context_takeover=True) == "zlib"
    isal = DeflateConfig(backend="isal")
    assert compression_library(isal, 9, no_context_takeover=True) == "isal"


# -- the idle compressors -------------------------------------------------------------------------


def test_a_borrowed_compressor_forgets_each_message_and_goes_back_to_the_pool() -> None:
    key = compressor_key(ZLIB_ONLY, 15, no_context_takeover=True)
    first = borrow_compressor(key)
    assert finish_alone(first, key, MESSAGE) == fresh_output(key, MESSAGE)
    again = borrow_compressor(key)
    assert again is first  # the idle one, not a new one
    # A second borrower while the first holds it gets its own.
    other = borrow_compressor(key)
    assert other is not again
    # The same message again compresses as from a fresh context: nothing refers back.
    assert finish_alone(again, key, MESSAGE) == fresh_output(key, MESSAGE)
    finish_alone(other, key, b"")


def test_an_8_bit_window_is_compressed_with_9_bits() -> None:
    library, level, window_bits, mem_level = compressor_key(ZLIB_ONLY, 8, no_context_takeover=True)
    assert (library, window_bits) == ("zlib", 9)
    assert (level, mem_level) == (ZLIB_ONLY.compress_level, ZLIB_ONLY.mem_level)
    output = fresh_output((library, level, window_bits, mem_level), MESSAGE)
    assert zlib.decompressobj(-9).decompress(output) == MESSAGE
