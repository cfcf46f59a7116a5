"""The limit tables (sansio/limits.py): what fragment_limit() derives. That every limit is in
docs/topics/limits.md with its default is tests/test_limits_doc.py; each limit being enforced
is tested beside the parser that enforces it."""

from __future__ import annotations

import dataclasses

import pytest

from framewire.sansio.limits import ConnectionLimits, HTTPLimits, WebSocketLimits


@pytest.mark.parametrize(
    ("max_message_size", "max_fragments", "limit"),
    [
        (1 << 20, None, 65536),  # one fragment per 16 bytes
        (4 << 20, None, 262144),
        (1000, None, 4096),  # but at least 4096
        (None, None, None),  # no size limit: no fragment limit either
        (1 << 20, 10, 10),  # an explicit cap wins
        (None, 10, 10),
    ],
)
def test_fragment_limit(
    max_message_size: int | None, max_fragments: int | None, limit: int | None
) -> None:
    limits = WebSocketLimits(max_message_size=max_message_size, max_fragments=max_fragments)
    assert limits.fragment_limit() == limit


def test_a_4_mib_message_in_64_byte_fragments_fits_the_derived_cap() -> None:
    limits = WebSocketLimits(max_message_size=4 << 20)
    fragments = (4 << 20) // 64
    assert limits.fragment_limit() is not None and fragments <= limits.fragment_limit()


@pytest.mark.parametrize("table", [WebSocketLimits, HTTPLimits, ConnectionLimits])
def test_tables_are_frozen(table: type) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(table(), dataclasses.fields(table)[0].name, 1)
