"""The machinery shared by the HTTP/1.1 request and response parsers.

Strategy: received bytes are appended to one bytearray. ``_start`` marks the first byte not yet
parsed and ``_scan`` where the last search for LF stopped, so a head fed one byte per call is
searched once in total (linear time). Consumed bytes are dropped only once they are more than
half of the buffer, which keeps compaction amortized linear too. Body bytes parsed during one
receive_data() call are gathered into one BodyData event, so a million one-byte chunks cost a
million small steps and one event, not a million events.

Each state has a step method that returns True when it made progress and False when it needs
more bytes. A problem with the peer's bytes raises ParseError inside the loop; the loop turns it
into the subclass's error event and stops parsing for good. The steps of a body (Content-Length,
chunked, until EOF) come from MessageParser's base, BodyFraming (http11_body.py).
"""

from __future__ import annotations

from collections.abc import Callable

from framewire.sansio.field_lines import parse_field_lines
from framewire.sansio.headers import Headers
from framewire.sansio.http11_body import BodyFraming
from framewire.sansio.http11_events import (
    BadRequest,
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestHead,
    ResponseHead,
)
from framewire.sansio.http11_grammar import LineTooLong, ParseError, parse_field_line
from framewire.sansio.http11_state import State
from framewire.sansio.limits import HTTPLimits

__all__ = ["Event", "MessageParser", "State"]

Event = RequestHead | ResponseHead | BodyData | EndOfMessage | BadRequest | BadResponse

_COMPACT_THRESHOLD = 4096


# Read at every parsing step: see _OPEN in sansio/connection.py.
_START_LINE, _HEADERS, _BODY_LENGTH, _CHUNK_SIZE = (
    State.START_LINE,
    State.HEADERS,
    State.BODY_LENGTH,
    State.CHUNK_SIZE,
)
_CHUNK_DATA, _CHUNK_END, _TRAILERS, _BODY_UNTIL_EOF = (
    State.CHUNK_DATA,
    State.CHUNK_END,
    State.TRAILERS,
    State.BODY_UNTIL_EOF,
)
_DONE, _UPGRADED, _FAILED, _SWITCHED = State.DONE, State.UPGRADED, State.FAILED, State.SWITCHED
_CLOSED = State.CLOSED


_STEP_BUDGET = 256  # parsing steps per call; see MessageParser._run
_PARSING_STATES = frozenset(
    {
        _START_LINE,
        _HEADERS,
        _BODY_LENGTH,
        _CHUNK_SIZE,
        _CHUNK_DATA,
        _CHUNK_END,
        _TRAILERS,
        _BODY_UNTIL_EOF,
    }
)


