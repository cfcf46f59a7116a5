"""The grammar of HTTP/1.1 messages (RFC 9110, RFC 9112): tokens, field lines, lengths.

Pure functions over bytes that either return a value or raise ParseError with the status to
answer and a short reason that is safe to echo. The parsers in http11_framing and http11_body
use them.
"""

from __future__ import annotations

import re

from framewire.sansio.headers import split_tokens

__all__ = [
    "HUGE_LENGTH",
    "INVALID_VALUE_RE",
    "TOKEN_RE",
    "LineTooLong",
    "ParseError",
    "chunked_is_final",
    "parse_chunk_size",
    "parse_content_length",
    "parse_field_line",
]

# RFC 9110 5.6.2: token = 1*tchar.
TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: field-value = VCHAR / SP / HTAB / obs-text; anything else (CTLs, NUL, CR, LF, DEL).
INVALID_VALUE_RE = re.compile(rb"[^\t\x20-\x7e\x80-\xff]")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]+")
# A whole valid field line: token ":" then field-value characters (stripped afterwards). Greedy
# and without nested repetition, so matching is linear in the line's length.
_FIELD_LINE_RE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)")
_MAX_CHUNK_SIZE_DIGITS = 15  # 15 hex digits = 2**60 - 1: far above any limit, never overflows
_MAX_CONTENT_LENGTH_DIGITS = 18
HUGE_LENGTH = 10**18  # more digits than _MAX_CONTENT_LENGTH_DIGITS


class LineTooLong(Exception):
    """A line went past the length allowed by the caller, which raises the ParseError that
    names the limit."""


class ParseError(Exception):
    """The peer's bytes are malformed or over a limit; carries the status to answer with."""

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


def parse_field_line(line: bytes) -> tuple[str, str]:
    """Return (name, value) of one header or trailer line (RFC 9112 5).

    Raises:
        ParseError: 400 for obs-fold, a missing colon, whitespace before the colon, a name that
            is not a token, or a value holding control characters.
    """
    match = _FIELD_LINE_RE.fullmatch(line)
    if match is not None:  # the common case in one step; anything else is diagnosed below
        name, value = match.groups()
        return name.decode("ascii"), value.strip(b" \t").decode("latin-1")
    if line[:1] in (b" ", b"\t"):
        # RFC 9112 5.2: a server must reject obs-fold (or replace it; we reject).
        raise ParseError(400, "obsolete line folding is not allowed")
    name, colon, value = line.partition(b":")
    if not colon:
        raise ParseError(400, "header line without a colon")
    if TOKEN_RE.fullmatch(name) is None:
        if name and name.rstrip(b" \t") != name:
            # RFC 9112 5.1: no whitespace between field name and colon; a smuggling vector.
            raise ParseError(400, "whitespace before the colon in a header line")
        raise ParseError(400, "invalid character in header name")
    value = value.strip(b" \t")
    if INVALID_VALUE_RE.search(value) is not None:
        raise ParseError(400, "invalid character in header value")
    return name.decode("ascii"), value.decode("latin-1")


def parse_content_length(values: list[str]) -> int:
    """Return the Content-Length of a message given every value of the field.

    A length too large for any limit is returned as ``HUGE_LENGTH``.

    Raises:
        ParseError: 400 when repeated or not plain digits (``-1``, ``+5``, ``5, 5``).
    """
    if len(values) > 1:
        raise ParseError(400, "duplicate Content-Length")
    value = values[0]
    if not (value.isascii() and value.isdigit()):
        raise ParseError(400, "invalid Content-Length")
    digits = value.lstrip("0")
    if len(digits) > _MAX_CONTENT_LENGTH_DIGITS:
        return HUGE_LENGTH  # also keeps int() away from its 4300-digit limit
    return int(digits or "0")


def chunked_is_final(values: list[str]) -> bool:
    """Return whether Transfer-Encoding is exactly ``chunked``; raise ParseError if malformed.

    Raises:
        ParseError: 400 when chunked is missing, not last, or repeated (RFC 9112 6.3);
            501 for any other coding.
    """
    tokens = split_tokens(values)
    if not tokens or tokens[-1] != "chunked":
        raise ParseError(400, "Transfer-Encoding must end with chunked")
    if "chunked" in tokens[:-1]:
        raise ParseError(400, "chunked applied more than once")
    if len(tokens) > 1:
        raise ParseError(501, "unsupported Transfer-Encoding")
    return True


def parse_chunk_size(line: bytes) -> int:
    """Return the size announced by a chunk-size line (RFC 9112 7.1)."""
    if len(line) <= _MAX_CHUNK_SIZE_DIGITS and _HEX_RE.fullmatch(line) is not None:
        return int(line, 16)  # fast path: no extension
    match = _HEX_RE.match(line)
    if match is None:
        raise ParseError(400, "invalid chunk size")
    digits = match.group().lstrip(b"0")
    if len(digits) > _MAX_CHUNK_SIZE_DIGITS:
        raise ParseError(400, "chunk size overflow")
    extension = line[match.end() :].lstrip(b" \t")
    if extension:
        if extension[:1] != b";":
            raise ParseError(400, "invalid chunk size")
        if INVALID_VALUE_RE.search(extension) is not None:
            raise ParseError(400, "invalid character in chunk extension")
    return int(digits or b"0", 16)
