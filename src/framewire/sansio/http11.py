"""Incremental HTTP/1.1 parsers and serializers (RFC 9110, RFC 9112), sans I/O.

RequestParser (server side) turns bytes into RequestHead, BodyData, EndOfMessage and
BadRequest events; ResponseParser (client side) does the same for responses. Both are strict
where leniency lets a request be smuggled past a proxy: bare CR or LF, obs-fold, duplicate or
signed Content-Length, Content-Length with Transfer-Encoding, any coding but a final chunked,
whitespace before a colon, non-ASCII versions. Every limit comes from HTTPLimits and its name is
in the reason of the error. The shared machinery (buffer, lines, framing) is in http11_framing.
"""

from __future__ import annotations

import re

from framewire.sansio.headers import Headers
from framewire.sansio.http11_encode import (
    LAST_CHUNK,
    encode_chunk,
    encode_request_head,
    encode_response_head,
    simple_response,
    status_phrase,
)
from framewire.sansio.http11_events import (
    BadRequest,
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestHead,
    ResponseHead,
)
from framewire.sansio.http11_framing import MessageParser, State
from framewire.sansio.http11_grammar import (
    INVALID_VALUE_RE,
    TOKEN_RE,
    ParseError,
    chunked_is_final,
    parse_content_length,
)
from framewire.sansio.limits import HTTPLimits

__all__ = [
    "LAST_CHUNK",
    "BadRequest",
    "BadResponse",
    "BodyData",
    "EndOfMessage",
    "RequestEvent",
    "RequestHead",
    "RequestParser",
    "ResponseEvent",
    "ResponseHead",
    "ResponseParser",
    "encode_chunk",
    "encode_request_head",
    "encode_response_head",
    "simple_response",
    "status_phrase",
]

RequestEvent = RequestHead | BodyData | EndOfMessage | BadRequest
ResponseEvent = ResponseHead | BodyData | EndOfMessage | BadResponse

# RFC 9112 3.2: origin-form, absolute-form, authority-form and asterisk-form are all visible
# ASCII without spaces; the layers above interpret them.
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/1.0": "1.0"}
_STATUS_RE = re.compile(rb"[1-9][0-9][0-9]")
DEFAULT_LIMITS = HTTPLimits()


class RequestParser(MessageParser):
    """Parse requests received by a server, one at a time.

    After each EndOfMessage the parser pauses: later bytes (pipelined requests, or WebSocket
    frames after an upgrade) stay buffered and unparsed until next_request() or
    take_unparsed(). While paused the buffer is not capped: the connection layer should stop
    reading. After a BadRequest the parser ignores everything.
    """

    def __init__(self, limits: HTTPLimits = DEFAULT_LIMITS) -> None:
        self._max_start_line = limits.max_request_line
        self._request_line: tuple[str, str, str] = ("", "", "")
        super().__init__(limits)

    def _start_line_error(self) -> ParseError:
        return ParseError(414, f"request line exceeds max_request_line={self._max_start_line}")

    def events_received(self) -> list[RequestEvent]:  # type: ignore[override]
        """Return the events parsed since the last call, in order."""
        return super().events_received()  # type: ignore[return-value]

    def next_request(self) -> None:
        """Start parsing the next request, after the EndOfMessage of the current one.

        Raises:
            RuntimeError: the current request is not complete.
        """
        self._next_message()

    def set_max_body_size(self, max_body_size: int) -> None:
        """Set the body limit (bytes) of the current request; reset by next_request().

        When the body already announced or received is larger, a BadRequest(413) is queued
        at once.
        """
        self._set_max_body_size(max_body_size)

    def _parse_start_line(self, line: bytes) -> None:
        parts = line.split(b" ")
        if len(parts) != 3:
            raise ParseError(400, "malformed request line")
        method, target, version = parts
        if TOKEN_RE.fullmatch(method) is None:
            raise ParseError(400, "invalid method")
        if _TARGET_RE.fullmatch(target) is None:
            raise ParseError(400, "invalid request target")
        http_version = _VERSIONS.get(version)
        if http_version is None:
            if version.startswith(b"HTTP/"):
                raise ParseError(505, "HTTP version not supported")
            raise ParseError(400, "malformed request line")
        self._request_line = (method.decode("ascii"), target.decode("ascii"), http_version)

    def _on_head_complete(self, headers: Headers) -> None:
        method, target, http_version = self._request_line
        hosts = headers.get_all("Host")
        # RFC 9112 3.2: a server must answer 400 when Host is missing (1.1) or repeated.
        if len(hosts) > 1:
            raise ParseError(400, "more than one Host header")
        if not hosts and http_version == "1.1":
            raise ParseError(400, "missing Host header")
        transfer_encoding = headers.get_all("Transfer-Encoding")
        content_length = headers.get_all("Content-Length")
        if transfer_encoding:
            # RFC 9112 6.1 and 6.3: both framings at once is how requests get smuggled.
            if content_length:
                raise ParseError(400, "Content-Length and Transfer-Encoding together")
            if http_version == "1.0":
                raise ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
            chunked_is_final(transfer_encoding)
            self._events.append(RequestHead(method, target, http_version, headers))
            self._begin_chunked_body()
        elif content_length:
            length = parse_content_length(content_length)
            self._events.append(RequestHead(method, target, http_version, headers))
            if length > self._max_body_size:
                raise ParseError(413, f"Content-Length exceeds max_body_size={self._max_body_size}")
            self._begin_length_body(length)
        else:
            self._events.append(RequestHead(method, target, http_version, headers))
            self._begin_length_body(0)

    def _error_event(self, error: ParseError) -> BadRequest:
        return BadRequest(error.http_status, error.reason)


