"""Field lines in one call: the request-head fast path (sansio/field_lines.py) agrees in C and
Python, and with parsing line by line (parse_field_line); the C encoder of header fields agrees
with py_encode_fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio.field_lines import ParsedFields, py_parse_field_lines
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import RequestParser
from framewire.sansio.http11_encode import encode_response_head, py_encode_fields
from framewire.sansio.http11_events import BadRequest, RequestHead
from framewire.sansio.http11_grammar import ParseError, parse_field_line
from tests.conftest import c_twin_or_skip

Parse = Callable[[bytes | bytearray, int, int, int, int], ParsedFields | None]


@pytest.fixture(params=["python", "c"])
def parse(request: pytest.FixtureRequest) -> Parse:
    """py_parse_field_lines, then the C twin (skipped when the extension was not built)."""
    if request.param == "python":
        return py_parse_field_lines
    c_parse: Parse = c_twin_or_skip("parse_field_lines")
    return c_parse


def test_fields_keep_order_and_case_and_index_by_lower_case(parse: Parse) -> None:
    section = b"Host: a\r\nX-Two:  b c \t\r\nhost: \xe9t\xe9\r\nEmpty:"
    buffer = bytearray(b"GET / HTTP/1.1\r\n" + section + b"\r\n\r\n")
    start = buffer.index(b"Host")
    assert parse(buffer, start, start + len(section), 100, 10) == (
        [("Host", "a"), ("X-Two", "b c"), ("host", "été"), ("Empty", "")],
        {"host": ["a", "été"], "x-two": ["b c"], "empty": [""]},
    )


@pytest.mark.parametrize(
    ("section", "max_line", "max_fields"),
    [
        (b"A: b\r\nC: d", 100, 1),  # too many lines
        (b"A: b\r\nLonger: value", 10, 10),  # a line over max_line
        (b" A: b", 100, 10),  # obs-fold
        (b"A : b", 100, 10),  # whitespace before the colon
        (b"A b", 100, 10),  # no colon
        (b": b", 100, 10),  # no name
        (b"A\x00: b", 100, 10),  # not a token
        (b"A: b\x00", 100, 10),  # a control character in the value
        (b"A: b\x7f", 100, 10),  # DEL
        (b"A: b\rC: d", 100, 10),  # a bare CR
        (b"A: b\nC: d", 100, 10),  # a bare LF
        (b"A: b\r", 100, 10),  # a CR at the very end
        (b"", 100, 10),  # an empty section
    ],
)
def test_anything_unusual_is_left_to_the_line_by_line_path(
    parse: Parse, section: bytes, max_line: int, max_fields: int
) -> None:
    assert parse(section, 0, len(section), max_line, max_fields) is None


def test_only_the_given_range_is_read(parse: Parse) -> None:
    buffer = b"\x00junk\r\nA: b\r\n\x00junk"
    assert parse(buffer, 7, 11, 100, 10) == ([("A", "b")], {"a": ["b"]})


def test_c_twin_rejects_a_range_outside_the_buffer() -> None:
    c_parse = c_twin_or_skip("parse_field_lines")
    with pytest.raises(ValueError, match="out of range"):
        c_parse(b"A: b", 0, 5, 100, 10)
    with pytest.raises(ValueError, match="out of range"):
        c_parse(b"A: b", 3, 2, 100, 10)


# Bytes that matter to the grammar, so that random lines are often valid and often not.
_LINE_BYTES = st.lists(
    st.sampled_from(list(b"aZ09-_!:; \t\r\n\x00\x7f\x80\xff,=\"'")), max_size=24
).map(bytes)


@settings(max_examples=600, deadline=None)
@given(
    lines=st.lists(_LINE_BYTES, min_size=1, max_size=6),
    max_line=st.integers(0, 30),
    max_fields=st.integers(1, 8),
)
def test_twins_agree_with_each_other_and_with_line_by_line_parsing(
    lines: list[bytes], max_line: int, max_fields: int
) -> None:
    section = b"\r\n".join(lines)
    python = py_parse_field_lines(section, 0, len(section), max_line, max_fields)
    try:
        c_parse = c_twin_or_skip("parse_field_lines")
    except pytest.skip.Exception:
        c_parse = py_parse_field_lines
    assert c_parse(section, 0, len(section), max_line, max_fields) == python
    if python is None:
        return
    expected = Headers()
    for line in section.split(b"\r\n"):
        expected.add(*parse_field_line(line))
    fields, index = python
    assert fields == expected.items()
    assert index == {name: expected.get_all(name) for name in index}


@pytest.mark.parametrize(
    ("field", "status_reason"),
    [
        (b"Bad : x", (400, "whitespace before the colon in a header line")),
        (b"Bad Name: x", (400, "invalid character in header name")),
        (b" folded", (400, "obsolete line folding is not allowed")),
        (b"X: a\x01b", (400, "invalid character in header value")),
    ],
)
def test_a_malformed_line_in_a_whole_head_fails_as_it_does_line_by_line(
    field: bytes, status_reason: tuple[int, str]
) -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + field + b"\r\n\r\n")
    (event,) = parser.events_received()
    assert isinstance(event, BadRequest)
    assert (event.http_status, event.reason) == status_reason
    with pytest.raises(ParseError) as raised:
        parse_field_line(field)
    assert raised.value.reason == status_reason[1]


def test_a_whole_head_gives_the_same_headers_as_one_split_byte_by_byte() -> None:
    request = b"GET /x HTTP/1.1\r\nHost: a\r\nX-A:  1 \r\nx-a: 2\r\nCookie: \xc3\xa9\r\n\r\n"
    whole = RequestParser()
    whole.receive_data(request)
    split = RequestParser()
    for byte in request:
        split.receive_data(bytes([byte]))
    whole_head, split_head = whole.events_received()[0], split.events_received()[0]
    assert isinstance(whole_head, RequestHead) and isinstance(split_head, RequestHead)
    assert whole_head.headers.items() == split_head.headers.items()
    assert whole_head.headers.get_all("X-A") == ["1", "2"]
    assert whole_head.headers["cookie"] == "Ã©"


# Characters that matter to the encoder: token characters, separators, controls, latin-1 and
# beyond (which cannot be encoded).
_FIELD_TEXT = st.lists(
    st.sampled_from(list('aZ09-_!: \t\r\n\x00\x7f\xe9\u20ac,"')), max_size=12
).map("".join)


@settings(max_examples=600, deadline=None)
@given(fields=st.lists(st.tuples(_FIELD_TEXT, _FIELD_TEXT), max_size=5))
def test_encode_fields_twins_agree(fields: list[tuple[str, str]]) -> None:
    c_encode = c_twin_or_skip("encode_fields")
    try:
        expected: bytes | None = py_encode_fields(fields)
    except ValueError:
        expected = None  # the C twin declines; the Python one then names the error
    assert c_encode(fields) == expected
    assert c_encode(tuple(fields)) == expected


def test_encode_fields_c_twin_declines_what_it_does_not_take() -> None:
    c_encode = c_twin_or_skip("encode_fields")
    assert c_encode(iter([("A", "b")])) is None  # an iterator: it must not be consumed
    assert c_encode([("A", 1)]) is None
    assert c_encode([["A", "b"]]) is None
    assert c_encode([("A", "b", "c")]) is None
    assert c_encode([]) == b""


def test_response_heads_refuse_injected_lines_with_or_without_the_c_twin() -> None:
    with pytest.raises(ValueError, match="invalid character in the value of header 'X'"):
        encode_response_head(200, [("X", "a\r\nSet-Cookie: evil")])
    with pytest.raises(ValueError, match="invalid header name"):
        encode_response_head(200, (("Bad Name", "x") for _ in range(1)))
    assert encode_response_head(204, [("X", "é")]) == b"HTTP/1.1 204 No Content\r\nX: \xe9\r\n\r\n"
