"""The handshake's fast path (sansio/upgrade_request.py): both twins parse the plain upgrade
request, agree with each other, and never accept what the general path (RequestParser, then
accept_request) would answer differently; for anything else they return None."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.exceptions import InvalidHandshake
from framewire.sansio.handshake import accept_key, accept_request
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import RequestParser
from framewire.sansio.http11_events import RequestHead
from framewire.sansio.limits import HTTPLimits
from framewire.sansio.upgrade_request import UpgradeRequest, py_parse_upgrade_request
from tests.conftest import c_twin_or_skip

Parse = Callable[[bytes | bytearray | memoryview, int, int, int, int], UpgradeRequest | None]
LIMITS = HTTPLimits()
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
FIELDS = [
    ("Host", "example.com:8080"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def replaced(name: str, value: str) -> list[tuple[str, str]]:
    """FIELDS with the value of ``name`` replaced."""
    return [(n, value if n == name else v) for n, v in FIELDS]


def request(fields: list[tuple[str, str]] = FIELDS, line: str = "GET /chat?a=1 HTTP/1.1") -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return f"{line}\r\n{lines}\r\n".encode("latin-1")


def limits_of(limits: HTTPLimits) -> tuple[int, int, int, int]:
    return limits.max_request_line, limits.max_head_size, limits.max_header_line, limits.max_headers


@pytest.fixture(params=["python", "c"])
def parse(request: pytest.FixtureRequest) -> Parse:
    """py_parse_upgrade_request, then the C twin (skipped when the extension was not built)."""
    if request.param == "python":
        return py_parse_upgrade_request
    c_parse: Parse = c_twin_or_skip("parse_upgrade_request")
    return c_parse


def general_path(data: bytes, limits: HTTPLimits = LIMITS) -> tuple[str, Headers, bytes] | None:
    """What RequestParser and accept_request make of ``data``: None unless they accept it."""
    parser = RequestParser(limits)
    parser.receive_data(data)
    events = parser.events_received()
    if not events or not isinstance(events[0], RequestHead):
        return None
    head = events[0]
    try:
        result = accept_request(head.method, head.http_version, head.headers)
    except InvalidHandshake:
        return None
    accept = dict(result.headers)["Sec-WebSocket-Accept"].encode("ascii")
    return head.target, head.headers, accept


def test_the_rfc_example_is_parsed_with_its_accept_value(parse: Parse) -> None:
    data = request() + b"\x81\x80frame"
    result = parse(data, *limits_of(LIMITS))
    assert result is not None
    target, fields, index, accept, head_length = result
    assert target == "/chat?a=1"
    assert fields == FIELDS
    assert index["sec-websocket-key"] == [KEY]
    assert accept == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
    assert data[head_length:] == b"\x81\x80frame"


def test_a_memoryview_of_a_larger_buffer_is_read_up_to_its_end(parse: Parse) -> None:
    buffer = bytearray(request() + b"more")
    assert parse(memoryview(buffer)[: len(request())], *limits_of(LIMITS)) is not None
    assert parse(memoryview(buffer)[: len(request()) - 1], *limits_of(LIMITS)) is None


def test_the_accept_value_is_sha1_and_base64_for_any_key(parse: Parse) -> None:
    for _ in range(200):
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        result = parse(request(replaced("Sec-WebSocket-Key", key)), *limits_of(LIMITS))
        assert result is not None
        assert result[3] == accept_key(key).encode("ascii")


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("Upgrade", "WebSocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Connection", "upgrade,keep-alive"),
        ("Connection", "\tUPGRADE , close"),
    ],
)
def test_accepted_variants_match_the_general_path(parse: Parse, change: str, value: str) -> None:
    data = request(replaced(change, value))
    result = parse(data, *limits_of(LIMITS))
    assert result is not None
    general = general_path(data)
    assert general is not None
    target, fields, index, accept, _ = result
    assert (target, Headers.from_parsed(fields, index), accept) == general


MISSING = object()


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("POST /chat HTTP/1.1", FIELDS),  # 405 on the general path
        ("GET /chat HTTP/1.0", FIELDS),  # 400
        ("GET /chat HTTP/2.0", FIELDS),  # 505
        ("get /chat HTTP/1.1", FIELDS),  # a method, but not GET
        ("GET  /chat HTTP/1.1", FIELDS),  # malformed line
        ("GET /ch\x7fat HTTP/1.1", FIELDS),  # invalid target
        ("GET /chat HTTP/1.1", FIELDS[1:]),  # no Host
        ("GET /chat HTTP/1.1", [*FIELDS, ("Host", "b")]),  # two Hosts
        ("GET /chat HTTP/1.1", [f for f in FIELDS if f[0] != "Upgrade"]),
        ("GET /chat HTTP/1.1", [*FIELDS, ("Upgrade", "h2c")]),
        ("GET /chat HTTP/1.1", replaced("Upgrade", "websocket, h2c")),
        ("GET /chat HTTP/1.1", replaced("Connection", "keep-alive")),
        ("GET /chat HTTP/1.1", replaced("Sec-WebSocket-Version", "8")),
        ("GET /chat HTTP/1.1", [*FIELDS, ("Sec-WebSocket-Version", "13")]),
        ("GET /chat HTTP/1.1", replaced("Sec-WebSocket-Key", KEY[:-2])),
        ("GET /chat HTTP/1.1", replaced("Sec-WebSocket-Key", KEY + "A")),
        ("GET /chat HTTP/1.1", replaced("Sec-WebSocket-Key", "!" + KEY[1:])),
        ("GET /chat HTTP/1.1", [*FIELDS, ("Sec-WebSocket-Key", KEY)]),
        ("GET /chat HTTP/1.1", [*FIELDS, ("Content-Length", "0")]),  # left to the general path
        ("GET /chat HTTP/1.1", [*FIELDS, ("Transfer-Encoding", "chunked")]),
        ("GET /chat HTTP/1.1", [*FIELDS, ("Bad Name", "x")]),  # malformed field line
        ("GET /chat HTTP/1.1", [*FIELDS, ("X-Value", "a\rb")]),  # bare CR
    ],
)
def test_anything_else_is_left_to_the_general_path(
    parse: Parse, line: str, fields: list[tuple[str, str]]
) -> None:
    assert parse(request(fields, line), *limits_of(LIMITS)) is None


def test_an_incomplete_head_or_one_after_empty_lines_is_left_to_the_general_path(
    parse: Parse,
) -> None:
    data = request()
    for end in range(len(data)):
        assert parse(data[:end], *limits_of(LIMITS)) is None
    assert parse(b"\r\n" + data, *limits_of(LIMITS)) is None
    assert parse(b"GET / HTTP/1.1\r\n\r\n", *limits_of(LIMITS)) is None


def test_each_limit_is_inclusive_and_left_to_the_general_path_past_it(parse: Parse) -> None:
    data = request()
    line_length = data.index(b"\r\n")
    header_line = max(len(f"{name}: {value}") for name, value in FIELDS)
    exact = HTTPLimits(
        max_request_line=line_length,
        max_head_size=len(data),
        max_header_line=header_line,
        max_headers=len(FIELDS),
    )
    assert parse(data, *limits_of(exact)) is not None
    assert general_path(data, exact) is not None
    for position in range(4):
        bounds = list(limits_of(exact))
        bounds[position] -= 1
        assert parse(data, *bounds) is None, bounds


_FIELD_CHOICES = st.sampled_from(
    [
        ("Host", "example.com"),
        ("host", "a"),
        ("Upgrade", "websocket"),
        ("upgrade", "WEBSOCKET"),
        ("Upgrade", "websocket, h2c"),
        ("Connection", "Upgrade"),
        ("connection", "keep-alive, upgrade"),
        ("Connection", "close"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="),
        ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Version", "8"),
        ("Content-Length", "0"),
        ("Content-Length", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Origin", "http://example.com"),
        ("X-Other", " spaced\tvalue "),
        ("Bad:Name", "x"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.lists(_FIELD_CHOICES, max_size=9),
    line=st.sampled_from(["GET / HTTP/1.1", "GET /x?y HTTP/1.1", "HEAD / HTTP/1.1", "GET / 1.0"]),
    tail=st.binary(max_size=8),
)
def test_the_fast_path_never_accepts_what_the_general_path_would_answer_differently(
    fields: list[tuple[str, str]], line: str, tail: bytes
) -> None:
    data = request(fields, line) + tail
    general = general_path(data)
    for parse in (py_parse_upgrade_request, c_twin_or_skip("parse_upgrade_request")):
        result = parse(data, *limits_of(LIMITS))
        if result is not None:
            target, found, index, accept, head_length = result
            assert (target, Headers.from_parsed(found, index), accept) == general
            assert data[head_length:] == tail


@settings(max_examples=500, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda cut, junk, at: (lambda base: base[:at] + junk + base[at + cut :])(request()),
            st.integers(0, 4),
            st.binary(max_size=3),
            st.integers(0, len(request())),
        ),
    )
)
def test_the_twins_agree_on_any_bytes(data: bytes) -> None:
    c_parse: Parse = c_twin_or_skip("parse_upgrade_request")
    assert c_parse(data, *limits_of(LIMITS)) == py_parse_upgrade_request(data, *limits_of(LIMITS))


def test_wrong_arguments_raise(parse: Parse) -> None:
    with pytest.raises(TypeError):
        parse(request(), 1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        parse("text", *limits_of(LIMITS))  # type: ignore[arg-type]
