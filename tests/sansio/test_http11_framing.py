"""The machinery the HTTP/1.1 parsers share (sansio/http11_framing.py): the buffer searched in
linear time however the head is fed, the limits on lines, fields and heads, a whole head parsed
in one step exactly as line by line, and nothing parsed after an error."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    BadRequest,
    EndOfMessage,
    RequestHead,
    RequestParser,
)
from framewire.sansio.limits import HTTPLimits
from tests.sansio.http11_helpers import (
    CHUNKED_HEAD,
    GET,
    SMALL,
    best_time,
    error_of,
    parse_all_ways,
    parse_requests,
    parse_whole,
)


def test_nothing_is_parsed_after_bad_request() -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\nHost: h\n\n" + GET)
    assert [type(event) for event in parser.events_received()] == [BadRequest]
    parser.receive_data(GET)
    parser.receive_eof()
    assert parser.events_received() == []


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


def test_request_with_limit_plus_one_headers_gets_431_not_a_crash() -> None:
    # ws CVE-2024-37890: more headers than the limit dropped a key header and crashed.
    limits = HTTPLimits()
    fields = b"".join(b"X-%d: %d\r\n" % (index, index) for index in range(limits.max_headers))
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n"
    assert error_of(data)[0] == 431


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
