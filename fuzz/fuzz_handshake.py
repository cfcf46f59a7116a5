#!/usr/bin/env python3
"""Fuzz target: the opening handshake, server and client side, and its fast path.

Input: a flags byte, then bytes. Four modes (flag bits 0-1):

0. Server: the bytes are a request. parse_upgrade_request(), the handshake's fast path, gives the
   same answer in C and Python; when it accepts, the general path (RequestParser, then
   accept_request()) accepts the same head with the same target, fields, length and
   Sec-WebSocket-Accept. accept_request() under several configurations raises only
   InvalidHandshake with a status from its documented set, and an accepted 101 response
   parses back and satisfies verify_response() with the request's key.
1. Client: the bytes are a 101 (or other) response. verify_response() raises only
   InvalidHandshake (NegotiationError included), and an accepted answer is one the client could
   have asked for.
2. Round trip: the bytes choose a client's subprotocols, compression offer and extra headers and
   a server's configuration; build_request() -> accept_request() -> verify_response() either
   fails cleanly or both sides agree on the subprotocol and on permessage-deflate parameters.
3. build_request() with a fuzzed resource and header: ValueError exactly when the resource is
   not a request target, the name not a token or the value holds a control character; else a
   request that parses back to exactly that target and those fields (no header injection).

Run long: python3 fuzz/fuzz_handshake.py -max_total_time=3600 fuzz/corpus/handshake
"""

from __future__ import annotations

import re
import sys
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented

with instrumented(__name__):
    from _invariants import C_SPEEDUPS, within_linear_time

    from framewire.exceptions import InvalidHandshake
    from framewire.sansio.deflate import DeflateConfig, DeflateParameters
    from framewire.sansio.handshake import (
        accept_key,
        accept_request,
        build_request,
        verify_response,
    )
    from framewire.sansio.headers import Headers
    from framewire.sansio.http11 import RequestHead, RequestParser, ResponseHead, ResponseParser
    from framewire.sansio.http11_grammar import INVALID_VALUE_RE, TOKEN_RE
    from framewire.sansio.limits import HTTPLimits
    from framewire.sansio.upgrade_request import py_parse_upgrade_request

LIMITS = HTTPLimits()
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
TARGET_RE = re.compile(rb"[\x21-\x7e]+")  # RFC 9112 3.2: visible ASCII, no space
SERVER_STATUSES = {400, 403, 405, 426}
DEFLATE_CONFIGS = (
    None,
    DeflateConfig(),
    DeflateConfig(server_no_context_takeover=True, client_max_window_bits=10),
    DeflateConfig(server_max_window_bits=8, client_no_context_takeover=True),
)
SUBPROTOCOLS = (None, ["chat"], ["b", "a"], ["superchat", "chat", "x"])
ORIGINS = (None, ["http://a.example"], [None, "http://b.example"])


def fast_path(data: bytes) -> Any:
    """parse_upgrade_request() in Python and C (which must agree); the Python result."""
    limits = (LIMITS.max_request_line, LIMITS.max_head_size, LIMITS.max_header_line)
    python = py_parse_upgrade_request(data, *limits, LIMITS.max_headers)
    if C_SPEEDUPS is not None:
        c = C_SPEEDUPS.parse_upgrade_request(data, *limits, LIMITS.max_headers)
        assert c == python, f"parse_upgrade_request: C {c!r} != Python {python!r}"
    return python


def first_head(data: bytes) -> tuple[RequestHead | None, int]:
    """The first request head and how many bytes the request (head and body) took."""
    parser = RequestParser(LIMITS)
    parser.receive_data(data)
    while parser.has_more_to_parse:
        parser.parse_more()
    events = parser.events_received()
    head = events[0] if events and isinstance(events[0], RequestHead) else None
    if head is None or type(events[-1]).__name__ != "EndOfMessage":
        return head, -1
    return head, len(data) - len(parser.take_unparsed())


def check_server(data: bytes, reader_byte: int) -> None:
    fast = fast_path(data)
    head, length = first_head(data)
    if fast is not None:
        target, fields, index, accept, fast_length = fast
        assert head is not None, "fast path accepted what the parser refuses"
        assert (head.method, head.target, head.http_version) == ("GET", target, "1.1")
        assert head.headers.items() == fields and fast_length == length
        assert Headers.from_parsed(fields, index) == head.headers
        result = accept_request("GET", "1.1", head.headers)
        expected_accept = dict(result.headers)["Sec-WebSocket-Accept"].encode()
        assert accept == expected_accept, "fast path computed another Sec-WebSocket-Accept"
    if head is None:
        return
    for config_index in range(4):
        deflate_config = DEFLATE_CONFIGS[(reader_byte + config_index) % 4]
        subprotocols = SUBPROTOCOLS[(reader_byte >> 2) % 4]
        origins = ORIGINS[(reader_byte >> 4) % 3]
        try:
            result = accept_request(
                head.method,
                head.http_version,
                head.headers,
                subprotocols=subprotocols,
                origins=origins,
                deflate_config=deflate_config,
            )
        except InvalidHandshake as error:
            assert error.http_status in SERVER_STATUSES, f"status {error.http_status}: {error}"
            continue
        response = result.response_bytes()
        client_key = head.headers["Sec-WebSocket-Key"]
        status, headers = parse_response(response)
        assert status == 101
        assert headers["Sec-WebSocket-Accept"] == accept_key(client_key)
        if result.subprotocol is not None:
            offered = [
                p.strip()
                for v in head.headers.get_all("Sec-WebSocket-Protocol")
                for p in v.split(",")
            ]
            assert (
                subprotocols
                and result.subprotocol in subprotocols
                and result.subprotocol in offered
            )


