#!/usr/bin/env python3
"""Fuzz target: the HTTP/1.1 request and response parsers, and header field encoding.

Input: a flags byte (request or response parser, default or small limits, end of stream or not,
"amplified" input), a split seed, then the bytes of the connection. Amplified inputs are
``prefix + unit * count + suffix``, which is how the quadratic cases of other servers looked
(64 KiB of repeated headers, semicolons, one-byte chunks). For each input:

- Whole, byte by byte and split as the seed says, the parser gives the same events (adjacent
  BodyData joined), and the C and Python field-line paths give the same events (differential).
- Every accepted head obeys RFC 9110/9112 as framewire applies it: token method and names,
  visible-ASCII target, no control character in a value, one Host, not both Content-Length and
  Transfer-Encoding; an HTTP/1.1 request head re-encodes and parses back to itself; a
  Content-Length body has exactly that many bytes.
- While parsing, the parser holds at most about twice max_head_size plus a constant.
- Fed one byte at a time (up to 16 KiB) or in the seed's pieces, work stays within a linear
  time budget.
- parse_field_lines() and encode_fields(): C and Python return the same (None is a decline).

Run long: python3 fuzz/fuzz_http11.py -max_total_time=3600 fuzz/corpus/http11
"""

from __future__ import annotations

import sys
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented, pieces

with instrumented(__name__):
    from _invariants import C_SPEEDUPS, deep_size, differential, within_linear_time

    from framewire.sansio.field_lines import py_parse_field_lines
    from framewire.sansio.http11 import (
        BadRequest,
        BadResponse,
        BodyData,
        EndOfMessage,
        RequestHead,
        RequestParser,
        ResponseHead,
        ResponseParser,
        encode_request_head,
    )
    from framewire.sansio.http11_encode import py_encode_fields
    from framewire.sansio.http11_grammar import INVALID_VALUE_RE, TOKEN_RE
    from framewire.sansio.limits import HTTPLimits

SMALL_LIMITS = HTTPLimits(
    max_request_line=64,
    max_header_line=64,
    max_headers=4,
    max_head_size=256,
    max_body_size=128,
    max_chunks=4,
    max_chunk_line=16,
)
LIMITS = (HTTPLimits(), SMALL_LIMITS)
HELD_OVERHEAD = 16384
MAX_MESSAGES = 16
AMPLIFIED_MAX = 1 << 16


class Config:
    def __init__(self, flags: int) -> None:
        self.response = bool(flags & 1)
        self.limits = LIMITS[(flags >> 1) & 1]
        self.eof = bool(flags & 4)
        self.amplify = bool(flags & 8)

    def parser(self) -> Any:
        return ResponseParser(self.limits) if self.response else RequestParser(self.limits)


