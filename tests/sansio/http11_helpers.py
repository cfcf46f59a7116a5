"""Helpers shared by the HTTP/1.1 parser tests (tests/sansio/test_http11*.py): feeding a parser
whole, byte by byte or in pieces, and sample messages."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    LAST_CHUNK,
    BadRequest,
    BodyData,
    EndOfMessage,
    RequestEvent,
    RequestHead,
    RequestParser,
    ResponseEvent,
    ResponseParser,
)
from framewire.sansio.limits import HTTPLimits
from tests.sansio.splits import byte_by_byte

Event = RequestEvent | ResponseEvent


def merged(events: Sequence[Event]) -> list[Event]:
    """Join adjacent BodyData events: how a body is cut into events depends on the reads."""
    result: list[Event] = []
    for event in events:
        if isinstance(event, BodyData) and result and isinstance(result[-1], BodyData):
            result[-1] = BodyData(result[-1].data + event.data)
        elif not (isinstance(event, BodyData) and not event.data):
            result.append(event)
    return result


def parse_requests(
    pieces: Sequence[bytes], *, eof: bool = False, limits: HTTPLimits | None = None
) -> list[RequestEvent]:
    """Feed pieces to a RequestParser, moving to the next request after each EndOfMessage."""
    parser = RequestParser(limits or HTTPLimits())
    events: list[RequestEvent] = []

    def collect() -> None:
        while True:
            while parser.has_more_to_parse:
                parser.parse_more()
            new = parser.events_received()
            events.extend(new)
            if not new or not isinstance(new[-1], EndOfMessage):
                return
            parser.next_request()

    for piece in pieces:
        parser.receive_data(piece)
        collect()
    if eof:
        parser.receive_eof()
        collect()
    return merged(events)  # type: ignore[return-value]


def parse_all_ways(data: bytes, **kwargs: object) -> list[RequestEvent]:
    """Parse ``data`` whole and byte by byte; assert both give the same events."""
    whole = parse_requests([data], **kwargs)  # type: ignore[arg-type]
    assert parse_requests(byte_by_byte(data), **kwargs) == whole  # type: ignore[arg-type]
    return whole


def head(method: str, target: str, *fields: tuple[str, str], version: str = "1.1") -> RequestHead:
    return RequestHead(method, target, version, Headers(fields))


def error_of(data: bytes, **kwargs: object) -> tuple[int, str]:
    """Return (status, reason) of the BadRequest that ``data`` must produce."""
    events = parse_all_ways(data, **kwargs)
    assert isinstance(events[-1], BadRequest), events
    assert not any(isinstance(event, BadRequest) for event in events[:-1])
    return events[-1].http_status, events[-1].reason


GET = b"GET /chat?room=1&x= HTTP/1.1\r\nHost: example.com\r\n\r\n"


POST = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"


CHUNKED = (
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;name=value;flag\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"
)


SAMPLES = [GET, POST, CHUNKED, GET + POST + CHUNKED + GET]


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


SMALL = HTTPLimits(
    max_request_line=64,
    max_header_line=64,
    max_headers=4,
    max_head_size=200,
    max_body_size=100,
    max_chunks=5,
    max_chunk_line=16,
)


def best_time(function: Callable[[], object], repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def chunked_body_of_one_byte_chunks(count: int) -> bytes:
    return CHUNKED_HEAD + b"1\r\nx\r\n" * count + LAST_CHUNK


def parse_whole(data: bytes, limits: HTTPLimits) -> list[RequestEvent]:
    parser = RequestParser(limits)
    parser.receive_data(data)
    while parser.has_more_to_parse:
        parser.parse_more()
    return merged(parser.events_received())  # type: ignore[return-value]


def parse_response(
    pieces: Sequence[bytes], *, eof: bool = False, max_body_size: int | None = None
) -> tuple[list[ResponseEvent], ResponseParser]:
    parser = ResponseParser(max_body_size=max_body_size)
    events: list[ResponseEvent] = []
    for piece in pieces:
        parser.receive_data(piece)
        while parser.has_more_to_parse:
            parser.parse_more()
        events += parser.events_received()
    if eof:
        parser.receive_eof()
        while parser.has_more_to_parse:
            parser.parse_more()
        events += parser.events_received()
    return merged(events), parser  # type: ignore[return-value]


def response_all_ways(data: bytes, **kwargs: object) -> list[ResponseEvent]:
    whole, _ = parse_response([data], **kwargs)  # type: ignore[arg-type]
    bytewise, _ = parse_response(byte_by_byte(data), **kwargs)  # type: ignore[arg-type]
    assert whole == bytewise
    return whole
