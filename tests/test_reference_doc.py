"""docs/reference is checked against the code: every public name, every keyword argument of
serve() and connect(), and every public member of WebSocket is documented, and nothing that
does not exist is."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
from pathlib import Path

import framewire
import framewire.http
from framewire.aio.ws.options import WebSocketOptions

DOCS = Path(__file__).parents[1] / "docs"
ASYNCIO = (DOCS / "reference" / "asyncio.md").read_text()

# The asyncio protocol callbacks (and the C Poller's) are how the loop drives a WebSocket, not
# API for users: asyncio documents them.
_PROTOCOL_CALLBACKS = {
    name for name in dir(asyncio.BufferedProtocol) if not name.startswith("_")
} | {"data_received", "eof_received", "poller_eof", "poller_error"}


def _section(text: str, heading_start: str) -> str:
    return text.split("\n## " + heading_start, 1)[1].split("\n## ", 1)[0]


def _keyword_arguments() -> set[str]:
    names = {field.name for field in dataclasses.fields(WebSocketOptions)}
    for function in (framewire.serve.__init__, framewire.connect.__init__):
        names |= {
            parameter.name
            for parameter in inspect.signature(function).parameters.values()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
    return names


def test_the_options_table_is_exactly_the_keyword_arguments_of_serve_and_connect() -> None:
    table = _section(ASYNCIO, "`serve(")
    documented: set[str] = set()
    for first_cell in re.findall(r"^\| (`[^|]+) \|", table, re.MULTILINE):
        documented |= set(re.findall(r"`(\w+)`", first_cell))
    assert documented == _keyword_arguments()


def test_every_public_member_of_websocket_is_documented() -> None:
    section = _section(ASYNCIO, "`WebSocket`")
    public = {name for name in dir(framewire.WebSocket) if not name.startswith("_")}
    missing = sorted(
        name
        for name in public - _PROTOCOL_CALLBACKS
        if f"`{name}" not in section
        and f" {name}(" not in section
        and f"`await {name}(" not in section
    )
    assert missing == []


def _documented(name: str, text: str) -> bool:
    """A function must appear as `name` or name(; a class may also stand in a code block."""
    if f"`{name}" in text or f"{name}(" in text:
        return True
    return name[:1].isupper() and re.search(rf"\b{name}\b", text) is not None


def test_every_exported_name_is_in_the_docs() -> None:
    everything = "".join(path.read_text() for path in DOCS.rglob("*.md"))
    for module in (framewire, framewire.http):
        missing = [name for name in module.__all__ if not _documented(name, everything)]
        assert missing == [], f"{module.__name__}: {missing}"


def test_every_keyword_argument_is_described_in_the_docstring_too() -> None:
    """The reference's options table and the docstrings of serve() and connect() name the
    same arguments (each docstring those its function takes)."""
    options = {field.name for field in dataclasses.fields(WebSocketOptions)}
    for function in (framewire.serve, framewire.connect):
        keywords = options | {
            parameter.name
            for parameter in inspect.signature(function.__init__).parameters.values()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
        docstring = inspect.getdoc(function) or ""
        missing = sorted(name for name in keywords if not re.search(rf"\b{name}\b", docstring))
        assert missing == [], f"{function.__name__}: {missing}"
