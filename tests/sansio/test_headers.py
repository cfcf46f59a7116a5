"""Headers and split_tokens (sansio/headers.py): an ordered, case-insensitive multi-map, and the
token lists of Connection, Upgrade and Sec-WebSocket-Protocol. Parsing into Headers is
test_field_lines.py and the HTTP/1.1 tests; serialize()'s refusals are
tests/security/test_header_injection.py."""

from __future__ import annotations

import pytest

from framewire.sansio.headers import Headers, split_tokens


def test_lookup_ignores_case_and_keeps_every_value_in_order() -> None:
    headers = Headers([("Host", "h"), ("X-A", "1")])
    headers.add("x-a", "2")
    assert "HOST" in headers and "x-b" not in headers and 42 not in headers
    assert headers.get_all("X-a") == ["1", "2"]
    assert headers.get("x-A") == "1" and headers.get("X-B", "none") == "none"
    assert headers.get_all("missing") == []
    assert list(headers) == ["Host", "X-A", "x-a"] and len(headers) == 3
    assert headers.items() == [("Host", "h"), ("X-A", "1"), ("x-a", "2")]


def test_a_single_value_is_read_by_subscript_a_repeated_one_refuses() -> None:
    headers = Headers([("Upgrade", "websocket"), ("Via", "a"), ("Via", "b")])
    assert headers["upgrade"] == "websocket"
    with pytest.raises(KeyError, match="appears 2 times"):
        headers["via"]
    with pytest.raises(KeyError):
        headers["absent"]


def test_equality_ignores_name_case_but_not_order_or_values() -> None:
    assert Headers([("A", "1"), ("b", "2")]) == Headers([("a", "1"), ("B", "2")])
    assert Headers([("A", "1"), ("b", "2")]) != Headers([("b", "2"), ("A", "1")])
    assert Headers([("A", "1")]) != Headers([("A", "2")])
    assert Headers([("A", "1")]) != [("A", "1")]


def test_from_parsed_wraps_the_parsers_lists_without_copying() -> None:
    fields = [("Host", "h"), ("X-A", "1")]
    index = {"host": ["h"], "x-a": ["1"]}
    headers = Headers.from_parsed(fields, index)
    assert headers == Headers(fields) and headers.get("x-a") == "1"
    headers.add("X-A", "2")
    assert fields[-1] == ("X-A", "2") and index["x-a"] == ["1", "2"]


def test_serialize_writes_one_line_per_field_in_order() -> None:
    headers = Headers([("Host", "h"), ("X-A", "1"), ("X-A", "2")])
    assert headers.serialize() == b"Host: h\r\nX-A: 1\r\nX-A: 2\r\n"
    assert Headers().serialize() == b""


@pytest.mark.parametrize(
    ("values", "tokens"),
    [
        (["Upgrade"], ["upgrade"]),
        (["keep-alive, Upgrade"], ["keep-alive", "upgrade"]),
        (["a,,b", " , c\t"], ["a", "b", "c"]),  # RFC 9110 5.6.1: empty elements are dropped
        ([], []),
        ([""], []),
    ],
)
def test_split_tokens(values: list[str], tokens: list[str]) -> None:
    assert split_tokens(values) == tokens