def parse_response(data: bytes) -> tuple[int, Headers]:
    parser = ResponseParser(LIMITS)
    parser.receive_data(data)
    events = parser.events_received()
    assert events and isinstance(events[0], ResponseHead), f"unparsable response {events!r}"
    return events[0].status, events[0].headers


def check_client(data: bytes, reader_byte: int) -> None:
    parser = ResponseParser(LIMITS)
    parser.receive_data(data)
    events = parser.events_received()
    if not events or not isinstance(events[0], ResponseHead):
        return
    head = events[0]
    subprotocols = SUBPROTOCOLS[reader_byte % 4]
    deflate_config = DEFLATE_CONFIGS[(reader_byte >> 2) % 4]
    try:
        result = verify_response(
            head.status,
            head.headers,
            key=KEY,
            subprotocols=subprotocols,
            deflate_config=deflate_config,
        )
    except InvalidHandshake:
        return
    assert head.status == 101
    assert head.headers.get_all("Sec-WebSocket-Accept") == [accept_key(KEY)]
    if result.subprotocol is not None:
        assert subprotocols is not None and result.subprotocol in subprotocols
    if result.deflate is not None:
        assert deflate_config is not None and isinstance(result.deflate, DeflateParameters)
        wanted = deflate_config.server_max_window_bits
        assert wanted is None or result.deflate.server_max_window_bits <= wanted
        if deflate_config.server_no_context_takeover:
            assert result.deflate.server_no_context_takeover


def _text(reader: ByteReader) -> str:
    return reader.short_bytes().decode("latin-1")


def check_round_trip(reader: ByteReader) -> None:
    client_config = DEFLATE_CONFIGS[reader.byte() % 4]
    server_config = DEFLATE_CONFIGS[reader.byte() % 4]
    client_protocols = SUBPROTOCOLS[reader.byte() % 4]
    server_protocols = SUBPROTOCOLS[reader.byte() % 4]
    extra = [(_text(reader), _text(reader))] if reader.flag() else []
    try:
        request, key = build_request(
            "example.com",
            "/chat",
            subprotocols=client_protocols,
            deflate_config=client_config,
            extra_headers=extra,
        )
    except ValueError:
        return
    head, _ = first_head(request)
    if head is None:
        assert extra, "build_request() without extra headers made an unparsable request"
        return
    try:
        result = accept_request(
            head.method,
            head.http_version,
            head.headers,
            subprotocols=server_protocols,
            deflate_config=server_config,
        )
    except InvalidHandshake as error:
        assert extra, f"a request from build_request() was refused: {error}"
        return
    status, headers = parse_response(result.response_bytes())
    agreed = verify_response(
        status, headers, key=key, subprotocols=client_protocols, deflate_config=client_config
    )
    assert agreed.subprotocol == result.subprotocol
    assert agreed.deflate == result.deflate, f"client {agreed.deflate} != server {result.deflate}"


def check_build_request(reader: ByteReader) -> None:
    """build_request() refuses exactly the heads that would not be one plain request."""
    resource = _text(reader) or "/"
    name, value = _text(reader), _text(reader)
    valid = (
        TARGET_RE.fullmatch(resource.encode("latin-1")) is not None
        and TOKEN_RE.fullmatch(name.encode("latin-1")) is not None
        and INVALID_VALUE_RE.search(value.encode("latin-1")) is None
    )
    try:
        request, _ = build_request("example.com", resource, extra_headers=[(name, value)])
    except ValueError:
        assert not valid, f"refused a valid request: {resource!r} {(name, value)!r}"
        return
    assert valid, f"built a request from {resource!r} {(name, value)!r}"
    parser = RequestParser(LIMITS)
    parser.receive_data(request)
    events = parser.events_received()
    assert events and isinstance(events[0], RequestHead), f"unparsable request {events!r}"
    assert events[0].target == resource
    fields = events[0].headers.items()
    assert len(fields) == 6, f"header injection: {fields!r}"  # the five fixed ones and ours
    assert (name, value.strip(" \t")) in fields, f"{(name, value)!r} not in {fields!r}"


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    reader = ByteReader(data)
    flags = reader.byte()
    mode = flags & 3
    if mode == 0:
        config_byte = reader.byte()
        request = reader.rest()
        within_linear_time(
            lambda: check_server(request, config_byte),
            len(request),
            per_byte=20e-6,
            constant=0.05,
            what="server handshake",
        )
    elif mode == 1:
        config_byte = reader.byte()
        check_client(reader.rest(), config_byte)
    elif mode == 2:
        check_round_trip(reader)
    else:
        check_build_request(reader)


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
