"""Tests for sansio/http11.py: the incremental HTTP/1.1 request and response parsers, from the
request line to pipelining, EOF and the smuggling rules. Bodies are test_http11_body.py, the
shared buffer and limits test_http11_framing.py, the events test_http11_events.py, the
serializers test_http11_encode.py and the grammar test_http11_grammar.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    BadRequest,
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestEvent,
    RequestHead,
    RequestParser,
    ResponseHead,
)
from tests.sansio.http11_helpers import (
    CHUNKED,
    GET,
    POST,
    SAMPLES,
    error_of,
    head,
    parse_all_ways,
    parse_requests,
    parse_response,
    response_all_ways,
)
from tests.sansio.splits import byte_by_byte, random_splits, split_at

# Request line, headers, properties.


def test_get_request_gives_head_and_end_of_message() -> None:
    assert parse_all_ways(GET) == [
        head("GET", "/chat?room=1&x=", ("Host", "example.com")),
        EndOfMessage(Headers()),
    ]


def test_header_lookup_is_case_insensitive_and_keeps_repeats() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:2\r\nX-B:  spaced value \t\r\n\r\n"
    request = parse_all_ways(data)[0]
    assert isinstance(request, RequestHead)
    assert request.headers.get_all("X-a") == ["1", "2"]
    assert request.headers["x-b"] == "spaced value"
    assert request.headers.items()[1] == ("X-A", "1")


def test_http_10_request_without_host_is_accepted() -> None:
    events = parse_all_ways(b"GET / HTTP/1.0\r\n\r\n")
    assert events == [head("GET", "/", version="1.0"), EndOfMessage(Headers())]


def test_empty_lines_before_the_request_line_are_ignored() -> None:
    assert parse_all_ways(b"\r\n\r\n" + GET) == parse_all_ways(GET)


# Any split, any bytes (bodies: test_http11_body.py).


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


def test_header_values_may_hold_obs_text_decoded_as_latin1() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: name=caf\xc3\xa9\r\n\r\n"
    request = parse_all_ways(data)[0]
    assert isinstance(request, RequestHead)
    assert request.headers["Cookie"] == "name=caf\xc3\xa9"


# Response parser (client side).


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
