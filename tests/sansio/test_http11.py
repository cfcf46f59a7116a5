"""Tests for sansio/http11.py: the incremental HTTP/1.1 request and response parsers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    LAST_CHUNK,
    BadRequest,
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestEvent,
    RequestHead,
    RequestParser,
    ResponseEvent,
    ResponseHead,
    ResponseParser,
    encode_chunk,
    encode_request_head,
    encode_response_head,
    simple_response,
)
from framewire.sansio.limits import HTTPLimits
from tests.sansio.splits import byte_by_byte, random_splits, split_at

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


# Request line, headers, properties.


def test_get_request_gives_head_and_end_of_message() -> None:
    assert parse_all_ways(GET) == [
        head("GET", "/chat?room=1&x=", ("Host", "example.com")),
        EndOfMessage(Headers()),
    ]


def test_path_and_query_are_split_at_the_first_question_mark() -> None:
    request = head("GET", "/a%20b?x=1?y")
    assert (request.path, request.query) == ("/a%20b", "x=1?y")
    assert (head("GET", "/p").path, head("GET", "/p").query) == ("/p", "")


def test_header_lookup_is_case_insensitive_and_keeps_repeats() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:2\r\nX-B:  spaced value \t\r\n\r\n"
    request = parse_all_ways(data)[0]
    assert isinstance(request, RequestHead)
    assert request.headers.get_all("X-a") == ["1", "2"]
    assert request.headers["x-b"] == "spaced value"
    assert request.headers.items()[1] == ("X-A", "1")


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Upgrade, Close", False),
        ("1.0", None, False),
        ("1.0", "Keep-Alive", True),
        ("1.0", "keep-alive, close", False),
    ],
)
def test_keep_alive_follows_version_and_connection_header(
    version: str, connection: str | None, keep_alive: bool
) -> None:
    fields = [("Host", "h")] + ([("Connection", connection)] if connection else [])
    assert head("GET", "/", *fields, version=version).keep_alive is keep_alive


def test_expect_100_continue_is_flagged() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"
    request = parse_all_ways(data)[0]
    assert isinstance(request, RequestHead)
    assert request.expects_continue
    assert not head("GET", "/", ("Expect", "something-else")).expects_continue


def test_http_10_request_without_host_is_accepted() -> None:
    events = parse_all_ways(b"GET / HTTP/1.0\r\n\r\n")
    assert events == [head("GET", "/", version="1.0"), EndOfMessage(Headers())]


def test_empty_lines_before_the_request_line_are_ignored() -> None:
    assert parse_all_ways(b"\r\n\r\n" + GET) == parse_all_ways(GET)


# Bodies.


def test_content_length_body_is_read_to_the_exact_length() -> None:
    events = parse_all_ways(POST + GET)
    assert events[1:3] == [BodyData(b"hello world"), EndOfMessage(Headers())]
    assert isinstance(events[3], RequestHead)
    assert events[3].target == "/chat?room=1&x="


def test_chunked_body_with_extensions_and_trailers() -> None:
    events = parse_all_ways(CHUNKED)
    assert events[1:] == [
        BodyData(b"hello world"),
        EndOfMessage(Headers([("X-Checksum", "abc"), ("X-More", "1")])),
    ]


def test_request_pipelined_after_chunked_trailers_is_parsed_as_next_request() -> None:
    # aiohttp CVE-2025-53643: trailers left unparsed let a request hide in them.
    smuggled = b"GET /admin HTTP/1.1\r\nHost: h\r\n\r\n"
    data = CHUNKED.replace(b"X-More: 1\r\n\r\n", b"X-More: 1\r\n\r\n" + smuggled)
    events = parse_all_ways(data)
    assert [type(event) for event in events] == [
        RequestHead,
        BodyData,
        EndOfMessage,
        RequestHead,
        EndOfMessage,
    ]
    assert isinstance(events[3], RequestHead)
    assert events[3].target == "/admin"


def test_uppercase_chunk_size_and_chunked_token_case() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
    data += b"A\r\n0123456789\r\n0\r\n\r\n"
    assert parse_all_ways(data)[1] == BodyData(b"0123456789")


def test_content_length_zero_means_no_body() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    assert parse_all_ways(data)[1:] == [EndOfMessage(Headers())]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SAMPLES).flatmap(lambda data: st.tuples(st.just(data), random_splits(data))))
def test_any_split_gives_the_same_events(sample: tuple[bytes, list[bytes]]) -> None:
    data, pieces = sample
    assert parse_requests(pieces) == parse_requests([data])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    events = parse_requests(split_at(data, cuts), eof=True)
    assert sum(isinstance(event, BadRequest) for event in events) <= 1


# Pipelining and pausing.


def test_parser_pauses_after_each_request_until_next_request() -> None:
    parser = RequestParser()
    parser.receive_data(GET + POST + GET)
    events = parser.events_received()
    assert [type(event) for event in events] == [RequestHead, EndOfMessage]
    parser.receive_data(b"garbage that is not parsed yet")
    assert parser.events_received() == []
    parser.next_request()
    assert [type(event) for event in parser.events_received()] == [
        RequestHead,
        BodyData,
        EndOfMessage,
    ]


def test_three_pipelined_requests_in_one_chunk() -> None:
    events = parse_all_ways(GET + POST + GET)
    heads = [event for event in events if isinstance(event, RequestHead)]
    assert [request.method for request in heads] == ["GET", "POST", "GET"]
    assert sum(isinstance(event, EndOfMessage) for event in events) == 3


def test_next_request_before_end_of_message_is_misuse() -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(RuntimeError):
        parser.next_request()


def test_take_unparsed_returns_bytes_after_the_upgrade_request() -> None:
    upgrade = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    for pieces in ([upgrade + frame], byte_by_byte(upgrade + frame)):
        parser = RequestParser()
        events: list[RequestEvent] = []
        for piece in pieces:
            parser.receive_data(piece)
            events += parser.events_received()
        assert [type(event) for event in events] == [RequestHead, EndOfMessage]
        assert parser.take_unparsed() == frame
        parser.receive_data(b"more")
        assert parser.events_received() == []


# EOF.


def test_eof_at_a_request_boundary_is_clean() -> None:
    assert parse_requests([GET], eof=True) == parse_requests([GET])
    assert parse_requests([], eof=True) == []


@pytest.mark.parametrize("data", [b"GET / HT", GET[:-2], POST[:-3], CHUNKED[:-2]])
def test_eof_mid_request_is_400(data: bytes) -> None:
    events = parse_requests([data], eof=True)
    assert isinstance(events[-1], BadRequest)
    assert events[-1].http_status == 400


def test_eof_while_paused_applies_after_buffered_requests() -> None:
    parser = RequestParser()
    parser.receive_data(GET + b"GET /partial HTTP/1.1\r\n")
    parser.receive_eof()
    assert [type(event) for event in parser.events_received()] == [RequestHead, EndOfMessage]
    parser.next_request()
    events = parser.events_received()
    assert isinstance(events[-1], BadRequest)


# Smuggling and grammar (RFC 9112), SECURITY-HISTORY cases.

SMUGGLING = [
    # (request, status, reason contains)
    (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        400,
        "duplicate",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        400,
        "duplicate",
    ),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400, "Content-Length"),
    (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "Content-Length and Transfer-Encoding together",
    ),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "chunked"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400, "chunked"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "once"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported"),
    (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
        400,
        "chunked",
    ),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400, "whitespace"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Encoding?: x\r\n\r\n", 400, "header name"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", 400, "folding"),
    (b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "folding"),
    (b"GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n", 400, "bare CR"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400, "header value"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400, "header value"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x1bb\r\n\r\n", 400, "header value"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n", 400, "colon"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n", 400, "header name"),
    (b"GET / HTTP/1\xc3\xb61\r\nHost: h\r\n\r\n", 505, "version"),
    ("GET / HTTP/1.\U0001d7d9\r\nHost: h\r\n\r\n".encode(), 505, "version"),
    (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "version"),
    (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "request line"),
    (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request line"),
    (b"GET / http/1.1\r\nHost: h\r\n\r\n", 400, "request line"),
    (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "target"),
    (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "method"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"),
]


@pytest.mark.parametrize(("data", "status", "reason"), SMUGGLING)
def test_request_smuggling_and_grammar_errors(data: bytes, status: int, reason: str) -> None:
    got_status, got_reason = error_of(data)
    assert got_status == status
    assert reason in got_reason
    assert len(got_reason) < 80 and "\r" not in got_reason and "\n" not in got_reason


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([data for data, _, _ in SMUGGLING]).flatmap(
        lambda data: st.tuples(st.just(data), random_splits(data))
    )
)
def test_smuggling_errors_do_not_depend_on_the_split(sample: tuple[bytes, list[bytes]]) -> None:
    data, pieces = sample
    assert parse_requests(pieces) == parse_requests([data])


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"x\r\n", "invalid chunk size"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        (b"5 x\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        (b"\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        (b"1" * 17 + b"\r\n", "overflow"),
        (b"fffffffffffffffffffffff\r\n", "overflow"),
        (b"5;a=b\nc\r\nhello\r\n0\r\n\r\n", "bare LF"),  # aiohttp CVE-2024-52304
        (b"5;a\x00\r\nhello\r\n0\r\n\r\n", "chunk extension"),
        (b"5\r\nhelloXX0\r\n\r\n", "CRLF"),
        (b"5\r\nhello\n0\r\n\r\n", "CRLF"),
        (b"5\r\nhello\r\n0\r\nX: 1\n\r\n", "bare LF"),
        (b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", "colon"),
    ],
)
def test_invalid_chunked_bodies_are_400(body: bytes, reason: str) -> None:
    status, got_reason = error_of(CHUNKED_HEAD + body)
    assert status == 400
    assert reason in got_reason


def test_chunk_size_with_leading_zeros_is_accepted() -> None:
    events = parse_all_ways(CHUNKED_HEAD + b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n")
    assert events[1] == BodyData(b"hello")


def test_header_values_may_hold_obs_text_decoded_as_latin1() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: name=caf\xc3\xa9\r\n\r\n"
    request = parse_all_ways(data)[0]
    assert isinstance(request, RequestHead)
    assert request.headers["Cookie"] == "name=caf\xc3\xa9"


def test_nothing_is_parsed_after_bad_request() -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\nHost: h\n\n" + GET)
    assert [type(event) for event in parser.events_received()] == [BadRequest]
    parser.receive_data(GET)
    parser.receive_eof()
    assert parser.events_received() == []


# Limits.

SMALL = HTTPLimits(
    max_request_line=64,
    max_header_line=64,
    max_headers=4,
    max_head_size=200,
    max_body_size=100,
    max_chunks=5,
    max_chunk_line=16,
)


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", 414, "max_request_line=64"),
        (b"GET /" + b"a" * 100, 414, "max_request_line=64"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70 + b"\r\n\r\n", 431, "max_header_line=64"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70, 431, "max_header_line=64"),
        (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 5 + b"\r\n", 431, "max_headers=4"),
        (b"GET / HTTP/1.1\r\n" + (b"X: " + b"a" * 55 + b"\r\n") * 4, 431, "max_head_size=200"),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413, "max_body_size=100"),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            413,
            "max_body_size=100",
        ),
        (CHUNKED_HEAD + b"64\r\n" + b"a" * 100 + b"\r\n1\r\n", 413, "max_body_size=100"),
        (CHUNKED_HEAD + b"1\r\na\r\n" * 6, 413, "max_chunks=5"),
        (CHUNKED_HEAD + b"1;" + b"x" * 20 + b"\r\n", 400, "max_chunk_line=16"),
        (CHUNKED_HEAD + b"1" + b" " * 20, 400, "max_chunk_line=16"),
        (CHUNKED_HEAD + b"0\r\n" + b"T: 1\r\n" * 5 + b"\r\n", 431, "max_headers=4"),
    ],
)
def test_limits_give_the_right_status(data: bytes, status: int, reason: str) -> None:
    got_status, got_reason = error_of(data, limits=SMALL)
    assert (got_status, reason in got_reason) == (status, True), got_reason


def test_request_with_exactly_max_headers_passes() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 1\r\n" * 3 + b"\r\n"
    assert isinstance(parse_all_ways(data, limits=SMALL)[-1], EndOfMessage)


def test_body_of_exactly_max_body_size_passes() -> None:
    body = b"a" * 100
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + body
    assert parse_all_ways(data, limits=SMALL)[1] == BodyData(body)


def test_set_max_body_size_raises_the_limit_of_the_current_request() -> None:
    parser = RequestParser(SMALL)
    parser.receive_data(CHUNKED_HEAD)
    assert [type(event) for event in parser.events_received()] == [RequestHead]
    parser.set_max_body_size(1000)
    parser.receive_data(b"c8\r\n" + b"a" * 200 + b"\r\n0\r\n\r\n")
    assert parser.events_received() == [BodyData(b"a" * 200), EndOfMessage(Headers())]
    parser.next_request()  # the limit is back to SMALL.max_body_size
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n")
    assert parser.events_received()[-1] == BadRequest(
        413, "Content-Length exceeds max_body_size=100"
    )


def test_set_max_body_size_below_the_announced_length_is_413_at_once() -> None:
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n0123456789")
    assert [type(event) for event in parser.events_received()] == [RequestHead, BodyData]
    parser.set_max_body_size(20)
    assert parser.events_received() == [BadRequest(413, "body exceeds max_body_size=20")]


def test_request_with_limit_plus_one_headers_gets_431_not_a_crash() -> None:
    # ws CVE-2024-37890: more headers than the limit dropped a key header and crashed.
    limits = HTTPLimits()
    fields = b"".join(b"X-%d: %d\r\n" % (index, index) for index in range(limits.max_headers))
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n"
    assert error_of(data)[0] == 431


# Linear time.


def best_time(function: Callable[[], object], repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def feed_bytewise(data: bytes) -> None:
    parser = RequestParser(HTTPLimits(max_header_line=1 << 20, max_head_size=1 << 20))
    for index in range(len(data)):
        parser.receive_data(data[index : index + 1])
    assert isinstance(parser.events_received()[-1], EndOfMessage)


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_head_fed_one_byte_per_call_costs_linear_time() -> None:
    def request(size: int) -> bytes:
        return b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"a" * size + b"\r\n\r\n"

    small, large = request(8_000), request(32_000)
    ratio = best_time(lambda: feed_bytewise(large)) / best_time(lambda: feed_bytewise(small))
    assert ratio < 10  # linear: about 4; rescanning the line on each call: about 16


def chunked_body_of_one_byte_chunks(count: int) -> bytes:
    return CHUNKED_HEAD + b"1\r\nx\r\n" * count + LAST_CHUNK


def parse_whole(data: bytes, limits: HTTPLimits) -> list[RequestEvent]:
    parser = RequestParser(limits)
    parser.receive_data(data)
    while parser.has_more_to_parse:
        parser.parse_more()
    return merged(parser.events_received())  # type: ignore[return-value]


def test_one_byte_chunks_make_one_body_event() -> None:
    limits = HTTPLimits(max_chunks=100_000, max_body_size=100_000)
    events = parse_whole(chunked_body_of_one_byte_chunks(100_000), limits)
    assert events[1:] == [BodyData(b"x" * 100_000), EndOfMessage(Headers())]


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_a_million_one_byte_chunks_cost_linear_time_and_one_event() -> None:
    # aiohttp CVE-2025-69229: O(N^2) chunk bookkeeping. Tornado "chunkloris": per-chunk cost.
    limits = HTTPLimits(max_chunks=1_000_000, max_body_size=1_000_000)
    million = chunked_body_of_one_byte_chunks(1_000_000)
    eighth = chunked_body_of_one_byte_chunks(125_000)
    elapsed_eighth = best_time(lambda: parse_whole(eighth, limits), repeat=2)
    start = time.perf_counter()
    events = parse_whole(million, limits)
    elapsed_million = time.perf_counter() - start
    assert events[1:] == [BodyData(b"x" * 1_000_000), EndOfMessage(Headers())]
    assert elapsed_million / elapsed_eighth < 16  # linear: about 8; quadratic: about 64
    assert elapsed_million < 30  # generous: a few µs per chunk on a loaded machine


def test_chunks_past_max_chunks_are_refused_early() -> None:
    data = chunked_body_of_one_byte_chunks(10)
    assert error_of(data, limits=HTTPLimits(max_chunks=9))[0] == 413


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
@pytest.mark.parametrize("filler", [b",", b";", b" ,", b"a;", b'"a";'])
def test_64k_header_of_repeats_parses_in_linear_time(filler: bytes) -> None:
    # Tornado CVE-2025-67725/67726, ws CVE-2021-32640: quadratic parsing of odd header values.
    limits = HTTPLimits(max_header_line=1 << 17, max_head_size=1 << 18)

    def request(size: int) -> bytes:
        value = (filler * (size // len(filler) + 1))[:size]
        return (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: "
            + value
            + b"\r\nTransfer-Encoding: "
            + value
            + b"\r\nExpect: "
            + value
            + b"\r\n\r\n"
        )

    def run(size: int) -> None:
        events = parse_whole(request(size), limits)
        assert isinstance(events[-1], BadRequest)  # Transfer-Encoding without chunked
        assert isinstance(RequestHead("GET", "/", "1.1", Headers()), RequestHead)

    elapsed = best_time(lambda: run(65536))
    assert elapsed < 0.5


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_64k_of_repeated_headers_parse_in_linear_time() -> None:
    limits = HTTPLimits(max_headers=20_000, max_head_size=1 << 20)
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"Connection: a,\r\n" * 4096 + b"\r\n"
    start = time.perf_counter()
    events = parse_whole(data, limits)
    assert isinstance(events[0], RequestHead)
    assert events[0].keep_alive
    assert time.perf_counter() - start < 0.5


# Response parser (client side).


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


SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def test_101_response_stops_and_leaves_the_rest_unparsed() -> None:
    frame = b"\x81\x05hello"
    for pieces in ([SWITCHING + frame], byte_by_byte(SWITCHING + frame)):
        events, parser = parse_response(pieces)
        assert len(events) == 1
        assert isinstance(events[0], ResponseHead)
        assert (events[0].status, events[0].reason) == (101, "Switching Protocols")
        assert events[0].headers["upgrade"] == "websocket"
        assert parser.take_unparsed() == frame


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nnope!\n", b"nope!\n"),
        (b"HTTP/1.1 400 \r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n0\r\n\r\n", b"bad"),
        (b"HTTP/1.0 404\r\n\r\nuntil eof", b"until eof"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", b""),
    ],
)
def test_other_responses_have_their_body_read(data: bytes, body: bytes) -> None:
    events = response_all_ways(data, eof=True)
    assert isinstance(events[0], ResponseHead)
    bodies = [event.data for event in events if isinstance(event, BodyData)]
    assert b"".join(bodies) == body
    assert isinstance(events[-1], EndOfMessage)


def test_response_body_is_capped() -> None:
    events = response_all_ways(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 50, max_body_size=10)
    assert events[-1] == BadResponse("body exceeds max_body_size=10")
    events = response_all_ways(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", max_body_size=10)
    assert events[-1] == BadResponse("Content-Length exceeds max_body_size=10")


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 99 Low\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_malformed_responses_give_bad_response(data: bytes) -> None:
    events = response_all_ways(data)
    assert isinstance(events[-1], BadResponse)


def test_eof_before_any_response_is_bad_response() -> None:
    events, _ = parse_response([], eof=True)
    assert events == [BadResponse("connection closed before the response")]


# Encoders.


def test_encoded_request_head_round_trips() -> None:
    fields = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("X-Repeat", "1"),
        ("X-Repeat", "2"),
    ]
    data = encode_request_head("GET", "/ws?x=1", fields)
    assert data.startswith(b"GET /ws?x=1 HTTP/1.1\r\n")
    assert parse_all_ways(data) == [head("GET", "/ws?x=1", *fields), EndOfMessage(Headers())]


def test_encoded_response_head_and_chunks_round_trip() -> None:
    data = encode_response_head(200, [("Transfer-Encoding", "chunked")])
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    data += encode_chunk(b"hello ") + encode_chunk(b"") + encode_chunk(b"world") + LAST_CHUNK
    events = response_all_ways(data)
    assert events[0] == ResponseHead("1.1", 200, "OK", Headers([("Transfer-Encoding", "chunked")]))
    assert events[1:] == [BodyData(b"hello world"), EndOfMessage(Headers())]


def test_encode_response_head_uses_the_given_reason() -> None:
    assert encode_response_head(599, [], "Custom").startswith(b"HTTP/1.1 599 Custom\r\n")
    assert encode_response_head(599, []).startswith(b"HTTP/1.1 599 \r\n")


def test_simple_response_is_a_complete_text_response() -> None:
    data = simple_response(426, "upgrade required", [("Upgrade", "websocket")])
    events = response_all_ways(data)
    assert isinstance(events[0], ResponseHead)
    assert events[0].status == 426
    assert events[0].headers["Content-Type"] == "text/plain; charset=utf-8"
    assert events[0].headers["Upgrade"] == "websocket"
    assert events[1:] == [BodyData(b"upgrade required\n"), EndOfMessage(Headers())]


@pytest.mark.parametrize(
    "fields",
    [
        [("X-A", "v\r\nSet-Cookie: evil")],
        [("X-A", "v\nx")],
        [("X-A", "v\x00")],
        [("Bad Name", "v")],
        [("X-A\r\n", "v")],
        [("X-A", "\u0100")],
    ],
)
def test_encoders_refuse_header_injection(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        encode_response_head(200, fields)
    with pytest.raises(ValueError):
        encode_request_head("GET", "/", fields)


BAD_START_LINES: list[Callable[[], bytes]] = [
    lambda: encode_request_head("GE T", "/", []),
    lambda: encode_request_head("GET", "/a b", []),
    lambda: encode_request_head("GET", "/\u00e9", []),
    lambda: encode_response_head(42, []),
    lambda: encode_response_head(200, [], "OK\r\nX: y"),
]


@pytest.mark.parametrize("call", BAD_START_LINES)
def test_encoders_refuse_bad_start_lines(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


def test_one_call_parses_a_bounded_number_of_chunks_and_the_rest_follows() -> None:
    """A read full of tiny chunks must not hold the event loop (aiohttp CVE-2025-69229)."""
    parser = RequestParser(HTTPLimits(max_body_size=1 << 20))
    parser.receive_data(chunked_body_of_one_byte_chunks(20_000))
    first = parser.events_received()
    assert parser.has_more_to_parse
    received = sum(len(e.data) for e in first if isinstance(e, BodyData))
    assert 0 < received < 20_000
    calls = 1
    while parser.has_more_to_parse:
        parser.parse_more()
        calls += 1
    rest = parser.events_received()
    assert received + sum(len(e.data) for e in rest if isinstance(e, BodyData)) == 20_000
    assert isinstance(rest[-1], EndOfMessage)
    assert calls >= 20_000 * 3 // (256 * 32)  # three states per chunk, at most 256 x 32 per call


field_lines = st.one_of(
    st.tuples(
        st.sampled_from([b"Host", b"X-A", b"content-length", b"Transfer-Encoding", b"a b", b""]),
        st.sampled_from([b":", b" :", b""]),
        st.binary(max_size=12) | st.sampled_from([b" 5 ", b"chunked", b"\t x\t", b"\x80\xff"]),
    ).map(b"".join),
    st.binary(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(field_lines, max_size=6))
def test_a_whole_head_parses_exactly_as_it_does_line_by_line(lines: list[bytes]) -> None:
    """A head that arrives whole takes the one-step path (http11_framing._step_whole_head);
    fed one byte at a time it goes line by line: same events, same errors."""
    data = b"GET / HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    one_byte_at_a_time = [data[index : index + 1] for index in range(len(data))]
    assert parse_requests([data]) == parse_requests(one_byte_at_a_time)
