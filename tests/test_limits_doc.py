"""docs/topics/limits.md has one table per limits class, and each says what the code says.

Every field of WebSocketLimits, ConnectionLimits, HTTPLimits and ChatLimits appears in its
section's table, nothing else does, and each default cell names the code's default (None, or a
number among the cell's numbers).
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from framewire.aio.ws.options import WebSocketOptions
from framewire.chat.limits import ChatLimits
from framewire.sansio.limits import ConnectionLimits, HTTPLimits, WebSocketLimits

DOC = Path(__file__).parents[1] / "docs" / "topics" / "limits.md"

SECTIONS: dict[str, Any] = {
    "## WebSocket messages": WebSocketLimits,
    "## Connections, buffers and timeouts": ConnectionLimits,
    "## HTTP/1.1": HTTPLimits,
    "## The chat app": ChatLimits,
}


def _table(heading: str) -> dict[str, str]:
    """Return {limit name: default cell} of the first table under ``heading``."""
    text = DOC.read_text().split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, re.MULTILINE))


@pytest.mark.parametrize("heading", SECTIONS)
def test_every_limit_is_in_its_docs_table_and_nothing_else(heading: str) -> None:
    assert set(_table(heading)) == {field.name for field in fields(SECTIONS[heading])}


@pytest.mark.parametrize("heading", SECTIONS)
def test_each_documented_default_is_the_codes_default(heading: str) -> None:
    defaults = SECTIONS[heading]()
    for name, cell in _table(heading).items():
        value = getattr(defaults, name)
        if value is None:
            assert cell.strip().startswith("None"), f"{name}: docs say {cell.strip()!r}, code None"
            continue
        numbers = {float(number) for number in re.findall(r"\d+(?:\.\d+)?", cell)}
        assert float(value) in numbers, f"{name}: docs say {cell.strip()!r}, code has {value}"


def test_serve_and_connect_take_their_defaults_from_the_limits_table() -> None:
    """WebSocketOptions (the keyword arguments of serve() and connect()) repeats no default."""
    options = WebSocketOptions()
    for table in (WebSocketLimits(), ConnectionLimits()):
        for field in fields(table):
            if hasattr(options, field.name):
                assert getattr(options, field.name) == getattr(table, field.name), field.name
