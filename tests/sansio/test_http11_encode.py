"""The HTTP/1.1 serializers (sansio/http11_encode.py): heads and chunks round trip through the
parsers, and values that would split a message are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    LAST_CHUNK,
    BodyData,
    EndOfMessage,
    ResponseHead,
)
from framewire.sansio.http11_encode import (
    encode_chunk,
    encode_request_head,
    encode_response_head,
    simple_response,
)
from tests.sansio.http11_helpers import head, parse_all_ways, response_all_ways


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
