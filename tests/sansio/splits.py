"""Split helpers for sans-I/O parser tests: whole, byte by byte, and hypothesis-chosen cuts."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import strategies as st


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (sorted, deduplicated, clipped to the inside)."""
    points = sorted({cut for cut in cuts if 0 < cut < len(data)})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def byte_by_byte(data: bytes) -> list[bytes]:
    """Return ``data`` as one-byte pieces."""
    return [data[index : index + 1] for index in range(len(data))]


def every_split(data: bytes) -> list[list[bytes]]:
    """Return the deterministic ways to feed ``data``: whole and byte by byte."""
    return [[data], byte_by_byte(data)]


@st.composite
def random_splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """Hypothesis strategy: ``data`` cut at up to 20 drawn offsets."""
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=20))
    return split_at(data, cuts)
