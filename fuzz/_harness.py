"""What every fuzz target shares that does not touch framewire: the input reader and the driver.

A target is a module with one pure function, ``check(data: bytes) -> None``, that raises
AssertionError (or lets an unexpected exception through) when an invariant breaks. Run as a
script, the module hands ``check`` to atheris (libFuzzer), with framewire's Python code
instrumented for coverage; imported, it is a plain function, which tests/fuzz replays over the
seed corpus without atheris. That is why this module imports nothing from framewire: a target
imports framewire inside ``with instrumented(__name__):``, after atheris is set up.

Inputs are read with ByteReader, not atheris.FuzzedDataProvider, so that a corpus file means the
same thing with or without atheris, and fuzz/make_corpus.py can write seeds that start where the
interesting code is.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ByteReader", "fuzz_main", "instrumented", "pieces", "split_points"]


def instrumented(module_name: str) -> contextlib.AbstractContextManager[Any]:
    """Instrument framewire's modules imported in this block, when a target runs as a script.

    Imported by a test, nothing is instrumented and atheris need not be installed.
    """
    if module_name != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["framewire"])


def fuzz_main(check: Callable[[bytes], None]) -> None:
    """Run libFuzzer over ``check`` with the command line's options and corpus directories.

    Options are libFuzzer's: ``-runs=N``, ``-max_total_time=S``, ``-seed=N``, ``-max_len=N``.
    New inputs go to the first directory given; seeds may come from the following ones.
    """
    import atheris

    # Deep recursion is a finding, not a reason for the harness to die in CPython's C stack.
    sys.setrecursionlimit(2000)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


class ByteReader:
    """Reads choices off the front of a fuzz input; every read succeeds, past the end too.

    A target reads its few configuration choices first and the payload last with rest(), so that
    libFuzzer's mutations of the payload keep the configuration, and a seed file is the
    configuration bytes followed by plain protocol bytes.
    """

    __slots__ = ("_data", "_position")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def byte(self) -> int:
        """Return the next byte, or 0 past the end."""
        if self._position >= len(self._data):
            return 0
        value = self._data[self._position]
        self._position += 1
        return value

    def flag(self) -> bool:
        """Return a boolean from the next byte's lowest bit."""
        return bool(self.byte() & 1)

    def pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        """Return one of ``options``, chosen by the next byte."""
        return options[self.byte() % len(options)]

    def integer(self, size: int) -> int:
        """Return the next ``size`` bytes as a big-endian unsigned integer."""
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "big")

    def take(self, size: int) -> bytes:
        """Return the next ``size`` bytes (fewer at the end)."""
        chunk = self._data[self._position : self._position + size]
        self._position += len(chunk)
        return chunk

    def short_bytes(self) -> bytes:
        """Return a length-prefixed piece: one length byte, then that many bytes."""
        return self.take(self.byte())

    def rest(self) -> bytes:
        """Return every byte not read yet."""
        chunk = self._data[self._position :]
        self._position = len(self._data)
        return chunk

    @property
    def exhausted(self) -> bool:
        """True once every byte was read."""
        return self._position >= len(self._data)


BYTE_BY_BYTE_MAX = 16384


def split_points(length: int, seed: int) -> list[int]:
    """Return sorted cut positions in ``0..length`` for one way of splitting a byte stream.

    Seed 0 gives no cut (the whole stream in one piece), 1 cuts after every byte (up to
    BYTE_BY_BYTE_MAX bytes, to keep an execution short), anything else a reproducible random mix
    of short and long pieces.
    """
    if seed == 0 or length <= 1:
        return []
    if seed == 1 and length <= BYTE_BY_BYTE_MAX:
        return list(range(1, length))
    generator = random.Random(seed)
    cuts = set()
    position = 0
    while True:
        position += generator.choice((1, 1, 2, 3, 7, 64, 1000, generator.randint(1, length)))
        if position >= length:
            break
        cuts.add(position)
    return sorted(cuts)


def pieces(data: bytes, seed: int) -> Iterator[bytes]:
    """Yield ``data`` cut at split_points(len(data), seed)."""
    start = 0
    for cut in split_points(len(data), seed):
        yield data[start:cut]
        start = cut
    yield data[start:]
