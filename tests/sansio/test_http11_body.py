"""Body framing of the HTTP/1.1 parsers (sansio/http11_body.py, RFC 9112 6 and 7.1): bodies
by Content-Length and chunked, chunk extensions and trailers, max_body_size and max_chunks,
and one BodyData event for many small chunks. Each parser is fed whole and byte by byte."""

from __future__ import annotations

import time

import pytest

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    BadRequest,
    BodyData,
    EndOfMessage,
    RequestHead,
    RequestParser,
)
from framewire.sansio.limits import HTTPLimits
from tests.sansio.http11_helpers import (
    CHUNKED,
    CHUNKED_HEAD,
    GET,
    POST,
    SMALL,
    best_time,
    chunked_body_of_one_byte_chunks,
    error_of,
    parse_all_ways,
    parse_whole,
)


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
