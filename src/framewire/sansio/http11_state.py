"""State: where an HTTP/1.1 parser is in the message it reads.

Its own module because both halves of the parser set it: sansio/http11_framing.py (the buffer,
the loop, lines and heads) and sansio/http11_body.py (the body's framing).
"""

from __future__ import annotations

import enum

__all__ = ["State"]


class State(enum.Enum):
    """Where a parser is in the message it is reading."""

    # Identity hashing: Enum's default hashes the name in Python, which showed up in profiles
    # of the state lookups done for every chunk.
    __hash__ = object.__hash__

    START_LINE = "start line"
    HEADERS = "headers"
    BODY_LENGTH = "Content-Length body"
    CHUNK_SIZE = "chunk size line"
    CHUNK_DATA = "chunk data"
    CHUNK_END = "CRLF after chunk data"
    TRAILERS = "trailers"
    BODY_UNTIL_EOF = "body until EOF"
    DONE = "message complete"  # paused: bytes are buffered, not parsed
    UPGRADED = "101 received"  # paused for good: bytes are buffered for take_unparsed()
    CLOSED = "closed at a message boundary"
    FAILED = "failed"
    SWITCHED = "switched protocols"
