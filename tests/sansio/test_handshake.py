"""The opening handshake, both sides (sansio/handshake.py)."""

from __future__ import annotations

import time

import pytest

from framewire.exceptions import InvalidHandshake, NegotiationError
from framewire.sansio.handshake import (
    accept_key,
    accept_request,
    build_request,
    verify_response,
)
from framewire.sansio.headers import Headers

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request_headers(**overrides: str | None) -> Headers:
    fields = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    fields.update({name.replace("_", "-"): value for name, value in overrides.items()})  # type: ignore[misc]
    return Headers((name, value) for name, value in fields.items() if value)


def test_accept_key_matches_rfc_6455_example() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request_gets_a_101_with_the_accept_value() -> None:
    result = accept_request("GET", "1.1", request_headers())
    response = result.response_bytes()
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert response.endswith(b"\r\n\r\n")
    assert result.subprotocol is None and result.deflate is None


def test_upgrade_and_connection_are_case_insensitive_token_lists() -> None:
    headers = request_headers(Connection="keep-alive, Upgrade", Upgrade="WebSocket")
    accept_request("GET", "1.1", headers)


@pytest.mark.parametrize(
    ("method", "version", "overrides", "status", "message"),
    [
        ("POST", "1.1", {}, 405, "requires GET"),
        ("GET", "1.0", {}, 400, "HTTP/1.1"),
        ("GET", "1.1", {"Host": None}, 400, "missing Host"),
        ("GET", "1.1", {"Upgrade": "h2c"}, 426, "Upgrade header must include websocket"),
        ("GET", "1.1", {"Connection": "keep-alive"}, 400, "Connection header must include"),
        ("GET", "1.1", {"Sec_WebSocket_Key": None}, 400, "missing Sec-WebSocket-Key"),
        ("GET", "1.1", {"Sec_WebSocket_Key": "not base64!"}, 400, "not base64 of 16 bytes"),
        ("GET", "1.1", {"Sec_WebSocket_Key": "AAAA"}, 400, "not base64 of 16 bytes"),
        ("GET", "1.1", {"Sec_WebSocket_Version": "8"}, 426, "unsupported Sec-WebSocket-Version 8"),
        ("GET", "1.1", {"Sec_WebSocket_Version": None}, 426, "Sec-WebSocket-Version none"),
    ],
)
def test_bad_requests_are_rejected_with_a_precise_error(
    method: str, version: str, overrides: dict[str, str | None], status: int, message: str
) -> None:
    with pytest.raises(InvalidHandshake, match=message) as info:
        accept_request(method, version, request_headers(**overrides))
    assert info.value.http_status == status


def test_wrong_version_answer_names_version_13() -> None:
    with pytest.raises(InvalidHandshake) as info:
        accept_request("GET", "1.1", request_headers(Sec_WebSocket_Version="12"))
    assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_origin_check() -> None:
    allowed = ["https://chat.example"]
    accept_request("GET", "1.1", request_headers(Origin="https://chat.example"), origins=allowed)
    with pytest.raises(InvalidHandshake, match="Origin 'https://evil.example'") as info:
        accept_request(
            "GET", "1.1", request_headers(Origin="https://evil.example"), origins=allowed
        )
    assert info.value.http_status == 403
    with pytest.raises(InvalidHandshake):
        accept_request("GET", "1.1", request_headers(), origins=allowed)
    accept_request("GET", "1.1", request_headers(), origins=[*allowed, None])


def test_subprotocol_is_the_servers_first_choice_that_was_offered() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="chat.v1, chat.v2")
    result = accept_request("GET", "1.1", headers, subprotocols=["chat.v2", "chat.v1"])
    assert result.subprotocol == "chat.v2"
    assert ("Sec-WebSocket-Protocol", "chat.v2") in result.headers
    none = accept_request("GET", "1.1", headers, subprotocols=["other"])
    assert none.subprotocol is None


def test_subprotocol_selector_hook() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="a, b")
    result = accept_request("GET", "1.1", headers, select_subprotocol=lambda offered: offered[-1])
    assert result.subprotocol == "b"


def test_a_subprotocol_after_a_long_header_of_commas_is_found() -> None:
    headers = request_headers(Sec_WebSocket_Protocol=" ," * 32768 + "x")
    assert accept_request("GET", "1.1", headers, subprotocols=["x"]).subprotocol == "x"


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_long_subprotocol_header_of_commas_parses_quickly() -> None:
    """CVE-2021-32640 (ws): ReDoS in the Sec-WebSocket-Protocol parser."""
    headers = request_headers(Sec_WebSocket_Protocol=" ," * 32768 + "x")
    start = time.perf_counter()
    result = accept_request("GET", "1.1", headers, subprotocols=["x"])
    assert time.perf_counter() - start < 0.5
    assert result.subprotocol == "x"


def response_headers(**overrides: str | None) -> Headers:
    fields = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(KEY),
    }
    fields.update({name.replace("_", "-"): value for name, value in overrides.items()})  # type: ignore[misc]
    return Headers((name, value) for name, value in fields.items() if value)


def test_client_request_is_well_formed() -> None:
    request, key = build_request(
        "example.com:8080", "/chat?room=1", origin="https://x", subprotocols=["a", "b"]
    )
    assert request.startswith(b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\n")
    assert f"Sec-WebSocket-Key: {key}\r\n".encode() in request
    assert b"Sec-WebSocket-Protocol: a, b\r\n" in request
    assert b"Origin: https://x\r\n" in request


def test_client_rejects_header_injection() -> None:
    with pytest.raises(ValueError, match="invalid character in the value of header 'X-Evil'"):
        build_request("h", "/", extra_headers=[("X-Evil", "a\r\nInjected: 1")])


def test_client_accepts_a_valid_101() -> None:
    result = verify_response(101, response_headers(), key=KEY)
    assert result.subprotocol is None


@pytest.mark.parametrize(
    ("status", "overrides", "message"),
    [
        (200, {}, "expected status 101, got 200"),
        (101, {"Upgrade": None}, "Upgrade header"),
        (101, {"Connection": "close"}, "Connection header"),
        (101, {"Sec_WebSocket_Accept": None}, "missing Sec-WebSocket-Accept"),
        (101, {"Sec_WebSocket_Accept": "wrong"}, "wrong Sec-WebSocket-Accept"),
    ],
)
def test_client_rejects_bad_responses(
    status: int, overrides: dict[str, str | None], message: str
) -> None:
    with pytest.raises(InvalidHandshake, match=message):
        verify_response(status, response_headers(**overrides), key=KEY)


def test_client_rejects_unoffered_subprotocol_and_extension() -> None:
    with pytest.raises(NegotiationError, match="unoffered subprotocol 'x'"):
        verify_response(101, response_headers(Sec_WebSocket_Protocol="x"), key=KEY)
    with pytest.raises(NegotiationError, match="unoffered extensions"):
        verify_response(
            101, response_headers(Sec_WebSocket_Extensions="permessage-deflate"), key=KEY
        )
    result = verify_response(
        101, response_headers(Sec_WebSocket_Protocol="b"), key=KEY, subprotocols=["a", "b"]
    )
    assert result.subprotocol == "b"
