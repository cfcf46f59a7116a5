"""framewire's one exception tree (exceptions.py): its shape, and what each error carries for
the layer above (close codes, HTTP statuses) and says in its message."""

from __future__ import annotations

import pytest

import framewire
from framewire.exceptions import (
    ConnectionClosed,
    HTTPError,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
    ProtocolError,
)
from tests.test_exports import DOCUMENTED


def test_exception_tree() -> None:
    assert issubclass(framewire.ConnectionClosedOK, framewire.ConnectionClosed)
    assert issubclass(framewire.ConnectionClosedError, framewire.ConnectionClosed)
    assert issubclass(framewire.PayloadTooBig, framewire.ProtocolError)
    assert issubclass(framewire.InvalidStatus, framewire.InvalidHandshake)
    for name in DOCUMENTED - {
        "serve",
        "connect",
        "broadcast",
        "Server",
        "WebSocket",
        "DeflateConfig",
    }:
        assert issubclass(getattr(framewire, name), framewire.FramewireError)


def test_protocol_errors_carry_their_close_code() -> None:
    assert ProtocolError("bad opcode").close_code == 1002
    assert ProtocolError("not UTF-8", close_code=1007).close_code == 1007
    too_big = PayloadTooBig("frame of 2000 bytes exceeds max_message_size=1000")
    assert too_big.close_code == 1009 and isinstance(too_big, ProtocolError)
    assert str(too_big) == "frame of 2000 bytes exceeds max_message_size=1000"
    assert ProtocolError("x").inflated == []


def test_handshake_and_http_errors_carry_the_status_to_answer() -> None:
    refused = InvalidHandshake("bad Origin", 403, headers=(("Vary", "Origin"),))
    assert (refused.http_status, refused.headers) == (403, (("Vary", "Origin"),))
    assert InvalidHandshake("missing Upgrade").http_status == 400
    error = HTTPError(431, "header block exceeds max_head_size=65536")
    assert (error.http_status, error.reason) == (431, "header block exceeds max_head_size=65536")
    assert str(error) == "431 header block exceeds max_head_size=65536"


def test_invalid_status_names_the_status_and_keeps_the_body() -> None:
    error = InvalidStatus(403, "Forbidden", b"go away")
    assert str(error) == "server rejected WebSocket connection: HTTP 403 Forbidden"
    assert (error.status, error.body, error.http_status) == (403, b"go away", 400)
    assert str(InvalidStatus(500)) == "server rejected WebSocket connection: HTTP 500"


@pytest.mark.parametrize(
    ("reason", "detail", "text"),
    [
        ("", "", "connection closed: code 1006"),
        ("bye", "", "connection closed: code 1000, reason 'bye'"),
        ("", "no close frame", "connection closed: code 1006 (no close frame)"),
    ],
)
def test_connection_closed_says_code_reason_and_detail(reason: str, detail: str, text: str) -> None:
    code = 1000 if reason else 1006
    error = ConnectionClosed(code, reason, detail)
    assert str(error) == text
    assert (error.code, error.reason) == (code, reason)
