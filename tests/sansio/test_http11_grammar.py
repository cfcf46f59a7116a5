"""The HTTP/1.1 grammar (sansio/http11_grammar.py), function by function: field lines,
Content-Length, Transfer-Encoding and chunk sizes, each refusal with its status. The parsers'
use of them, split anywhere, is test_http11.py's SMUGGLING table and test_http11_body.py."""

from __future__ import annotations

import pytest

from framewire.sansio.http11_grammar import (
    HUGE_LENGTH,
    ParseError,
    chunked_is_final,
    parse_chunk_size,
    parse_content_length,
    parse_field_line,
)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b"Host: example.com", ("Host", "example.com")),
        (b"X-A:1", ("X-A", "1")),
        (b"X-B: \t spaced value \t", ("X-B", "spaced value")),  # RFC 9112 5: OWS around the value
        (b"X-Empty:", ("X-Empty", "")),
        (b"Cookie: caf\xc3\xa9", ("Cookie", "caf\xc3\xa9")),  # obs-text, decoded as latin-1
    ],
)
def test_field_line(line: bytes, field: tuple[str, str]) -> None:
    assert parse_field_line(line) == field


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b" folded", "obsolete line folding"),
        (b"\tfolded", "obsolete line folding"),
        (b"No colon here", "without a colon"),
        (b"Content-Length : 5", "whitespace before the colon"),
        (b"Bad Name: v", "invalid character in header name"),
        (b": empty name", "invalid character in header name"),
        (b"X: a\x00b", "invalid character in header value"),
        (b"X: a\rb", "invalid character in header value"),
        (b"X: a\x7fb", "invalid character in header value"),
    ],
)
def test_bad_field_lines_are_400_with_the_reason(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_field_line(line)
    assert info.value.http_status == 400 and reason in info.value.reason


@pytest.mark.parametrize(
    ("values", "length"),
    [(["0"], 0), (["11"], 11), (["007"], 7), (["9" * 30], HUGE_LENGTH), (["0" * 40 + "5"], 5)],
)
def test_content_length(values: list[str], length: int) -> None:
    assert parse_content_length(values) == length


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["5", "5"], "duplicate"),
        (["5, 5"], "invalid"),
        (["-1"], "invalid"),
        (["+5"], "invalid"),
        (["0x5"], "invalid"),
        ([""], "invalid"),
        (["\u0665"], "invalid"),  # a digit to str.isdigit(), not to RFC 9110
    ],
)
def test_bad_content_length_is_400(values: list[str], reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_content_length(values)
    assert info.value.http_status == 400 and reason in info.value.reason


@pytest.mark.parametrize("values", [["chunked"], ["Chunked"], ["", " chunked "]])
def test_transfer_encoding_of_chunked_alone(values: list[str]) -> None:
    assert chunked_is_final(values)


@pytest.mark.parametrize(
    ("values", "status"),
    [
        (["identity"], 400),
        (["chunked, gzip"], 400),  # chunked must come last (RFC 9112 6.3)
        (["chunked", "chunked"], 400),
        (["gzip, chunked"], 501),  # well-formed, but a coding we do not decode
        ([], 400),
    ],
)
def test_other_transfer_encodings_are_refused(values: list[str], status: int) -> None:
    with pytest.raises(ParseError) as info:
        chunked_is_final(values)
    assert info.value.http_status == status


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"0", 0),
        (b"a", 10),
        (b"FF", 255),
        (b"000000000000000000005", 5),  # leading zeros do not count toward the digit cap
        (b"5;name=value;flag", 5),
        (b"6 ; ext", 6),
        (b"f" * 15, 16**15 - 1),
    ],
)
def test_chunk_size(line: bytes, size: int) -> None:
    assert parse_chunk_size(line) == size


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "invalid chunk size"),
        (b"x", "invalid chunk size"),
        (b"-5", "invalid chunk size"),
        (b"5 x", "invalid chunk size"),
        (b"1" * 16, "overflow"),
        (b"5;a\x00", "chunk extension"),
    ],
)
def test_bad_chunk_size_lines_are_400(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_chunk_size(line)
    assert info.value.http_status == 400 and reason in info.value.reason