class MessageParser(BodyFraming):
    """Base of RequestParser and ResponseParser: buffering, lines, headers and body framing.

    Subclasses implement _parse_start_line, _on_head_complete, _error_event, _eof_event and
    the start line limit (_max_start_line, and _start_line_error() for the error past it).
    """

    _max_start_line: int

    def __init__(self, limits: HTTPLimits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._start = 0
        self._scan = 0
        self._events: list[Event] = []
        self._body_parts = bytearray()
        self._state = _START_LINE
        self._eof = False
        self._budget_exhausted = False
        self._reset_message()

    def _reset_message(self) -> None:
        self._head_size = 0
        self._fields: list[tuple[str, str]] = []
        self._max_body_size = self._limits.max_body_size
        self._body_received = 0
        self._remaining = 0
        self._chunks = 0

    # Public shape, shared by both parsers.

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer; never raises on bad input."""
        if self._eof or self._state in (_FAILED, _SWITCHED, _CLOSED):
            return
        self._buffer += data
        if self._state in _PARSING_STATES:
            self._run()

    def receive_eof(self) -> None:
        """Tell the parser the peer closed its side; a message cut short becomes an error."""
        if self._eof:
            return
        self._eof = True
        if self._state in _PARSING_STATES:
            self._run()

    def events_received(self) -> list[Event]:
        """Return the events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def take_unparsed(self) -> bytes:
        """Return the buffered bytes not parsed yet and stop parsing for good."""
        data = bytes(self._buffer[self._start :])
        self._buffer = bytearray()
        self._start = self._scan = 0
        if self._state is not _FAILED:
            self._state = _SWITCHED
        return data

    def _next_message(self) -> None:
        if self._state is not _DONE:
            raise RuntimeError(f"no complete message to move past (state: {self._state.value})")
        self._reset_message()
        self._state = _START_LINE
        if self._start == len(self._buffer) and not self._eof:
            # Nothing pipelined behind the message (the commonest case): nothing to parse.
            del self._buffer[:]
            self._start = self._scan = 0
            return
        self._run()

    # Hooks.

    def _parse_start_line(self, line: bytes) -> None:
        raise NotImplementedError

    def _start_line_error(self) -> ParseError:
        raise NotImplementedError

    def _on_head_complete(self, headers: Headers) -> None:
        raise NotImplementedError

    def _error_event(self, error: ParseError) -> Event:
        raise NotImplementedError

    def _eof_at_boundary(self) -> None:
        """Handle EOF between messages (requests: a clean close)."""
        self._state = _CLOSED

    # The loop.

    @property
    def is_idle(self) -> bool:
        """True between messages with nothing buffered: the next byte starts a new message."""
        return self._state is _START_LINE and self._start == len(self._buffer) and not self._eof

    @property
    def has_more_to_parse(self) -> bool:
        """True when a call stopped at its step budget with complete input left to parse.

        Call parse_more() (after letting other work run) until this is False.
        """
        return self._budget_exhausted

    def parse_more(self) -> None:
        """Continue parsing input that an earlier call left at its step budget."""
        if self._budget_exhausted and self._state in _PARSING_STATES:
            self._run()

    def _run(self) -> None:
        # Each call parses at most _STEP_BUDGET steps (a step handles up to
        # 32 chunk states: http11_body.py), so a read full of tiny chunks cannot hold the
        # event loop for long (aiohttp CVE-2025-69229: one 256 KiB read of 1-byte chunks took
        # about 0.2 s to parse here).
        budget = _STEP_BUDGET
        self._budget_exhausted = False
        try:
            while self._state in _PARSING_STATES and _STEPS[self._state](self):
                budget -= 1
                if not budget:
                    self._budget_exhausted = True
                    break
            if self._eof and self._state in _PARSING_STATES and not self._budget_exhausted:
                self._apply_eof()
        except ParseError as error:
            self._fail(error)
            return
        self._flush_body()
        if self._start > _COMPACT_THRESHOLD and self._start * 2 > len(self._buffer):
            del self._buffer[: self._start]
            self._scan = max(0, self._scan - self._start)
            self._start = 0

    def _fail(self, error: ParseError) -> None:
        self._flush_body()
        self._events.append(self._error_event(error))
        self._state = _FAILED
        self._buffer = bytearray()
        self._start = self._scan = 0

    def _apply_eof(self) -> None:
        if self._state is _BODY_UNTIL_EOF:
            self._finish_message(Headers())
        elif self._state is _START_LINE and self._start == len(self._buffer):
            self._eof_at_boundary()
        elif self._state in (_START_LINE, _HEADERS):
            raise ParseError(400, "connection closed before the end of the head")
        else:
            raise ParseError(400, "connection closed before the end of the body")

    def _flush_body(self) -> None:
        if self._body_parts:
            self._events.append(BodyData(bytes(self._body_parts)))
            self._body_parts = bytearray()

    def _finish_message(self, trailers: Headers) -> None:
        self._flush_body()
        self._events.append(EndOfMessage(trailers))
        self._state = _DONE

    # Lines.

    def _read_line(self, limit: int) -> bytes | None:
        """Return the next CRLF-terminated line without its CRLF, or None until it is complete.

        Raises LineTooLong past ``limit`` bytes, ParseError for a bare LF or bare CR.
        """
        buffer = self._buffer
        start = self._start
        end = buffer.find(b"\n", max(self._scan, start))
        if end < 0:
            self._scan = len(buffer)
            if len(buffer) - start > limit + 1:  # + 1: the CR of the CRLF may be in
                raise LineTooLong
            return None
        # The length first, as when the LF comes in a later read: the answer to a line must
        # not depend on how TCP split it.
        if end - 1 - start > limit:
            raise LineTooLong
        # RFC 9112 2.2: we do not accept a bare LF as a line terminator (smuggling vector).
        if end == start or buffer[end - 1] != 0x0D:
            raise ParseError(400, "bare LF: lines must end with CRLF")
        line = bytes(buffer[start : end - 1])
        self._start = self._scan = end + 1
        if b"\r" in line:
            raise ParseError(400, "bare CR in a line")
        return line

    def _step_start_line(self) -> bool:
        try:
            line = self._read_line(self._max_start_line)
        except LineTooLong:
            raise self._start_line_error() from None
        if line is None:
            return False
        if not line:
            return True  # RFC 9112 2.2: ignore empty lines before the start line.
        self._head_size = len(line) + 2
        self._parse_start_line(line)
        self._state = _HEADERS
        return True

    def _step_header(self) -> bool:
        """Read one field line of the head or of the trailer section."""
        limits = self._limits
        if not self._fields and self._state is _HEADERS and self._step_whole_head():
            return True
        kind = "header" if self._state is _HEADERS else "trailer"
        room = limits.max_head_size - self._head_size - 2
        try:
            line = self._read_line(min(limits.max_header_line, max(room, 0)))
        except LineTooLong:
            if room >= limits.max_header_line:
                raise ParseError(
                    431, f"{kind} line exceeds max_header_line={limits.max_header_line}"
                ) from None
            raise ParseError(
                431, f"{kind} section exceeds max_head_size={limits.max_head_size}"
            ) from None
        if line is None:
            return False
        self._head_size += len(line) + 2
        if not line:
            # The blank line's CRLF counts too, as in the whole-head fast path.
            if self._head_size > limits.max_head_size:
                raise ParseError(
                    431, f"{kind} section exceeds max_head_size={limits.max_head_size}"
                )
            fields = Headers(self._fields)
            self._fields = []
            if self._state is _HEADERS:
                self._on_head_complete(fields)
            else:
                self._finish_message(fields)
            return True
        if len(self._fields) >= limits.max_headers:
            raise ParseError(431, f"more than max_headers={limits.max_headers} {kind} fields")
        self._fields.append(parse_field_line(line))
        return True

    def _step_whole_head(self) -> bool:
        """Fast path: when every field line of the head has arrived and is within the limits,
        parse them in one step; return False to leave the head to _step_header, line by line.

        Shaped for speed (benchmarks/run.py, handshakes): a head nearly always arrives whole.
        Anything unusual (a line over a limit, too many lines, a malformed line) goes to the
        line-by-line path, which raises the precise error.
        """
        limits = self._limits
        buffer = self._buffer
        start = self._start
        end = buffer.find(b"\r\n\r\n", start - 2 if start >= 2 else 0)
        if end < start:
            return False  # incomplete, or no field lines at all (the slow path is as fast)
        head_size = self._head_size + end + 4 - start
        if head_size > limits.max_head_size:
            return False
        parsed = parse_field_lines(buffer, start, end, limits.max_header_line, limits.max_headers)
        if parsed is None:
            return False
        self._start = self._scan = end + 4
        self._head_size = head_size
        self._on_head_complete(Headers.from_parsed(*parsed))
        return True


# The step for each parsing state, as plain functions: one table for every parser instead of a
# dict of bound methods built per connection (benchmarks/run.py, handshakes per second).
_STEPS: dict[State, Callable[[MessageParser], bool]] = {
    _START_LINE: MessageParser._step_start_line,
    _HEADERS: MessageParser._step_header,
    _BODY_LENGTH: MessageParser._step_body_bytes,
    _CHUNK_SIZE: MessageParser._step_chunked,
    _CHUNK_DATA: MessageParser._step_chunked,
    _CHUNK_END: MessageParser._step_chunked,
    _TRAILERS: MessageParser._step_header,
    _BODY_UNTIL_EOF: MessageParser._step_body_bytes,
}
