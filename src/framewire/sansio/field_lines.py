"""A whole field section (RFC 9112 5) in one call, with a C twin: the request-head fast path.

The HTTP/1.1 parser calls parse_field_lines() once the blank line ending a head has arrived.
It returns None for anything unusual (a line over a limit, too many lines, a malformed line),
and the parser then goes line by line, which raises the precise error.
"""

from __future__ import annotations

from collections.abc import Callable

from framewire.sansio.http11_grammar import ParseError, parse_field_line
from framewire.sansio.speedups import ENABLED

__all__ = ["ParsedFields", "parse_field_lines", "py_parse_field_lines"]

# (fields in arrival order, {lower-case name: [values]}): what Headers keeps.
ParsedFields = tuple[list[tuple[str, str]], dict[str, list[str]]]


def py_parse_field_lines(
    buffer: bytes | bytearray, start: int, end: int, max_line: int, max_fields: int
) -> ParsedFields | None:
    """Parse the CRLF-separated field lines in ``buffer[start:end]``.

    Returns (fields, index) for Headers.from_parsed(), or None when there are more than
    ``max_fields`` lines, a line is longer than ``max_line`` bytes, or a line is not a plain
    valid field line (including one holding a bare CR or LF).
    """
    lines = bytes(buffer[start:end]).split(b"\r\n")
    if len(lines) > max_fields:
        return None
    fields: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}
    for line in lines:
        if len(line) > max_line:
            return None
        try:
            name, value = parse_field_line(line)
        except ParseError:
            return None
        fields.append((name, value))
        index.setdefault(name.lower(), []).append(value)
    return fields, index


parse_field_lines: Callable[[bytes | bytearray, int, int, int, int], ParsedFields | None] = (
    py_parse_field_lines
)
if ENABLED:
    from framewire._speedups import parse_field_lines as c_parse_field_lines

    parse_field_lines = c_parse_field_lines