class ResponseParser(MessageParser):
    """Parse the response to a request sent by a client (the WebSocket opening handshake).

    After a 101 response head it stops: take_unparsed() returns the bytes that follow. Other
    responses have their body read (Content-Length, chunked, or until EOF), capped by
    ``max_body_size``; 1xx responses other than 101 are reported and skipped. Bad bytes give a
    BadResponse event.
    """

    def __init__(
        self, limits: HTTPLimits = DEFAULT_LIMITS, *, max_body_size: int | None = None
    ) -> None:
        self._max_start_line = limits.max_header_line
        self._status_line: tuple[str, int, str] = ("", 0, "")
        self._body_cap = limits.max_body_size if max_body_size is None else max_body_size
        super().__init__(limits)

    def _start_line_error(self) -> ParseError:
        return ParseError(400, f"status line exceeds max_header_line={self._max_start_line}")

    def events_received(self) -> list[ResponseEvent]:  # type: ignore[override]
        """Return the events parsed since the last call, in order."""
        return super().events_received()  # type: ignore[return-value]

    def _reset_message(self) -> None:
        super()._reset_message()
        self._max_body_size = self._body_cap

    def _parse_start_line(self, line: bytes) -> None:
        parts = line.split(b" ", 2)
        if len(parts) < 2:
            raise ParseError(400, "malformed status line")
        http_version = _VERSIONS.get(parts[0])
        if http_version is None:
            raise ParseError(400, "unsupported HTTP version in status line")
        if _STATUS_RE.fullmatch(parts[1]) is None:
            raise ParseError(400, "invalid status code")
        reason = parts[2] if len(parts) == 3 else b""
        if INVALID_VALUE_RE.search(reason) is not None:
            raise ParseError(400, "invalid character in reason phrase")
        self._status_line = (http_version, int(parts[1]), reason.decode("latin-1"))

    def _on_head_complete(self, headers: Headers) -> None:
        http_version, status, reason = self._status_line
        self._events.append(ResponseHead(http_version, status, reason, headers))
        if status == 101:
            self._state = State.UPGRADED
            return
        if status < 200:
            self._reset_message()
            self._state = State.START_LINE
            return
        transfer_encoding = headers.get_all("Transfer-Encoding")
        content_length = headers.get_all("Content-Length")
        if status in (204, 304):
            self._begin_length_body(0)
        elif transfer_encoding:
            if content_length:
                raise ParseError(400, "Content-Length and Transfer-Encoding together")
            chunked_is_final(transfer_encoding)
            self._begin_chunked_body()
        elif content_length:
            length = parse_content_length(content_length)
            if length > self._max_body_size:
                raise ParseError(400, f"Content-Length exceeds max_body_size={self._max_body_size}")
            self._begin_length_body(length)
        else:
            self._begin_body_until_eof()

    def _eof_at_boundary(self) -> None:
        raise ParseError(400, "connection closed before the response")

    def _error_event(self, error: ParseError) -> BadResponse:
        return BadResponse(error.reason)

    def take_unparsed(self) -> bytes:
        """Return the bytes received after a 101 response head, and stop parsing."""
        return super().take_unparsed()
