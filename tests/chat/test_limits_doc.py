"""docs/topics/limits.md lists every chat limit with the default the code has."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from framewire.chat.limits import ChatLimits

DOC = Path(__file__).parents[2] / "docs" / "topics" / "limits.md"


def _chat_table() -> dict[str, str]:
    text = DOC.read_text().split("## The chat app", 1)[1]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, re.MULTILINE))


def test_every_chat_limit_is_in_the_docs_table_and_nothing_else() -> None:
    assert set(_chat_table()) == {field.name for field in fields(ChatLimits)}


def test_each_documented_default_is_the_codes_default() -> None:
    table = _chat_table()
    defaults = ChatLimits()
    for name, cell in table.items():
        value = getattr(defaults, name)
        numbers = {float(number) for number in re.findall(r"\d+(?:\.\d+)?", cell)}
        assert float(value) in numbers, f"{name}: docs say {cell.strip()!r}, code has {value}"
