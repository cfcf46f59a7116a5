"""BodyFraming: how an HTTP/1.1 parser reads a message's body (RFC 9112 6 and 7.1).

MessageParser (sansio/http11_framing.py) derives from it. Once a head is parsed, the request or
response parser picks the body's framing (RFC 9112 6.3): a Content-Length, the chunked coding,
or, for a response, until the connection closes; the steps here then move body bytes from the
parser's buffer to the pending BodyData, enforcing max_body_size and max_chunks as they go.
"""

from __future__ import annotations

from framewire.sansio.headers import Headers
from framewire.sansio.http11_grammar import LineTooLong, ParseError, parse_chunk_size
from framewire.sansio.http11_state import State
from framewire.sansio.limits import HTTPLimits

__all__ = ["BodyFraming"]

# Read at every parsing step: see _OPEN in sansio/connection.py.
_BODY_LENGTH, _CHUNK_SIZE, _CHUNK_DATA = State.BODY_LENGTH, State.CHUNK_SIZE, State.CHUNK_DATA
_CHUNK_END, _TRAILERS, _BODY_UNTIL_EOF = State.CHUNK_END, State.TRAILERS, State.BODY_UNTIL_EOF

_CHUNK_STATES_PER_STEP = 32  # chunk size / data / end states handled in one step


class BodyFraming:
    """The body half of MessageParser, which derives from it and holds the state it reads."""

    # What MessageParser provides.
    _limits: HTTPLimits
    _buffer: bytearray
    _start: int  # the first byte of _buffer not parsed yet
    _state: State
    _body_parts: bytearray  # body bytes of this call, for one BodyData
    _head_size: int
    _max_body_size: int
    _body_received: int
    _remaining: int  # bytes left in the body (Content-Length) or in the chunk
    _chunks: int

    def _read_line(self, limit: int) -> bytes | None:
        raise NotImplementedError  # MessageParser's

    def _finish_message(self, trailers: Headers) -> None:
        raise NotImplementedError  # MessageParser's

    def _fail(self, error: ParseError) -> None:
        raise NotImplementedError  # MessageParser's

    def _set_max_body_size(self, max_body_size: int) -> None:
        self._max_body_size = max_body_size
        if self._state in (_BODY_LENGTH, _CHUNK_DATA, _CHUNK_END, _CHUNK_SIZE):
            committed = self._body_received + self._remaining
            if committed > max_body_size:
                self._fail(
                    ParseError(413, f"body exceeds max_body_size={max_body_size}"),
                )

    def _begin_length_body(self, content_length: int) -> None:
        if content_length == 0:
            self._finish_message(Headers())
        else:
            self._remaining = content_length
            self._state = _BODY_LENGTH

    def _begin_chunked_body(self) -> None:
        self._state = _CHUNK_SIZE

    def _begin_body_until_eof(self) -> None:
        self._remaining = 0
        self._state = _BODY_UNTIL_EOF

    def _step_body_bytes(self) -> bool:
        """Move body bytes from the buffer to the pending BodyData."""
        available = len(self._buffer) - self._start
        if available <= 0:
            return False
        if self._state is _BODY_UNTIL_EOF:
            room = self._max_body_size - self._body_received
            if available > room:
                # Hand over what fits first, so that the events do not depend on the reads.
                self._body_parts += self._buffer[self._start : self._start + room]
                raise ParseError(413, f"body exceeds max_body_size={self._max_body_size}")
            size = available
        else:
            size = min(available, self._remaining)
            self._remaining -= size
        start = self._start
        self._body_parts += self._buffer[start : start + size]
        self._start = start + size
        self._body_received += size
        if self._remaining == 0 and self._state is _BODY_LENGTH:
            self._finish_message(Headers())
        return True

    def _step_chunked(self) -> bool:
        """Parse as many chunks as the buffer holds, in one loop.

        Per-chunk cost is the hot path of a body of tiny chunks, so the three chunk states are
        handled here without going back to the dispatcher (measured by
        test_a_million_one_byte_chunks_cost_linear_time_and_one_event).
        """
        buffer = self._buffer
        progressed = False
        for _ in range(_CHUNK_STATES_PER_STEP):
            state = self._state
            if state is _CHUNK_SIZE:
                if not self._read_chunk_size():
                    return progressed
                if self._state is _TRAILERS:
                    return True
            elif state is _CHUNK_DATA:
                start = self._start
                size = min(len(buffer) - start, self._remaining)
                if size <= 0:
                    return progressed
                self._body_parts += buffer[start : start + size]
                self._start = start + size
                self._body_received += size
                self._remaining -= size
                if self._remaining == 0:
                    self._state = _CHUNK_END
            else:
                start = self._start
                available = len(buffer) - start
                if available >= 2:
                    if buffer[start] != 0x0D or buffer[start + 1] != 0x0A:
                        raise ParseError(400, "chunk data not followed by CRLF")
                    self._start = start + 2
                    self._state = _CHUNK_SIZE
                else:
                    if available == 1 and buffer[start] != 0x0D:
                        raise ParseError(400, "chunk data not followed by CRLF")
                    return progressed
            progressed = True
        return True  # more may follow: the dispatcher counts this step against its budget

    def _read_chunk_size(self) -> bool:
        """Read one chunk-size line; return False until it is complete."""
        max_chunk_line = self._limits.max_chunk_line
        try:
            line = self._read_line(max_chunk_line)
        except LineTooLong:
            raise ParseError(400, f"chunk line exceeds max_chunk_line={max_chunk_line}") from None
        if line is None:
            return False
        size = parse_chunk_size(line)
        if size == 0:
            self._head_size = 0  # the trailer section gets its own max_head_size
            self._state = _TRAILERS
            return True
        self._chunks += 1
        if self._chunks > self._limits.max_chunks:
            raise ParseError(413, f"more than max_chunks={self._limits.max_chunks} chunks")
        if self._body_received + size > self._max_body_size:
            raise ParseError(413, f"body exceeds max_body_size={self._max_body_size}")
        self._remaining = size
        self._state = _CHUNK_DATA
        return True