def read_input(reader: ByteReader, config: Config) -> bytes:
    if not config.amplify:
        return reader.rest()
    prefix = reader.short_bytes()
    unit = reader.short_bytes() or b"a"
    count = reader.integer(2)
    suffix = reader.rest()
    count = min(count, (AMPLIFIED_MAX - len(prefix) - len(suffix)) // len(unit))
    return prefix + unit * max(count, 0) + suffix


def _normalize(event: Any) -> Any:
    if isinstance(event, RequestHead):
        return ("head", event.method, event.target, event.http_version, event.headers.items())
    if isinstance(event, ResponseHead):
        return ("response", event.http_version, event.status, event.reason, event.headers.items())
    if isinstance(event, EndOfMessage):
        return ("end", event.trailers.items())
    if isinstance(event, BadRequest):
        return ("bad", event.http_status, event.reason)
    if isinstance(event, BadResponse):
        return ("bad", 400, event.reason)
    raise AssertionError(f"unexpected event {event!r}")


def parse(chunks: list[bytes], config: Config, *, measure: bool = False) -> list[Any]:
    """Feed the parser; return its events with adjacent BodyData joined."""
    parser = config.parser()
    events: list[Any] = []
    body = bytearray()
    messages = 0
    upgraded = False

    def drain() -> None:
        nonlocal messages, upgraded
        while parser.has_more_to_parse:
            parser.parse_more()
        for event in parser.events_received():
            if isinstance(event, BodyData):
                assert event.data, "empty BodyData"
                body.extend(event.data)
                continue
            if body:
                events.append(("body", bytes(body)))
                body.clear()
            events.append(_normalize(event))
            if isinstance(event, ResponseHead) and event.status == 101:
                upgraded = True  # what follows is buffered for take_unparsed(), by design
            if isinstance(event, EndOfMessage) and config.response:
                upgraded = True  # paused after the response: the same
            if isinstance(event, EndOfMessage) and not config.response:
                messages += 1
                if messages < MAX_MESSAGES:
                    parser.next_request()
                    drain()
                    return

    for chunk in chunks:
        parser.receive_data(chunk)
        drain()
        if measure and not upgraded and messages < MAX_MESSAGES:
            held = deep_size(parser, shared=(config.limits,))
            bound = 2 * max(config.limits.max_head_size, config.limits.max_chunk_line)
            assert held <= bound + HELD_OVERHEAD, f"parser holds {held} bytes"
    if config.eof:
        parser.receive_eof()
        drain()
    if body:
        events.append(("body", bytes(body)))
    return events


def check_semantics(events: list[Any], config: Config) -> None:
    """What an accepted head may contain, and that a body has its announced length."""
    expected_length = None
    body_length = 0
    for event in events:
        if event[0] in ("head", "response"):
            fields = event[-1]
            names = [name.lower() for name, _ in fields]
            for name, value in fields:
                assert TOKEN_RE.fullmatch(name.encode("latin-1")), f"bad name {name!r}"
                assert not INVALID_VALUE_RE.search(value.encode("latin-1")), f"bad value {value!r}"
                assert value == value.strip(" \t"), "value not trimmed"
            if event[0] == "head":
                _, method, target, version, _ = event
                assert TOKEN_RE.fullmatch(method.encode()), method
                assert target and all(0x21 <= ord(c) <= 0x7E for c in target), target
                assert version in ("1.0", "1.1")
                assert names.count("host") == (1 if version == "1.1" else names.count("host"))
                assert names.count("host") <= 1
                assert not ("content-length" in names and "transfer-encoding" in names)
                if version == "1.1":
                    check_request_round_trip(event, config)
            lengths = [value for name, value in fields if name.lower() == "content-length"]
            expected_length = int(lengths[0]) if lengths and event[0] == "head" else None
            body_length = 0
        elif event[0] == "body":
            body_length += len(event[1])
        elif event[0] == "end" and expected_length is not None:
            assert body_length == expected_length, (
                f"{body_length} body bytes, {expected_length} announced"
            )


def check_request_round_trip(head: Any, config: Config) -> None:
    """An accepted HTTP/1.1 head re-encodes and parses back to itself."""
    _, method, target, _, fields = head
    encoded = encode_request_head(method, target, fields)
    parser = RequestParser(config.limits)
    parser.receive_data(encoded)
    events = parser.events_received()
    assert events and _normalize(events[0]) == head, f"{events[:1]!r} != {head!r}"


def check_field_functions(data: bytes, reader_byte: int) -> None:
    """C and Python parse_field_lines() and encode_fields() agree on the same arguments."""
    if C_SPEEDUPS is None:
        return
    start = reader_byte % (len(data) + 1)
    end = len(data)
    for max_line, max_fields in ((8190, 100), (16, 3)):
        python = py_parse_field_lines(data, start, end, max_line, max_fields)
        c = C_SPEEDUPS.parse_field_lines(data, start, end, max_line, max_fields)
        assert c == python, f"parse_field_lines: C {c!r} != Python {python!r}"
    text = data.decode("latin-1")
    fields = [tuple(line.partition(":")[::2]) for line in text.split("\n") if line]
    try:
        python_encoded: bytes | None = py_encode_fields(fields)
    except ValueError:
        python_encoded = None
    except UnicodeEncodeError:
        python_encoded = None
    c_encoded = C_SPEEDUPS.encode_fields(fields)
    assert c_encoded is None or c_encoded == python_encoded, (c_encoded, python_encoded)


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    reader = ByteReader(data)
    config = Config(reader.byte())
    split_seed = reader.byte()
    stream = read_input(reader, config)
    whole = differential(lambda: parse([stream], config))
    split = differential(lambda: parse(list(pieces(stream, split_seed)), config, measure=True))
    assert split == whole, f"events depend on the split:\n{split!r}\n{whole!r}"
    small_pieces = within_linear_time(
        lambda: parse(list(pieces(stream, 1 if len(stream) <= 16384 else split_seed)), config),
        len(stream),
        per_byte=100e-6,
        constant=0.05,
        what="HTTP/1.1 parser fed in small pieces",
    )
    assert small_pieces == whole, f"byte by byte:\n{small_pieces!r}\n{whole!r}"
    check_semantics(whole, config)
    check_field_functions(stream[:4096], split_seed)


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
