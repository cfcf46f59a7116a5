"""The HTTP/1.1 parser events (sansio/http11_events.py): what RequestHead derives from the
request line and its headers."""

from __future__ import annotations

import pytest

from framewire.sansio.http11_events import RequestHead
from tests.sansio.http11_helpers import head, parse_all_ways


def test_path_and_query_are_split_at_the_first_question_mark() -> None:
    request = head("GET", "/a%20b?x=1?y")
    assert (request.path, request.query) == ("/a%20b", "x=1?y")
    assert (head("GET", "/p").path, head("GET", "/p").query) == ("/p", "")


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
